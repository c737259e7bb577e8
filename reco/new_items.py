"""Cold start: embed new items with the active model's ONNX encoder, in-process.

``add_items`` inserts items and their content vectors in one transaction;
``embed_new_items`` finds items written by plain SQL that have no vector for
the active model and embeds them in batches. Several copies may run at once:
each batch locks its rows with SKIP LOCKED, so no item is embedded twice and no
copy waits on another.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg

from reco import registry
from reco.embedder import ContentEncoder
from reco.embeddings import write_items

logger = logging.getLogger("reco")

_encoders: dict[int, ContentEncoder] = {}


class ItemTextError(ValueError):
    """An item has no text the encoder can read."""


class ItemExistsError(ValueError):
    """``add_items`` was given an id that is already in reco.items."""


@dataclass
class NewItem:
    """An item as the application describes it."""

    item_id: str
    title: str = ""
    body: str = ""
    category: str | None = None
    available: bool = True


@dataclass
class EmbedReport:
    """What a run of ``embed_new_items`` did."""

    model_version: int
    embedded: int = 0
    batches: int = 0
    skipped: list[str] = field(default_factory=list)


def encoder(conn: psycopg.Connection, version: int) -> ContentEncoder:
    """The content encoder of ``version``, loaded once per process."""
    if version not in _encoders:
        _encoders[version] = ContentEncoder.for_version(conn, version)
    return _encoders[version]


def _embed_rows(
    conn: psycopg.Connection,
    version: int,
    item_ids: Sequence[str],
    titles: Sequence[str],
    bodies: Sequence[str],
    categories: Sequence[str],
) -> tuple[int, list[str]]:
    """Embed and write one batch; returns (rows written, ids without text)."""
    vectors = encoder(conn, version).embed(titles, bodies, categories)
    skipped = [item_ids[r] for r in vectors.skipped_rows]
    if vectors.rows.size:
        written = write_items(
            conn,
            version,
            [item_ids[r] for r in vectors.rows],
            vectors.embeddings,
            vectors.query_embeddings,
            ["content"] * len(vectors.rows),
        )
    else:
        written = 0
    return written, skipped


def add_items(conn: psycopg.Connection, items: Sequence[NewItem]) -> int:
    """Insert items and embed them in the same transaction.

    Raises ItemTextError, writing nothing, if any item has no usable text, and
    NoActiveModelError if no model is trained yet. Returns the items embedded.
    """
    if not items:
        return 0
    version = registry.active(conn).version
    ids = [str(item.item_id).strip() for item in items]
    if "" in ids:
        raise ValueError("an item id is empty: give every new item an id")
    duplicates = {i for i, n in Counter(ids).items() if n > 1}
    if duplicates:
        raise ValueError(f"item ids given twice: {', '.join(sorted(duplicates)[:5])}")
    with conn.transaction():
        existing = [
            row[0]
            for row in conn.execute(
                "SELECT item_id FROM reco.items WHERE item_id = ANY(%s) ORDER BY 1",
                (ids,),
            )
        ]
        if existing:
            # Replacing an item here would drop its learned vector: updates go
            # through `reco-db load items`, which keeps what behaviour taught.
            raise ItemExistsError(
                f"item {existing[0]} already exists ({len(existing)} of the given "
                "ids do): update items with `reco-db load items FILE` instead"
            )
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO reco.items (item_id, title, body, category, available)"
                " VALUES (%s, %s, %s, %s, %s)",
                [
                    (
                        i,
                        item.title or "",
                        item.body or "",
                        item.category,
                        item.available,
                    )
                    for i, item in zip(ids, items, strict=True)
                ],
            )
        written, skipped = _embed_rows(
            conn,
            version,
            ids,
            [item.title for item in items],
            [item.body for item in items],
            [item.category or "" for item in items],
        )
        if skipped:
            raise ItemTextError(
                f"item {skipped[0]} has no text the model knows: give it a title, "
                f"body or category with real words ({len(skipped)} such items; "
                "nothing was written)"
            )
    logger.info("added and embedded %d items with model %d", written, version)
    return written


def _still_waiting(conn: psycopg.Connection, version: int, rows: list) -> list:
    """Drop rows another copy embedded after our snapshot but before our lock.

    Under READ COMMITTED the locking query re-checks only the locked items row,
    not the NOT EXISTS test; a new statement sees the other copy's commit.
    """
    done = {
        row[0]
        for row in conn.execute(
            "SELECT item_id FROM reco.item_embeddings"
            " WHERE model_version = %s AND item_id = ANY(%s)",
            (version, [row[0] for row in rows]),
        )
    }
    return [row for row in rows if row[0] not in done]


def pending_count(conn: psycopg.Connection) -> int:
    """Items with no vector in the active model."""
    version = registry.active(conn).version
    return conn.execute(
        "SELECT count(*) FROM reco.items AS i WHERE NOT EXISTS ("
        " SELECT 1 FROM reco.item_embeddings AS e"
        " WHERE e.model_version = %s AND e.item_id = i.item_id)",
        (version,),
    ).fetchone()[0]


def embed_new_items(
    conn: psycopg.Connection,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> EmbedReport:
    """Embed every item that has no vector for the active model.

    Each batch is one transaction: lock up to ``batch_size`` waiting items with
    FOR NO KEY UPDATE SKIP LOCKED (other copies take other rows; app inserts of
    events on these items are not blocked), embed, COPY, commit.
    """
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be at least 1")
    version = registry.active(conn).version
    report = EmbedReport(model_version=version)
    while True:
        with conn.transaction():
            rows = conn.execute(
                "SELECT i.item_id, i.title, i.body, coalesce(i.category, '')"
                " FROM reco.items AS i"
                " WHERE NOT EXISTS (SELECT 1 FROM reco.item_embeddings AS e"
                "   WHERE e.model_version = %s AND e.item_id = i.item_id)"
                " AND i.item_id <> ALL(%s)"
                " ORDER BY i.item_id LIMIT %s"
                " FOR NO KEY UPDATE OF i SKIP LOCKED",
                (version, report.skipped, batch_size),
            ).fetchall()
            if not rows:
                break
            rows = _still_waiting(conn, version, rows)
            ids, titles, bodies, categories = (
                (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [], [])
            )
            written, skipped = _embed_rows(
                conn, version, ids, titles, bodies, categories
            )
        for item_id in skipped:
            logger.warning(
                "item %s has no text the model knows: skipped; give it a title, "
                "body or category",
                item_id,
            )
        report.skipped.extend(skipped)
        report.embedded += written
        report.batches += 1
        if progress is not None:
            progress(len(rows))
    logger.info(
        "embedded %d new items with model %d (%d skipped)",
        report.embedded,
        version,
        len(report.skipped),
    )
    return report
