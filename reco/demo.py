"""`reco-db demo`: the whole job on MovieLens, on a database of its own."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from reco import database, fetch
from reco.evaluation import fresh_database
from reco.loading import load_movielens
from reco.movielens import read_movies, read_ratings
from reco.new_items import embed_new_items, pending_count
from reco.training_run import run_training

logger = logging.getLogger("reco")

DEMO_DATABASE = "reco_demo"
HELD_BACK_PERCENT = 10
DEMO_USERS = ("1", "68", "414")


def held_back(item_id: str) -> bool:
    """About one item in ten, chosen by a stable hash of its id."""
    digest = hashlib.sha256(str(item_id).encode()).digest()
    return digest[0] % 100 < HELD_BACK_PERCENT


def run(
    path: str | Path | None,
    console: Console,
    progress_factory: Callable,
) -> None:
    """Load, train, embed the held-back movies, then show recommendations."""
    from reco.cli import _print_items, _titled, progress_bar

    folder = fetch.movielens_folder(path)
    catalog = read_movies(folder)
    new_items = [str(i) for i in catalog.item_ids if held_back(i)]
    console.rule("1. load MovieLens")
    url = fresh_database(DEMO_DATABASE)
    console.print(
        f"{database.describe(url)} (recreated for the demo)",
        soft_wrap=True,
    )

    with database.connect(url) as conn:
        summary = load_movielens(conn, folder, exclude_items=new_items)
        console.print(
            f"{summary.items} movies, {summary.events} ratings; {len(new_items)} "
            "movies held back as new items (loaded without any ratings)"
        )

        console.rule("2. reco-db train (item2vec + Siamese text CNN, ONNX export)")
        with progress_bar() as bar:
            trained = run_training(
                conn, exclude_items=new_items, progress=progress_factory(bar)
            )
        console.print(
            f"model {trained.version}: {trained.items} item and {trained.users} user "
            f"vectors in {trained.seconds:.0f}s; encoder {trained.onnx_path.name}, "
            f"onnxruntime vs torch max difference {trained.parity_difference:.1e}"
        )

        console.rule("3. reco-db embed-new-items (ONNX, no retraining)")
        waiting = pending_count(conn)
        report = embed_new_items(conn)
        conn.commit()
        console.print(
            f"{waiting} items had no vector; embedded {report.embedded}, "
            f"skipped {len(report.skipped)}"
        )

        console.rule("4. recommendations, straight from SQL")
        for user in DEMO_USERS:
            rows = _titled(conn, "reco.recommend(%s::text, %s)", (user, 5))
            _print_items(f"SELECT * FROM reco.recommend('{user}', 5)", rows)

        ratings = read_ratings(folder)
        counts = Counter(str(i) for i in ratings.item_ids)
        showcase = max(new_items, key=lambda item: (counts[item], item))
        title = catalog.titles[list(catalog.item_ids).index(showcase)]
        rows = _titled(conn, "reco.similar_items(%s::text, %s)", (showcase, 5))
        query = f"SELECT * FROM reco.similar_items('{showcase}', 5)"
        _print_items(f"new item {showcase} {title}: {query}", rows)
        conn.commit()
    console.print(
        f"explore the demo database: export RECO_DATABASE={DEMO_DATABASE}, then "
        f"reco-db recommend 1, reco-db similar {showcase}, reco-db models",
        soft_wrap=True,
    )
