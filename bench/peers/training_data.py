"""The training side of an evaluation split, indexed for the peer recommenders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from reco.dataset import Catalog
from reco.split import EvaluationSplit


@dataclass(frozen=True)
class TrainingData:
    """Training events as a user x item matrix and ordered histories.

    Attributes:
        users: user ids; row i of ``matrix`` is ``users[i]``.
        warm_items: ids of the items seen in training; column j is ``warm_items[j]``.
        cold_items: ids of the cold items to rank, never seen in training.
        matrix: users x warm items, 1.0 where the user interacted (CSR, float32).
        histories: per user, warm item columns in (timestamp, item id) order.
        warm_catalog: text of the warm items, aligned with ``warm_items``.
        cold_catalog: text of the cold items, aligned with ``cold_items``.
    """

    users: np.ndarray
    warm_items: np.ndarray
    cold_items: np.ndarray
    matrix: sparse.csr_matrix
    histories: list[np.ndarray]
    warm_catalog: Catalog
    cold_catalog: Catalog

    def user_rows(self, user_ids) -> np.ndarray:
        """Row numbers of the given user ids."""
        row = {user: i for i, user in enumerate(self.users)}
        return np.asarray([row[user] for user in user_ids], dtype=np.int64)


def _aligned_catalog(catalog: Catalog, item_ids: np.ndarray) -> Catalog:
    # An item without a catalogue row gets empty text rather than failing the run.
    row = {item: i for i, item in enumerate(catalog.item_ids)}

    def column(values: np.ndarray) -> np.ndarray:
        return np.asarray(
            [values[row[i]] if i in row else "" for i in item_ids], dtype=object
        )

    return Catalog(
        item_ids=np.asarray(item_ids, dtype=object),
        titles=column(catalog.titles),
        bodies=column(catalog.bodies),
        categories=column(catalog.categories),
    )


def training_data(evaluation: EvaluationSplit, catalog: Catalog) -> TrainingData:
    """Index the training events of ``evaluation`` for the peers."""
    train = evaluation.train
    users, user_of_event = np.unique(train.user_ids.astype(str), return_inverse=True)
    items, item_of_event = np.unique(train.item_ids.astype(str), return_inverse=True)

    matrix = sparse.csr_matrix(
        (np.ones(len(train), dtype=np.float32), (user_of_event, item_of_event)),
        shape=(len(users), len(items)),
    )
    # Repeated events of one pair count once.
    matrix.data[:] = 1.0

    numeric_item = np.asarray([int(i) for i in train.item_ids], dtype=np.int64)
    order = np.lexsort((numeric_item, train.timestamps, user_of_event))
    bounds = np.searchsorted(user_of_event[order], np.arange(len(users) + 1))
    histories = [
        item_of_event[order[start:stop]]
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
    ]

    cold_items = np.asarray(evaluation.cold_items, dtype=str).astype(object)
    return TrainingData(
        users=users.astype(object),
        warm_items=items.astype(object),
        cold_items=cold_items,
        matrix=matrix,
        histories=histories,
        warm_catalog=_aligned_catalog(catalog, items.astype(object)),
        cold_catalog=_aligned_catalog(catalog, cold_items),
    )
