"""Item and user vectors in pgvector tables: bulk writes and per-model HNSW indexes.

Each model version keeps its rows in the same tables with its own partial HNSW
index on ``embedding::vector(d) WHERE model_version = v``, so a new model is
written and indexed beside the serving one and switched on in one UPDATE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import psycopg
from psycopg import sql

logger = logging.getLogger("reco")

TABLES = ("item_embeddings", "user_embeddings")


class EmbeddingShapeError(ValueError):
    """Vectors whose shape or values do not fit the model they are written for."""


def check_vectors(vectors: np.ndarray, dimensions: int, what: str) -> None:
    """Refuse NaN/inf or a wrong width before anything reaches the table."""
    if vectors.ndim != 2 or vectors.shape[1] != dimensions:
        raise EmbeddingShapeError(
            f"{what}: model expects {dimensions} dimensions, got shape "
            f"{vectors.shape}: retrain with `reco-db train`"
        )
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        raise EmbeddingShapeError(
            f"{what}: {bad.size} vectors hold NaN or infinity (first at row "
            f"{bad[0]}): nothing was written"
        )


def write_items(
    conn: psycopg.Connection,
    version: int,
    item_ids: Sequence[str],
    vectors: np.ndarray,
    query_vectors: np.ndarray | None,
    sources: Sequence[str],
) -> int:
    """COPY item vectors of model ``version``; returns the rows written."""
    dimensions = vectors.shape[1]
    check_vectors(vectors, dimensions, "item embeddings")
    if query_vectors is not None:
        check_vectors(query_vectors, dimensions, "item query embeddings")
    started = time.perf_counter()
    with conn.cursor() as cursor:
        with cursor.copy(
            "COPY reco.item_embeddings"
            " (model_version, item_id, embedding, query_embedding, source)"
            " FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["integer", "text", "vector", "vector", "text"])
            for row, item_id in enumerate(item_ids):
                query = None if query_vectors is None else query_vectors[row]
                copy.write_row(
                    (version, str(item_id), vectors[row], query, sources[row])
                )
    logger.info(
        "wrote %d item embeddings in %.1fs",
        len(item_ids),
        time.perf_counter() - started,
    )
    return len(item_ids)


def write_users(
    conn: psycopg.Connection, version: int, user_ids: Sequence[str], vectors: np.ndarray
) -> int:
    """COPY user vectors of model ``version``; returns the rows written."""
    check_vectors(vectors, vectors.shape[1], "user embeddings")
    started = time.perf_counter()
    with conn.cursor() as cursor:
        with cursor.copy(
            "COPY reco.user_embeddings (model_version, user_id, embedding, source)"
            " FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["integer", "text", "vector", "text"])
            for row, user_id in enumerate(user_ids):
                copy.write_row((version, str(user_id), vectors[row], "history"))
    logger.info(
        "wrote %d user embeddings in %.1fs",
        len(user_ids),
        time.perf_counter() - started,
    )
    return len(user_ids)


def index_name(table: str, version: int) -> str:
    return f"{table}_v{version}_hnsw"


def build_indexes(conn: psycopg.Connection, version: int, dimensions: int) -> None:
    """Build the HNSW cosine indexes of one model version (items and users)."""
    for table in TABLES:
        started = time.perf_counter()
        conn.execute(
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {index} ON reco.{table} USING hnsw"
                " ((embedding::vector({dimensions})) vector_cosine_ops)"
                " WHERE model_version = {version}"
            ).format(
                index=sql.Identifier(index_name(table, version)),
                table=sql.Identifier(table),
                dimensions=sql.Literal(dimensions),
                version=sql.Literal(version),
            )
        )
        logger.info(
            "built hnsw index on %s for model %d in %.1fs",
            table,
            version,
            time.perf_counter() - started,
        )
    conn.execute("ANALYZE reco.item_embeddings")


def drop_model(conn: psycopg.Connection, version: int) -> None:
    """Remove a model version's vectors and indexes (its registry row stays)."""
    for table in TABLES:
        conn.execute(
            sql.SQL("DROP INDEX IF EXISTS reco.{}").format(
                sql.Identifier(index_name(table, version))
            )
        )
        conn.execute(
            sql.SQL("DELETE FROM reco.{} WHERE model_version = %s").format(
                sql.Identifier(table)
            ),
            (version,),
        )
