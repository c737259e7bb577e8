"""The model registry: one row per training run, at most one of them active."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

logger = logging.getLogger("reco")


class NoActiveModelError(LookupError):
    """No model has been trained and activated yet."""


class UnknownModelError(LookupError):
    """A model version that is not in the registry, or not ready to serve."""


@dataclass
class ModelRecord:
    """A registry row, without the ONNX bytes."""

    version: int
    created_at: datetime
    status: str
    is_active: bool
    dimensions: int
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    onnx_sha256: str | None
    onnx_path: str | None


_COLUMNS = (
    "version, created_at, status, is_active, dimensions, parameters, metrics,"
    " onnx_sha256, onnx_path"
)


def create(conn: psycopg.Connection, dimensions: int, parameters: dict) -> int:
    """Register a run that is starting; it serves nothing until activated."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO reco.models (dimensions, parameters) VALUES (%s, %s)"
            " RETURNING version",
            (dimensions, Jsonb(parameters)),
        ).fetchone()
    return row[0]


def attach_encoder(
    conn: psycopg.Connection,
    version: int,
    onnx_model: bytes,
    onnx_sha256: str,
    onnx_path: str,
    vocabulary_json: str,
) -> None:
    """Store the exported encoder and its vocabulary with the run."""
    conn.execute(
        "UPDATE reco.models SET onnx_model = %s, onnx_sha256 = %s, onnx_path = %s,"
        " vocabulary = %s::jsonb WHERE version = %s",
        (onnx_model, onnx_sha256, onnx_path, vocabulary_json, version),
    )


def set_status(conn: psycopg.Connection, version: int, status: str) -> None:
    """Mark a run "ready" (embeddings written) or "failed"."""
    conn.execute(
        "UPDATE reco.models SET status = %s WHERE version = %s", (status, version)
    )


def record_metrics(conn: psycopg.Connection, version: int, metrics: dict) -> None:
    """Merge ``metrics`` into the run's metrics (shown by reco.model_runs)."""
    with conn.transaction():
        conn.execute(
            "UPDATE reco.models SET metrics = metrics || %s WHERE version = %s",
            (Jsonb(metrics), version),
        )


def activate(conn: psycopg.Connection, version: int) -> None:
    """Make ``version`` the one model every query uses, in one transaction."""
    with conn.transaction():
        status = conn.execute(
            "SELECT status FROM reco.models WHERE version = %s FOR UPDATE", (version,)
        ).fetchone()
        if status is None:
            raise UnknownModelError(
                f"model {version} is not in the registry: see `reco-db models`"
            )
        if status[0] != "ready":
            raise UnknownModelError(
                f"model {version} is {status[0]}, not ready: only a finished run "
                "can serve; see `reco-db models`"
            )
        # Two statements, one transaction: readers see the old model or the
        # new one, never neither. (The unique index on is_active cannot be
        # deferred, so a single UPDATE swapping both rows could trip it.)
        conn.execute(
            "UPDATE reco.models SET is_active = false"
            " WHERE is_active AND version <> %s",
            (version,),
        )
        conn.execute(
            "UPDATE reco.models SET is_active = true, activated_at = now()"
            " WHERE version = %s",
            (version,),
        )
    logger.info("model %d is now active", version)


def active(conn: psycopg.Connection) -> ModelRecord:
    """The active model's record; NoActiveModelError if there is none."""
    with conn.cursor(row_factory=class_row(ModelRecord)) as cursor:
        record = cursor.execute(
            f"SELECT {_COLUMNS} FROM reco.models WHERE is_active"
        ).fetchone()
    if record is None:
        raise NoActiveModelError("no active model: run `reco-db train` first")
    return record


def all_models(conn: psycopg.Connection) -> list[ModelRecord]:
    """Every run, newest first."""
    with conn.cursor(row_factory=class_row(ModelRecord)) as cursor:
        return cursor.execute(
            f"SELECT {_COLUMNS} FROM reco.models ORDER BY version DESC"
        ).fetchall()


def encoder_files(conn: psycopg.Connection, version: int) -> tuple[bytes, str, str]:
    """The ONNX bytes, their sha256 and the vocabulary JSON of a run."""
    row = conn.execute(
        "SELECT onnx_model, onnx_sha256, vocabulary::text FROM reco.models"
        " WHERE version = %s",
        (version,),
    ).fetchone()
    if row is None or row[0] is None:
        raise UnknownModelError(
            f"model {version} has no exported encoder: retrain with `reco-db train`"
        )
    return bytes(row[0]), row[1], row[2]
