"""A user's vector: the weighted mean of the query vectors of their history.

The same weighting runs inside PostgreSQL for session recommendations, so it
depends only on an event's kind, its value and how many events ago it happened:

    weight = kind_weight[kind] * value ** value_power * 0.5 ** (steps_back / half_life)

``steps_back`` is 0 for the most recent event of the history, 1 for the one before,
and so on; only the last ``max_history`` events count. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reco.dataset import Interactions
from reco.sessions import time_order


def history_weights(
    kinds: np.ndarray,
    values: np.ndarray,
    steps_back: np.ndarray,
    kind_weights: Mapping[str, float],
    half_life: float | None = None,
    value_power: float = 0.0,
    default_weight: float = 1.0,
) -> np.ndarray:
    """Weight of each history event (see the module docstring), float64."""
    weights = np.array(
        [kind_weights.get(str(k), default_weight) for k in kinds], dtype=np.float64
    )
    if value_power:
        usable = np.isfinite(values) & (values > 0)
        scaled = np.where(usable, values, 1.0).astype(np.float64) ** value_power
        weights *= scaled
    if half_life:
        weights *= 0.5 ** (np.asarray(steps_back, dtype=np.float64) / half_life)
    return weights


def steps_back_in_groups(groups: np.ndarray) -> np.ndarray:
    """For rows sorted by group then time: events after this one in its group."""
    count = len(groups)
    if not count:
        return np.zeros(0, dtype=np.int64)
    last_of_group = np.flatnonzero(np.r_[groups[1:] != groups[:-1], True])
    group_end = np.repeat(last_of_group, np.diff(np.r_[-1, last_of_group]))
    return group_end - np.arange(count)


def user_vectors(
    events: Interactions,
    item_ids: np.ndarray,
    query_vectors: np.ndarray,
    kind_weights: Mapping[str, float],
    half_life: float | None = None,
    value_power: float = 0.0,
    max_history: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of every user with at least one event on a known item.

    Returns (user ids, float32 vectors [users, D]). Events on items absent from
    ``item_ids`` are ignored; a user whose weights sum to zero gets no vector.
    """
    index = {str(item): row for row, item in enumerate(item_ids)}
    rows = np.array([index.get(str(i), -1) for i in events.item_ids], dtype=np.int64)
    order = time_order(events)
    order = order[rows[order] >= 0]

    users = events.user_ids[order].astype(str)
    steps_back = steps_back_in_groups(users)
    if max_history is not None:
        recent = steps_back < max_history
        order, users, steps_back = order[recent], users[recent], steps_back[recent]
    weights = history_weights(
        events.kinds[order],
        events.values[order],
        steps_back,
        kind_weights,
        half_life,
        value_power,
    )
    if not len(order):
        return np.zeros(0, dtype=str), np.zeros((0, query_vectors.shape[1]), "f4")

    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    weighted = query_vectors[rows[order]].astype(np.float64) * weights[:, None]
    sums = np.add.reduceat(weighted, starts, axis=0)
    totals = np.add.reduceat(weights, starts)
    valid = totals > 0
    vectors = sums[valid] / totals[valid, None]
    return users[starts][valid], vectors.astype(np.float32)
