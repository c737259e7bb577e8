"""EASE (Steck 2019): a closed-form item-item linear model."""

from __future__ import annotations

import numpy as np

from .peer import Peer
from .training_data import TrainingData


class Ease:
    """Scores are the user's interaction row times the item-item weights."""

    def __init__(self, data: TrainingData, weights: np.ndarray) -> None:
        self.matrix = data.matrix
        self.weights = weights

    def warm_scores(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix[users] @ self.weights)


def fit(data: TrainingData, seed: int, lam: float) -> Ease:
    """Solve B = I - P diag(1/diag(P)) with P = (X'X + lam I)^-1 (float64)."""
    del seed  # the solution is exact
    gram = (data.matrix.T @ data.matrix).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += lam
    precision = np.linalg.inv(gram)
    weights = precision / -np.diag(precision)
    weights[np.diag_indices_from(weights)] = 0.0
    return Ease(data, weights.astype(np.float32))


PEER = Peer(
    name="ease",
    label="EASE (Steck 2019)",
    fit=fit,
    grid={"lam": (100, 250, 500, 1000)},
)
