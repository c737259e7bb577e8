"""item2vec: gensim skip-gram over each user's chronological training history."""

from __future__ import annotations

import numpy as np
from gensim.models import Word2Vec

from .peer import Peer
from .training_data import TrainingData

DIMENSIONS = 64
WINDOW = 50
EPOCHS = 20
PROFILE_LENGTH = 50


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class Item2Vec:
    """A user is the mean unit vector of their last items; scores are cosines.

    Items rarer than ``min_count`` have no vector: they are left out of profiles
    and never recommended.
    """

    def __init__(self, data: TrainingData, model: Word2Vec) -> None:
        index = model.wv.key_to_index
        self.known = np.asarray([str(c) in index for c in range(len(data.warm_items))])
        self.item_vectors = np.zeros((len(self.known), DIMENSIONS), dtype=np.float32)
        rows = [index[str(c)] for c in np.flatnonzero(self.known)]
        self.item_vectors[self.known] = _unit(model.wv.vectors[rows])
        self.profiles = np.stack([self._profile(h) for h in data.histories])

    def _profile(self, history: np.ndarray) -> np.ndarray:
        recent = history[self.known[history]][-PROFILE_LENGTH:]
        if len(recent) == 0:
            return np.zeros(DIMENSIONS, dtype=np.float32)
        return _unit(self.item_vectors[recent].mean(axis=0))

    def warm_scores(self, users: np.ndarray) -> np.ndarray:
        scores = self.profiles[users] @ self.item_vectors.T
        scores[:, ~self.known] = -np.inf
        return scores


def fit(data: TrainingData, seed: int, min_count: int) -> Item2Vec:
    """Train skip-gram with negative sampling, no frequent-item subsampling."""
    # Column numbers stand for the items as words.
    sentences = [[str(column) for column in history] for history in data.histories]
    model = Word2Vec(
        sentences,
        vector_size=DIMENSIONS,
        window=WINDOW,
        sg=1,
        sample=0,
        min_count=min_count,
        epochs=EPOCHS,
        workers=2,
        seed=seed,
    )
    return Item2Vec(data, model)


PEER = Peer(
    name="item2vec",
    label=(
        f"gensim Word2Vec skip-gram (item2vec): {DIMENSIONS}d, window {WINDOW}, "
        f"no subsampling, {EPOCHS} epochs, user = mean of last {PROFILE_LENGTH}"
    ),
    fit=fit,
    # gensim's default min_count is 5; 1 gives every training item a vector.
    grid={"min_count": (1, 5)},
)
