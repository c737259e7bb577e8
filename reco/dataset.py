"""Interactions and the item catalogue in memory, for loading, training, evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONVERSION_KIND = "conversion"
INTERACTION_KIND = "interaction"


@dataclass(frozen=True)
class Interactions:
    """Events as parallel arrays, one entry per event.

    Attributes:
        user_ids: application user ids (str).
        item_ids: application item ids (str).
        kinds: event kind per row, e.g. "interaction" or "conversion".
        timestamps: seconds since the epoch (float64).
        values: optional event value such as a rating (float32, NaN if absent).
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    kinds: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.user_ids)

    def subset(self, mask: np.ndarray) -> Interactions:
        """Return the events selected by a boolean mask or index array."""
        return Interactions(
            self.user_ids[mask],
            self.item_ids[mask],
            self.kinds[mask],
            self.timestamps[mask],
            self.values[mask],
        )


@dataclass(frozen=True)
class Catalog:
    """Items with the text fields the content model reads.

    Attributes:
        item_ids: application item ids (str), unique.
        titles: item titles.
        bodies: free text (may be empty).
        categories: category text, e.g. MovieLens genres joined by "|".
    """

    item_ids: np.ndarray
    titles: np.ndarray
    bodies: np.ndarray
    categories: np.ndarray

    def __len__(self) -> int:
        return len(self.item_ids)

    def subset(self, mask: np.ndarray) -> Catalog:
        """Return the items selected by a boolean mask or index array."""
        return Catalog(
            self.item_ids[mask],
            self.titles[mask],
            self.bodies[mask],
            self.categories[mask],
        )
