"""Offline quality of reco.training on a MovieLens folder, as EVALUATION.md says.

Usage:
    python bench/offline_quality.py ../shared/data/movielens-small --seeds 0 1 2
    python bench/offline_quality.py DATA --validation --no-global-context
    python bench/offline_quality.py DATA --validation --set window=10 loss=sgns

Validation (--validation) carves cold items (id % 5 == 1) and a last-10 hold-out
out of the training data, so that defaults are chosen without the test users.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reco.dataset import Catalog  # noqa: E402
from reco.metrics import mean_metrics  # noqa: E402
from reco.movielens import read_movies, read_ratings  # noqa: E402
from reco.split import is_cold, split  # noqa: E402
from reco.training import TrainConfig, TrainedModel, train  # noqa: E402

KS = (10, 20)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def rank(
    model: TrainedModel,
    users: list[str],
    candidates: np.ndarray,
    exclude: dict[str, set[str]],
    k: int = max(KS),
) -> dict[str, list[str]]:
    """Top-k candidate ids per user by cosine(user vector, item vector)."""
    row = {str(i): r for r, i in enumerate(model.item_ids)}
    candidates = np.array([c for c in map(str, candidates) if c in row])
    item_matrix = _normalised(model.item_vectors[[row[c] for c in candidates]])
    user_row = {str(u): r for r, u in enumerate(model.user_ids)}
    position = {c: n for n, c in enumerate(candidates)}
    rankings = {}
    for user in users:
        if user not in user_row:
            continue
        scores = item_matrix @ _normalised(model.user_vectors[[user_row[user]]])[0]
        seen = [position[i] for i in exclude.get(user, ()) if i in position]
        scores[seen] = -np.inf
        top = np.argpartition(-scores, k)[:k]
        top = top[np.argsort(-scores[top])]
        rankings[user] = candidates[top].tolist()
    return rankings


def evaluate(
    folder: Path, config: TrainConfig, validation: bool
) -> tuple[dict[str, float], float]:
    """Train on the split and return warm/cold metrics and training seconds."""
    events, catalog = read_ratings(folder), read_movies(folder)
    evaluation = split(events, catalog)
    if validation:
        catalog = catalog.subset(~is_cold(catalog.item_ids))
        evaluation = split(evaluation.train, catalog, cold_remainder=1)
    train_catalog: Catalog = catalog

    started = time.perf_counter()
    model = train(evaluation.train, train_catalog, config)
    seconds = time.perf_counter() - started

    history: dict[str, set[str]] = {}
    for user, item in zip(
        evaluation.train.user_ids, evaluation.train.item_ids, strict=True
    ):
        history.setdefault(str(user), set()).add(str(item))
    warm_items = np.unique(evaluation.train.item_ids.astype(str))
    warm = rank(model, list(evaluation.warm_test), warm_items, history)
    cold = rank(model, list(evaluation.cold_test), evaluation.cold_items, {})
    metrics = {
        **{f"warm_{n}": v for n, v in mean_metrics(warm, evaluation.warm_test).items()},
        **{f"cold_{n}": v for n, v in mean_metrics(cold, evaluation.cold_test).items()},
    }
    return metrics, seconds


def _parse_overrides(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--validation", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--no-global-context", action="store_true")
    parser.add_argument("--no-category-negatives", action="store_true")
    parser.add_argument("--no-event-weights", action="store_true")
    parser.add_argument("--no-oversampling", action="store_true")
    parser.add_argument("--no-history", action="store_true")
    parser.add_argument(
        "--distill-only",
        action="store_true",
        help="train the encoder by distillation alone (no cold-start softmax)",
    )
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="FIELD=JSON", help="TrainConfig field"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(message)s",
    )

    config = replace(TrainConfig(), **_parse_overrides(args.set))
    if args.no_global_context:
        config = replace(config, global_context=False)
    if args.no_category_negatives:
        config = replace(config, category_negatives=False)
    if args.no_event_weights:
        config = replace(config, event_weights={})
    if args.no_oversampling:
        config = replace(config, oversample_converted=1)
    if args.no_history:
        config = replace(config, history_epochs=0)
    if args.distill_only:
        config = replace(
            config, user_weight=0.0, siamese_weight=0.0, distill_weight=1.0
        )

    runs = []
    for seed in args.seeds:
        metrics, seconds = evaluate(
            args.folder, replace(config, seed=seed), args.validation
        )
        runs.append({**metrics, "seconds": seconds})
        print(
            f"seed {seed}: "
            + " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
            + f" train={seconds:.0f}s",
            flush=True,
        )
    if len(runs) > 1:
        print("mean (sd over seeds):")
        for key in runs[0]:
            values = [r[key] for r in runs]
            mean, spread = statistics.mean(values), statistics.stdev(values)
            print(f"  {key}: {mean:.4f} ({spread:.4f})")


if __name__ == "__main__":
    main()
