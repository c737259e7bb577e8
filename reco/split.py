"""The evaluation split of EVALUATION.md: cold items by id, last-10 warm hold-out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reco.dataset import Catalog, Interactions

COLD_MODULUS = 5
HOLDOUT = 10
MIN_WARM_INTERACTIONS = 20


class SplitError(ValueError):
    """The data cannot be split as the protocol asks."""


@dataclass(frozen=True)
class EvaluationSplit:
    """Training events and the relevant items per test user.

    Attributes:
        train: events the model may learn from.
        cold_items: ids of every cold item in the catalogue.
        warm_test: user id -> the held-out warm item ids (10 per user).
        cold_test: user id -> every cold item id the user interacted with.
    """

    train: Interactions
    cold_items: np.ndarray
    warm_test: dict[str, set[str]]
    cold_test: dict[str, set[str]]


def _numeric_ids(ids: np.ndarray) -> np.ndarray:
    try:
        return np.asarray([int(i) for i in ids], dtype=np.int64)
    except ValueError as error:
        raise SplitError(
            f"item ids must be integers for the cold-item rule (id % 5): {error}"
        ) from None


def is_cold(item_ids: np.ndarray, remainder: int = 0) -> np.ndarray:
    """Mark the items whose integer id % 5 equals ``remainder``."""
    return _numeric_ids(item_ids) % COLD_MODULUS == remainder


def split(
    events: Interactions,
    catalog: Catalog,
    cold_remainder: int = 0,
    holdout: int = HOLDOUT,
    min_warm: int = MIN_WARM_INTERACTIONS,
) -> EvaluationSplit:
    """Split events into training data, warm test sets and cold test sets.

    ``cold_remainder`` picks which id class is cold: 0 for the test protocol,
    another value to carve a validation split out of training data.
    """
    cold_items = catalog.item_ids[is_cold(catalog.item_ids, cold_remainder)]
    event_cold = is_cold(events.item_ids, cold_remainder)
    warm = events.subset(~event_cold)
    cold = events.subset(event_cold)

    # Order warm events per user by (timestamp, item id) and hold out the last ones.
    order = np.lexsort((_numeric_ids(warm.item_ids), warm.timestamps, warm.user_ids))
    users = warm.user_ids[order]
    keep = np.ones(len(order), dtype=bool)
    warm_test: dict[str, set[str]] = {}
    boundaries = np.flatnonzero(users[1:] != users[:-1]) + 1
    for start, stop in zip(
        np.r_[0, boundaries], np.r_[boundaries, len(order)], strict=True
    ):
        if stop - start >= min_warm:
            held = order[stop - holdout : stop]
            keep[stop - holdout : stop] = False
            warm_test[str(users[start])] = {str(i) for i in warm.item_ids[held]}
    train = warm.subset(np.sort(order[keep]))

    trained_users = set(train.user_ids.tolist())
    cold_test: dict[str, set[str]] = {}
    for user, item in zip(cold.user_ids, cold.item_ids, strict=True):
        if user in trained_users:
            cold_test.setdefault(str(user), set()).add(str(item))
    return EvaluationSplit(train, cold_items, warm_test, cold_test)
