"""implicit's alternating least squares on the binary interaction matrix."""

from __future__ import annotations

import numpy as np
from implicit.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from .peer import Peer
from .training_data import TrainingData

ITERATIONS = 15  # implicit's default


class Als:
    """Scores are dot products of user and item factors."""

    def __init__(self, model: AlternatingLeastSquares) -> None:
        self.user_factors = np.asarray(model.user_factors)
        self.item_factors = np.asarray(model.item_factors)

    def warm_scores(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors[users] @ self.item_factors.T


def fit(data: TrainingData, seed: int, factors: int, reg: float, alpha: float) -> Als:
    """Fit ALS with confidence 1 + alpha on every observed pair."""
    # implicit parallelises over users itself; a threaded BLAS underneath only
    # oversubscribes the cores (implicit checks for it when the model is built).
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=reg,
            alpha=alpha,
            iterations=ITERATIONS,
            random_state=seed,
        )
        model.fit(data.matrix, show_progress=False)
    return Als(model)


PEER = Peer(
    name="als",
    label=f"implicit ALS, {ITERATIONS} iterations",
    fit=fit,
    grid={"factors": (32, 64, 128), "reg": (0.01, 0.1, 1.0), "alpha": (5, 20, 40)},
)
