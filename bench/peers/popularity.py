"""Popularity for warm items, uniform random order for cold items."""

from __future__ import annotations

import numpy as np

from .peer import Peer
from .training_data import TrainingData


class Popularity:
    """Every user gets the items with the most training users first."""

    def __init__(self, data: TrainingData, seed: int) -> None:
        self.counts = np.asarray(data.matrix.sum(axis=0)).ravel()
        self.cold_count = len(data.cold_items)
        self.seed = seed

    def warm_scores(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), len(self.counts)))

    def cold_scores(self, users: np.ndarray) -> np.ndarray:
        # One generator per user keeps a user's order independent of batching.
        return np.stack(
            [
                np.random.default_rng([self.seed, int(user)]).random(self.cold_count)
                for user in users
            ]
        )


def fit(data: TrainingData, seed: int) -> Popularity:
    """Count training users per item."""
    return Popularity(data, seed)


PEER = Peer(
    name="popularity",
    label="popularity (warm) / random (cold)",
    fit=fit,
    cold=True,
)
