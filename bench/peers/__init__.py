"""Peer recommenders that the quality benchmark runs next to reco-db."""

from __future__ import annotations

from . import als, ease, item2vec, lightfm_warp, popularity, tfidf
from .peer import Peer, Recommender
from .training_data import TrainingData, training_data

PEERS: tuple[Peer, ...] = (
    popularity.PEER,
    item2vec.PEER,
    als.PEER,
    ease.PEER,
    lightfm_warp.CONTENT,
    lightfm_warp.HYBRID,
    tfidf.PEER,
)

__all__ = ["PEERS", "Peer", "Recommender", "TrainingData", "training_data"]
