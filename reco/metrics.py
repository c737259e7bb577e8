"""Ranking metrics: Recall@K and NDCG@K with binary gains."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Hits in the top ``k`` divided by min(k, number relevant)."""
    if not relevant:
        raise ValueError("recall is undefined without relevant items")
    hits = sum(1 for item in ranked[:k] if item in relevant)
    return hits / min(k, len(relevant))


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Binary-gain NDCG; the ideal DCG counts min(k, number relevant) hits."""
    if not relevant:
        raise ValueError("NDCG is undefined without relevant items")
    dcg = sum(
        1.0 / math.log2(rank + 2)
        for rank, item in enumerate(ranked[:k])
        if item in relevant
    )
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return dcg / ideal


def mean_metrics(
    rankings: Mapping[str, Sequence[str]],
    relevant: Mapping[str, set[str]],
    ks: Sequence[int] = (10, 20),
) -> dict[str, float]:
    """Average Recall@K and NDCG@K over the users in ``relevant``.

    A user missing from ``rankings`` counts as a ranking with no hits.
    """
    totals = {f"{name}@{k}": 0.0 for k in ks for name in ("recall", "ndcg")}
    for user, items in relevant.items():
        ranked = rankings.get(user, ())
        for k in ks:
            totals[f"recall@{k}"] += recall_at_k(ranked, items, k)
            totals[f"ndcg@{k}"] += ndcg_at_k(ranked, items, k)
    count = max(len(relevant), 1)
    return {name: value / count for name, value in totals.items()}
