"""Quality benchmark: reco-db and its peers on the protocol of EVALUATION.md.

Run from the repository root:

    python bench/quality.py [PATH] [--seed N] [--json out.json] [--only name,...]

Every peer with a grid is tuned on a validation split carved out of the training
data, then fitted once on the test split's training data and scored on the test
users. The figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# Run from a checkout without installing reco-db; the peers live next to this file.
sys.path[:0] = [str(BENCH), str(REPO)]

from peers import PEERS, Peer, Recommender, TrainingData, training_data  # noqa: E402

from reco.dataset import Catalog  # noqa: E402
from reco.metrics import mean_metrics  # noqa: E402
from reco.movielens import MovieLensFormatError, read_movies, read_ratings  # noqa: E402
from reco.split import EvaluationSplit, SplitError, is_cold, split  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "movielens-small"
KS = (10, 20)
BATCH_USERS = 1024
RECO_NAME = "reco"
VALIDATION_COLD_REMAINDER = 1

log = logging.getLogger("bench.quality")


@dataclass
class Row:
    """One method's test figures and how its setting was chosen."""

    name: str
    label: str
    warm: dict[str, float]
    cold: dict[str, float] | None
    train_seconds: float
    setting: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    validation: list[dict] = field(default_factory=list)
    tune_seconds: float = 0.0


def rank(
    scores_of, rows: np.ndarray, item_ids: np.ndarray, seen: sparse.csr_matrix | None
) -> list[list[str]]:
    """Top max(KS) item ids per user row, skipping the items in ``seen``."""
    top = max(KS)
    ranked = []
    for start in range(0, len(rows), BATCH_USERS):
        batch = rows[start : start + BATCH_USERS]
        scores = np.array(scores_of(batch), dtype=np.float64)
        if seen is not None:
            scores[seen[batch].nonzero()] = -np.inf
        if scores.shape[1] > top:
            best = np.argpartition(-scores, top - 1, axis=1)[:, :top]
        else:
            best = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        order = np.argsort(-np.take_along_axis(scores, best, 1), axis=1, kind="stable")
        best = np.take_along_axis(best, order, 1)
        ranked.extend(item_ids[best].tolist())
    return ranked


def _metrics(
    scores_of,
    data: TrainingData,
    relevant: dict[str, set[str]],
    item_ids: np.ndarray,
    seen: sparse.csr_matrix | None,
) -> dict[str, float]:
    # A test user absent from training cannot be ranked and counts as no hits.
    known = set(data.users.tolist())
    users = [user for user in relevant if user in known]
    rows = data.user_rows(users)
    rankings = dict(zip(users, rank(scores_of, rows, item_ids, seen), strict=True))
    return mean_metrics(rankings, relevant, KS)


def score(
    model: Recommender, peer: Peer, data: TrainingData, evaluation: EvaluationSplit
) -> tuple[dict[str, float], dict[str, float] | None]:
    """Warm and (if the peer can) cold metrics of a fitted model."""
    warm = _metrics(
        model.warm_scores, data, evaluation.warm_test, data.warm_items, data.matrix
    )
    if not peer.cold:
        return warm, None
    cold = _metrics(
        model.cold_scores, data, evaluation.cold_test, data.cold_items, None
    )
    return warm, cold


def settings_of(grid: dict) -> list[dict]:
    """Every combination of a grid, in grid order."""
    return [
        dict(zip(grid, values, strict=True))
        for values in itertools.product(*grid.values())
    ]


def describe(setting: dict) -> str:
    return ", ".join(f"{name}={value}" for name, value in setting.items())


def describe_grid(grid: dict) -> str:
    return " x ".join(
        f"{name} {{{', '.join(str(v) for v in values)}}}"
        for name, values in grid.items()
    )


def objective(warm: dict[str, float], cold: dict[str, float] | None) -> float:
    """Validation objective: warm Recall@20, plus cold Recall@20 where scored."""
    return warm["recall@20"] + (cold["recall@20"] if cold is not None else 0.0)


def tune(
    peer: Peer, data: TrainingData, evaluation: EvaluationSplit, seed: int
) -> tuple[dict, list[dict]]:
    """Pick the grid setting with the best validation objective."""
    settings = settings_of(peer.grid)
    if len(settings) == 1:
        return settings[0], []
    trials = []
    for setting in settings:
        started = time.perf_counter()
        model = peer.fit(data, seed, **setting)
        warm, cold = score(model, peer, data, evaluation)
        trials.append({"setting": setting, "warm": warm, "cold": cold})
        log.info(
            "%s %s: validation warm R@20 %.4f%s (%.1f s)",
            peer.name,
            describe(setting),
            warm["recall@20"],
            f", cold R@20 {cold['recall@20']:.4f}" if cold else "",
            time.perf_counter() - started,
        )
    best = max(trials, key=lambda t: objective(t["warm"], t["cold"]))
    return best["setting"], trials


def run_peer(
    peer: Peer,
    test: tuple[TrainingData, EvaluationSplit],
    validation: tuple[TrainingData, EvaluationSplit],
    seed: int,
) -> Row:
    """Tune on validation, fit on the test split's training data, score the test."""
    started = time.perf_counter()
    setting, trials = tune(peer, *validation, seed)
    tune_seconds = time.perf_counter() - started
    if trials:
        log.info("%s: chose %s", peer.name, describe(setting))

    started = time.perf_counter()
    model = peer.fit(test[0], seed, **setting)
    train_seconds = time.perf_counter() - started
    warm, cold = score(model, peer, *test)
    log.info(
        "%s: test warm R@20 %.4f, trained in %.1f s",
        peer.name,
        warm["recall@20"],
        train_seconds,
    )
    return Row(
        name=peer.name,
        label=peer.label,
        warm=warm,
        cold=cold,
        train_seconds=train_seconds,
        setting=setting,
        grid={name: list(values) for name, values in peer.grid.items()},
        validation=trials,
        tune_seconds=tune_seconds,
    )


