"""Read MovieLens-format folders (ratings.csv + movies.csv) into memory."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from reco.dataset import CONVERSION_KIND, INTERACTION_KIND, Catalog, Interactions

CONVERSION_RATING = 4.0


class MovieLensFormatError(ValueError):
    """A MovieLens file is missing or has a malformed row."""


def _rows(path: Path, columns: tuple[str, ...]):
    if not path.is_file():
        raise MovieLensFormatError(
            f"{path} not found: point to a folder with ratings.csv and movies.csv"
        )
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise MovieLensFormatError(
                f"{path} lacks column(s) {', '.join(missing)}: "
                f"expected a header with {', '.join(columns)}"
            )
        # Line numbers count the header as line 1, as an editor shows them.
        yield from enumerate(reader, start=2)


def read_ratings(folder: str | Path) -> Interactions:
    """Read ratings.csv: every rating an interaction, >= 4.0 a conversion."""
    path = Path(folder) / "ratings.csv"
    users, items, ratings, stamps = [], [], [], []
    for line, row in _rows(path, ("userId", "movieId", "rating", "timestamp")):
        try:
            rating = float(row["rating"])
            stamp = float(row["timestamp"])
        except (TypeError, ValueError):
            raise MovieLensFormatError(
                f"{path} line {line}: rating {row['rating']!r} or timestamp "
                f"{row['timestamp']!r} is not a number"
            ) from None
        if not row["userId"] or not row["movieId"]:
            raise MovieLensFormatError(f"{path} line {line}: empty userId or movieId")
        users.append(row["userId"])
        items.append(row["movieId"])
        ratings.append(rating)
        stamps.append(stamp)
    values = np.asarray(ratings, dtype=np.float32)
    kinds = np.where(values >= CONVERSION_RATING, CONVERSION_KIND, INTERACTION_KIND)
    return Interactions(
        user_ids=np.asarray(users, dtype=object),
        item_ids=np.asarray(items, dtype=object),
        kinds=kinds.astype(object),
        timestamps=np.asarray(stamps, dtype=np.float64),
        values=values,
    )


def read_movies(folder: str | Path) -> Catalog:
    """Read movies.csv: title (with year) as title, genres as category."""
    path = Path(folder) / "movies.csv"
    ids, titles, genres = [], [], []
    for line, row in _rows(path, ("movieId", "title", "genres")):
        if not row["movieId"]:
            raise MovieLensFormatError(f"{path} line {line}: empty movieId")
        ids.append(row["movieId"])
        titles.append(row["title"] or "")
        raw = row["genres"] or ""
        genres.append("" if raw == "(no genres listed)" else raw)
    n = len(ids)
    return Catalog(
        item_ids=np.asarray(ids, dtype=object),
        titles=np.asarray(titles, dtype=object),
        bodies=np.asarray([""] * n, dtype=object),
        categories=np.asarray(genres, dtype=object),
    )
