"""TF-IDF of title words and genres; a user is the mean of their history."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from .item_text import catalog_tokens
from .peer import Peer
from .training_data import TrainingData


class Tfidf:
    """Scores are dot products of the user profile with L2-normalised item rows."""

    def __init__(
        self, data: TrainingData, warm: sparse.csr_matrix, cold: sparse.csr_matrix
    ) -> None:
        self.warm = warm
        self.cold = cold
        counts = np.asarray(data.matrix.sum(axis=1)).ravel()
        mean = sparse.diags(1.0 / np.maximum(counts, 1.0))
        self.profiles = sparse.csr_matrix(mean @ data.matrix @ warm)

    def warm_scores(self, users: np.ndarray) -> np.ndarray:
        return (self.profiles[users] @ self.warm.T).toarray()

    def cold_scores(self, users: np.ndarray) -> np.ndarray:
        return (self.profiles[users] @ self.cold.T).toarray()


def fit(data: TrainingData, seed: int) -> Tfidf:
    """Fit the vocabulary and IDF on the text of every warm and cold item.

    Only item text is read here, never interactions, so cold items may take part.
    """
    del seed  # deterministic
    vectorizer = TfidfVectorizer(analyzer=lambda tokens: tokens)
    vectorizer.fit(
        catalog_tokens(data.warm_catalog) + catalog_tokens(data.cold_catalog)
    )
    warm = vectorizer.transform(catalog_tokens(data.warm_catalog))
    cold = vectorizer.transform(catalog_tokens(data.cold_catalog))
    return Tfidf(data, warm.tocsr(), cold.tocsr())


PEER = Peer(
    name="tfidf",
    label="TF-IDF of title words + genres, user profile = mean of history",
    fit=fit,
    cold=True,
)
