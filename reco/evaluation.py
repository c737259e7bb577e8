"""`reco-db evaluate`: the EVALUATION.md protocol run through the product itself.

The training part of the split is loaded into a fresh database, trained with
`run_training` (cold items held out), the cold items are embedded by
`embed_new_items`, and every ranking comes from `reco.recommend` in SQL: the
figures describe what users are served, not an offline copy of the model.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql
from rich.table import Table

from reco import database, migrations, registry
from reco.loading import load_events, load_items
from reco.metrics import mean_metrics
from reco.movielens import read_movies, read_ratings
from reco.new_items import embed_new_items
from reco.split import EvaluationSplit, split
from reco.training import TrainConfig
from reco.training_run import run_training

logger = logging.getLogger("reco")

EVALUATION_DATABASE = "reco_evaluation"
K = 20
KS = (10, 20)


@dataclass
class EvaluationReport:
    """Warm and cold figures of reco-db and of the popularity/random baseline."""

    data: str
    seed: int
    model_version: int
    database: str
    warm_users: int
    cold_users: int
    train_seconds: float
    warm: dict[str, float]
    cold: dict[str, float]
    baseline_warm: dict[str, float] = field(default_factory=dict)
    baseline_cold: dict[str, float] = field(default_factory=dict)

    def registry_metrics(self) -> dict[str, float]:
        """Flat figures for the model registry, e.g. "warm_recall@20"."""
        flat = {f"warm_{name}": value for name, value in self.warm.items()}
        flat.update({f"cold_{name}": value for name, value in self.cold.items()})
        flat["evaluation_seed"] = self.seed
        return flat

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def fresh_database(name: str = EVALUATION_DATABASE) -> str:
    """(Re)create database ``name`` on the configured server; returns its URL."""
    server = database.database_url()
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database.with_database(server, name)
    migrations.upgrade(url)
    return url


def rank_through_sql(
    conn: psycopg.Connection,
    users: list[str],
    candidates: list[str],
    exclude_seen: bool,
    k: int = K,
) -> dict[str, list[str]]:
    """Each user's top-k among ``candidates`` from reco.recommend."""
    rankings = {}
    for user in users:
        rows = conn.execute(
            "SELECT item_id FROM reco.recommend(%s::text, %s, %s, NULL, %s)",
            (user, k, exclude_seen, candidates),
        ).fetchall()
        rankings[user] = [row[0] for row in rows]
    conn.commit()
    return rankings


def baseline(data: EvaluationSplit, seed: int) -> tuple[dict, dict]:
    """Popularity for warm items, random order for cold items."""
    counts = Counter(str(i) for i in data.train.item_ids)
    popular = [item for item, _ in counts.most_common()]
    seen: dict[str, set[str]] = {}
    for user, item in zip(data.train.user_ids, data.train.item_ids, strict=True):
        seen.setdefault(str(user), set()).add(str(item))
    warm = {
        user: [i for i in popular if i not in seen.get(user, ())][:K]
        for user in data.warm_test
    }
    generator = np.random.default_rng(seed)
    cold_items = [str(i) for i in data.cold_items]
    cold = {
        user: list(generator.permutation(cold_items)[:K]) for user in data.cold_test
    }
    return (
        mean_metrics(warm, data.warm_test, KS),
        mean_metrics(cold, data.cold_test, KS),
    )


def evaluate_folder(
    folder: str | Path,
    seed: int = 0,
    config: TrainConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    database_name: str = EVALUATION_DATABASE,
) -> EvaluationReport:
    """Run the protocol on a MovieLens-format folder; see the module docstring.

    The evaluation database is left in place (dropped by the next run) so its
    reco.model_runs view and recommendations can be inspected.
    """
    folder = Path(folder)
    config = config or TrainConfig(seed=seed)
    catalog = read_movies(folder)
    data = split(read_ratings(folder), catalog)
    cold_items = [str(i) for i in data.cold_items]
    logger.info(
        "split: %d training events, %d cold items, %d warm and %d cold test users",
        len(data.train),
        len(cold_items),
        len(data.warm_test),
        len(data.cold_test),
    )

    url = fresh_database(database_name)
    with database.connect(url) as conn:
        load_items(conn, catalog)
        load_events(conn, data.train)
        conn.commit()
        started = time.perf_counter()
        summary = run_training(conn, config, cold_items, progress=progress)
        embed_new_items(conn)
        conn.commit()
        train_seconds = time.perf_counter() - started

        warm_candidates = sorted({str(i) for i in data.train.item_ids})
        if progress:
            progress("ranking through sql", 0, 2)
        warm = rank_through_sql(conn, sorted(data.warm_test), warm_candidates, True)
        if progress:
            progress("ranking through sql", 1, 2)
        cold = rank_through_sql(conn, sorted(data.cold_test), cold_items, False)
        if progress:
            progress("ranking through sql", 2, 2)

        baseline_warm, baseline_cold = baseline(data, seed)
        report = EvaluationReport(
            data=str(folder),
            seed=seed,
            model_version=summary.version,
            database=database_name,
            warm_users=len(data.warm_test),
            cold_users=len(data.cold_test),
            train_seconds=round(train_seconds, 1),
            warm=mean_metrics(warm, data.warm_test, KS),
            cold=mean_metrics(cold, data.cold_test, KS),
            baseline_warm=baseline_warm,
            baseline_cold=baseline_cold,
        )
        registry.record_metrics(conn, summary.version, report.registry_metrics())
    return report


def report_table(report: EvaluationReport) -> Table:
    """The figures as a rich table, reco-db beside the baseline."""
    table = Table(
        title=f"{report.data}: {report.warm_users} warm / {report.cold_users} cold "
        f"test users, seed {report.seed}, model {report.model_version}"
    )
    table.add_column("method")
    for side in ("warm", "cold"):
        for k in KS:
            table.add_column(f"{side} R@{k}", justify="right")
            table.add_column(f"{side} NDCG@{k}", justify="right")
    table.add_column("train s", justify="right")

    def cells(warm: dict, cold: dict) -> list[str]:
        return [
            f"{figures[f'{name}@{k}']:.4f}"
            for figures in (warm, cold)
            for k in KS
            for name in ("recall", "ndcg")
        ]

    table.add_row(
        "reco-db", *cells(report.warm, report.cold), f"{report.train_seconds}"
    )
    table.add_row(
        "popularity / random",
        *cells(report.baseline_warm, report.baseline_cold),
        "",
    )
    return table
