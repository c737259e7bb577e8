"""What every peer recommender offers the benchmark: a fit function and a grid."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class Recommender(Protocol):
    """A fitted peer; higher score means ranked earlier."""

    def warm_scores(self, users: np.ndarray) -> np.ndarray:
        """Scores of shape (len(users), len(warm_items)) for the given user rows."""

    def cold_scores(self, users: np.ndarray) -> np.ndarray:
        """Scores of shape (len(users), len(cold_items)); only if the peer is cold."""


@dataclass(frozen=True)
class Peer:
    """A peer method as the benchmark runs it.

    Attributes:
        name: short name for ``--only``.
        label: the method as the table shows it, with its fixed settings.
        fit: ``fit(data, seed, **setting)`` returns a fitted Recommender.
        grid: setting name -> candidate values, tuned on the validation split.
        cold: whether the peer can score cold items.
    """

    name: str
    label: str
    fit: Callable[..., Recommender]
    grid: Mapping[str, Sequence] = field(default_factory=dict)
    cold: bool = False