def run_reco(path: Path, seed: int) -> tuple[Row | None, str | None]:
    """reco-db's own row from its evaluation, or the reason it was skipped."""
    try:
        from reco.evaluation import evaluate_folder
    except ImportError as error:
        return None, f"reco-db row skipped: reco.evaluation is not importable ({error})"
    try:
        report = evaluate_folder(path, seed=seed)
    except Exception as error:  # the peers' figures still get printed
        log.exception("reco-db evaluation failed")
        return None, f"reco-db row skipped: evaluate_folder failed ({error!r})"
    row = Row(
        name=RECO_NAME,
        label="reco-db",
        warm=dict(report.warm),
        cold=dict(report.cold),
        train_seconds=float(report.train_seconds),
    )
    return row, None


def _cells(row: Row) -> list[str]:
    def figure(metrics: dict[str, float] | None, name: str) -> str:
        return "n/a" if metrics is None else f"{metrics[name]:.3f}"

    method = row.label
    if row.grid:
        method += f"; {describe(row.setting)}"
    return [
        method,
        figure(row.warm, "recall@20"),
        figure(row.warm, "ndcg@20"),
        figure(row.cold, "recall@20"),
        figure(row.cold, "ndcg@20"),
        f"{row.train_seconds:.1f}",
    ]


HEADERS = [
    "method",
    "warm R@20",
    "warm NDCG@20",
    "cold R@20",
    "cold NDCG@20",
    "train s",
]


def _notes(rows: list[Row]) -> list[str]:
    notes = [
        f"{row.name}: grid {describe_grid(row.grid)} -> {describe(row.setting)}"
        for row in rows
        if row.grid
    ]
    notes.append(
        "grids tuned on a validation split carved from training (objective: warm "
        "R@20, plus cold R@20 for methods that score cold items); train s = the "
        "final fit on the test split's training data"
    )
    return notes


def print_table(rows: list[Row], title: str) -> None:
    """One table of the test figures, with rich if it is installed."""
    notes = _notes(rows)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), 10) for h in HEADERS]
        widths[0] = max([len(HEADERS[0])] + [len(_cells(r)[0]) for r in rows])
        print(title)
        for cells in [HEADERS] + [_cells(row) for row in rows]:
            figures = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
            print("  ".join([cells[0].ljust(widths[0]), *figures]))
        print("\n".join(notes))
        return

    table = Table(title=title, caption="\n".join(notes), caption_justify="left")
    table.add_column(HEADERS[0], overflow="fold", ratio=1)
    for header in HEADERS[1:]:
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*_cells(row))
    console = Console()
    if not console.is_terminal:
        # rich assumes 80 columns when writing to a pipe or file; the labels are long.
        console = Console(width=160)
    console.print(table)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [peer.name for peer in PEERS] + [RECO_NAME]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=DEFAULT_DATA,
        metavar="PATH",
        help="MovieLens-format folder with ratings.csv and movies.csv "
        f"(default: {DEFAULT_DATA})",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="model seed")
    parser.add_argument(
        "--json", type=Path, metavar="OUT", help="also write the figures to OUT"
    )
    parser.add_argument(
        "--only",
        metavar="NAME,...",
        help=f"run only these methods, among: {','.join(names)}",
    )
    parser.add_argument("--no-reco", action="store_true", help="skip reco-db's own row")
    args = parser.parse_args(argv)
    args.names = names if args.only is None else args.only.split(",")
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"unknown method {', '.join(unknown)}: use {','.join(names)}")
    return args


def _splits(path: Path) -> tuple[tuple, tuple, Catalog]:
    events = read_ratings(path)
    catalog = read_movies(path)
    test = split(events, catalog)
    # Validation: the test split's training data split again, another id class cold.
    warm_catalog = catalog.subset(~is_cold(catalog.item_ids))
    validation = split(
        test.train, warm_catalog, cold_remainder=VALIDATION_COLD_REMAINDER
    )
    return (
        (training_data(test, catalog), test),
        (training_data(validation, warm_catalog), validation),
        catalog,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Progress of the benchmark only; the peers' libraries log at INFO too.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO)
    started = time.perf_counter()

    try:
        test, validation, catalog = _splits(args.path)
    except (MovieLensFormatError, SplitError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    log.info(
        "%d training events, %d warm items, %d cold items; %d warm-test users, "
        "%d cold-test users",
        len(test[1].train),
        len(test[0].warm_items),
        len(test[0].cold_items),
        len(test[1].warm_test),
        len(test[1].cold_test),
    )
    rows = [
        run_peer(peer, test, validation, args.seed)
        for peer in PEERS
        if peer.name in args.names
    ]

    skipped = None
    if RECO_NAME in args.names and not args.no_reco:
        reco_row, skipped = run_reco(args.path, args.seed)
        if reco_row is not None:
            rows.append(reco_row)
    total_seconds = time.perf_counter() - started

    print_table(rows, f"{args.path.name}, seed {args.seed}, K = 20")
    if skipped:
        print(skipped)
    print(f"total run time {total_seconds:.0f} s")
    if args.json:
        report = {
            "data": str(args.path),
            "seed": args.seed,
            "items": len(catalog),
            "warm_test_users": len(test[1].warm_test),
            "cold_test_users": len(test[1].cold_test),
            "rows": [asdict(row) for row in rows],
            "reco_skipped": skipped,
            "total_seconds": total_seconds,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
