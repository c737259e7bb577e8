"""Small, clustered data for database tests: items in genres, users loyal to one."""

from __future__ import annotations

import numpy as np

from reco.dataset import Catalog, Interactions
from reco.training import TrainConfig

GENRES = ("western", "musical", "horror", "comedy", "documentary")
COLD_EVERY = 10  # items whose id % 10 == 9 never get events: new items


def catalog(n_items: int = 600) -> Catalog:
    """Items whose title and category name their genre."""
    genre_of = np.arange(n_items) % len(GENRES)
    return Catalog(
        item_ids=np.array([f"m{i}" for i in range(n_items)], dtype=object),
        titles=np.array(
            [
                f"{GENRES[g]} story {i % 7} ({1960 + 10 * g})"
                for i, g in enumerate(genre_of)
            ],
            dtype=object,
        ),
        bodies=np.array([f"a {GENRES[g]} picture" for g in genre_of], dtype=object),
        categories=np.array([GENRES[g].title() for g in genre_of], dtype=object),
    )


def warm_items(items: Catalog) -> np.ndarray:
    """Rows of the items that get events."""
    return np.array(
        [r for r in range(len(items)) if r % COLD_EVERY != COLD_EVERY - 1], dtype=int
    )


def events(
    items: Catalog,
    n_users: int = 80,
    per_user: int = 30,
    seed: int = 0,
    pool_size: int = 30,
):
    """Sessions of 6 events, 85% on the first ``pool_size`` items of the genre."""
    rng = np.random.default_rng(seed)
    warm = warm_items(items)
    genre_of = warm % len(GENRES)
    users, item_ids, kinds, stamps, values = [], [], [], [], []
    for user in range(n_users):
        favourite = user % len(GENRES)
        clock = 1_600_000_000.0 + user * 1000
        for event in range(per_user):
            if event % 6 == 0:
                clock += 7200
            pool = (
                warm[genre_of == favourite][:pool_size] if rng.random() < 0.85 else warm
            )
            rating = float(rng.integers(1, 6))
            users.append(f"u{user}")
            item_ids.append(items.item_ids[rng.choice(pool)])
            kinds.append("conversion" if rating >= 4 else "interaction")
            stamps.append(clock)
            values.append(rating)
            clock += 60
    return Interactions(
        np.array(users, dtype=object),
        np.array(item_ids, dtype=object),
        np.array(kinds, dtype=object),
        np.array(stamps),
        np.array(values, dtype=np.float32),
    )


def small_config(**changes) -> TrainConfig:
    """A model that trains in seconds."""
    settings = dict(
        dimensions=16,
        epochs=2,
        batch_size=512,
        shared_negatives=32,
        encoder_epochs=2,
        encoder_pairs_per_epoch=2048,
        encoder_batch_size=256,
        channels=16,
        token_dimensions=8,
        min_token_items=1,
    )
    settings.update(changes)
    return TrainConfig(**settings)
