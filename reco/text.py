"""Item text to token ids for the content encoder, with no dependency on torch."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from reco.dataset import Catalog

PADDING_ID = 0
UNKNOWN_ID = 1
PADDING_TOKEN = "<pad>"
UNKNOWN_TOKEN = "<unk>"

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_YEAR = re.compile(r"\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")
_CATEGORY_SEPARATORS = re.compile(r"[|,;/]")


class EmptyTextError(ValueError):
    """An item has no token the vocabulary knows, so it cannot be embedded."""


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def tokenize(title: str, body: str = "", category: str = "") -> list[str]:
    """Split an item's text fields into tokens, most informative first.

    Categories become ``genre:<name>`` tokens, a trailing "(1995)" in the title
    becomes ``year:1995`` and ``decade:1990s``; title and body words follow.
    """
    title = title or ""
    tokens = []
    for name in _CATEGORY_SEPARATORS.split(category or ""):
        name = " ".join(_words(name))
        if name:
            tokens.append(f"genre:{name}")
    year = _YEAR.search(title)
    if year:
        value = int(year.group(1))
        tokens += [f"year:{value}", f"decade:{value // 10 * 10}s"]
        title = title[: year.start()]
    tokens += _words(title)
    tokens += _words(body or "")
    return tokens


class Vocabulary:
    """Token <-> id mapping; id 0 pads, id 1 stands for any unknown token."""

    def __init__(self, tokens: Sequence[str], max_tokens: int = 48):
        self.tokens = [PADDING_TOKEN, UNKNOWN_TOKEN, *tokens]
        self.ids = {token: index for index, token in enumerate(self.tokens)}
        self.max_tokens = max_tokens

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(
        cls, catalog: Catalog, min_items: int = 2, max_tokens: int = 48
    ) -> Vocabulary:
        """Keep the tokens found in at least ``min_items`` items of the catalogue.

        A token seen in one item only teaches the encoder nothing it can reuse
        on a new item, so it maps to the unknown id.
        """
        counts: Counter[str] = Counter()
        for title, body, category in _fields(catalog):
            counts.update(set(tokenize(title, body, category)))
        kept = sorted(t for t, n in counts.items() if n >= min_items)
        return cls(kept, max_tokens=max_tokens)

    def to_json(self) -> str:
        """Serialise the vocabulary; ``from_json`` reads it back."""
        payload = {"tokens": self.tokens[2:], "max_tokens": self.max_tokens}
        return json.dumps(payload, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        """Rebuild a vocabulary written by ``to_json``."""
        payload = json.loads(text)
        return cls(payload["tokens"], max_tokens=int(payload["max_tokens"]))

    def token_ids(self, title: str, body: str = "", category: str = "") -> list[int]:
        """Ids of one item's tokens, cut at ``max_tokens``."""
        tokens = tokenize(title, body, category)[: self.max_tokens]
        return [self.ids.get(token, UNKNOWN_ID) for token in tokens]

    def empty_rows(
        self,
        titles: Iterable[str],
        bodies: Iterable[str],
        categories: Iterable[str],
    ) -> np.ndarray:
        """Positions of the items without a single known token."""
        rows = [
            index
            for index, fields in enumerate(zip(titles, bodies, categories, strict=True))
            if not any(i != UNKNOWN_ID for i in self.token_ids(*fields))
        ]
        return np.asarray(rows, dtype=np.int64)

    def encode(
        self,
        titles: Sequence[str],
        bodies: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
        item_ids: Sequence[str] | None = None,
        length: int | None = None,
    ) -> np.ndarray:
        """Token ids as an int64 array [batch, length], padded with 0.

        ``length`` defaults to the longest item in the batch (at least 1).
        Raises EmptyTextError, naming the item, when an item has no known token:
        check ``empty_rows`` first to skip such items instead.
        """
        count = len(titles)
        bodies = [""] * count if bodies is None else bodies
        categories = [""] * count if categories is None else categories
        rows = []
        for index, fields in enumerate(zip(titles, bodies, categories, strict=True)):
            ids = self.token_ids(*fields)
            if not any(i != UNKNOWN_ID for i in ids):
                name = item_ids[index] if item_ids is not None else f"row {index}"
                raise EmptyTextError(
                    f"item {name} has no known words to embed (title "
                    f"{fields[0]!r}): give it a title, body or category"
                )
            rows.append(ids)
        width = length or max([1, *(len(r) for r in rows)])
        tokens = np.zeros((count, width), dtype=np.int64)
        for index, ids in enumerate(rows):
            ids = ids[:width]
            tokens[index, : len(ids)] = ids
        return tokens

    def encode_catalog(self, catalog: Catalog, length: int | None = None) -> np.ndarray:
        """Encode every item of a catalogue (see ``encode``)."""
        return self.encode(
            list(catalog.titles),
            list(catalog.bodies),
            list(catalog.categories),
            item_ids=list(catalog.item_ids),
            length=length,
        )


def _fields(catalog: Catalog):
    return zip(catalog.titles, catalog.bodies, catalog.categories, strict=True)
