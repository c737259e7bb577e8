"""Item text as tokens: title words (the year included) and whole genres."""

from __future__ import annotations

import re

from reco.dataset import Catalog

_WORD = re.compile(r"\w\w+")


def item_tokens(title: str, categories: str) -> list[str]:
    """Lowercase title words of two or more characters, then one token per genre.

    Genres get a prefix so that the genre "Comedy" and the title word "comedy"
    stay separate features.
    """
    words = _WORD.findall(title.lower())
    genres = [f"genre:{g.strip().lower()}" for g in categories.split("|") if g.strip()]
    return words + genres


def catalog_tokens(catalog: Catalog) -> list[list[str]]:
    """Tokens of every item of ``catalog``, in its order."""
    return [
        item_tokens(title, categories)
        for title, categories in zip(catalog.titles, catalog.categories, strict=True)
    ]
