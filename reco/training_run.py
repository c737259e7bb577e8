"""`reco-db train`: read events from the database, train, export, write, switch.

The run is registered first and written beside the serving model; only the
final UPDATE of the registry makes it serve. If anything fails on the way, the
run is marked failed, its rows are removed and the previous model keeps serving.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import psycopg

from reco import embeddings, registry
from reco.dataset import Catalog, Interactions
from reco.export import export_and_check
from reco.training import TrainConfig, train

logger = logging.getLogger("reco")

Progress = Callable[[str, int, int], None]


class NoTrainingDataError(ValueError):
    """The database holds too little to train on."""


@dataclass
class TrainingSummary:
    """What a training run wrote."""

    version: int
    dimensions: int
    items: int
    content_items: int
    users: int
    events: int
    onnx_path: Path
    onnx_sha256: str
    parity_difference: float
    seconds: float


def model_dir() -> Path:
    """Where ONNX files go: $RECO_MODEL_DIR, else onnx_models/ of the checkout."""
    configured = os.environ.get("RECO_MODEL_DIR")
    if configured:
        return Path(configured).expanduser()
    checkout = Path(__file__).resolve().parent.parent / "onnx_models"
    if checkout.is_dir() and os.access(checkout, os.W_OK):
        return checkout
    import platformdirs

    return platformdirs.user_data_path("reco-db") / "onnx_models"


def read_events(
    conn: psycopg.Connection, exclude_items: Collection[str] = ()
) -> Interactions:
    """Every event, except those on ``exclude_items``, as arrays."""
    rows = conn.execute(
        "SELECT user_id, item_id, kind, extract(epoch FROM occurred_at)::float8,"
        " coalesce(value, 'NaN'::real) FROM reco.events"
        " WHERE item_id <> ALL(%s) ORDER BY event_id",
        (list(exclude_items),),
    ).fetchall()
    if not rows:
        return Interactions(
            *(np.zeros(0, dtype=object) for _ in range(3)),
            np.zeros(0),
            np.zeros(0, dtype=np.float32),
        )
    users, items, kinds, stamps, values = zip(*rows, strict=True)
    return Interactions(
        np.asarray(users, dtype=object),
        np.asarray(items, dtype=object),
        np.asarray(kinds, dtype=object),
        np.asarray(stamps, dtype=np.float64),
        np.asarray(values, dtype=np.float32),
    )


def read_catalog(
    conn: psycopg.Connection, exclude_items: Collection[str] = ()
) -> Catalog:
    """Every item except ``exclude_items``, with its text."""
    rows = conn.execute(
        "SELECT item_id, title, body, coalesce(category, '') FROM reco.items"
        " WHERE item_id <> ALL(%s) ORDER BY item_id",
        (list(exclude_items),),
    ).fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
    return Catalog(*(np.asarray(c, dtype=object) for c in columns))


class TrainingConfigError(ValueError):
    """A training setting out of its range."""


def validate(config: TrainConfig) -> None:
    """Refuse settings that cannot train, before a run is registered."""
    checks = {
        "dimensions": (config.dimensions, 4),
        "epochs": (config.epochs, 1),
        "encoder_epochs": (config.encoder_epochs, 1),
    }
    for name, (value, least) in checks.items():
        if value < least:
            flag = name.replace("_", "-")
            raise TrainingConfigError(
                f"{name} {value} is too small: use --{flag} {least} or more"
            )
    if config.session_gap_minutes <= 0:
        raise TrainingConfigError(
            f"session gap {config.session_gap_minutes} minutes must be positive: "
            "use --session-gap 30"
        )


def run_training(
    conn: psycopg.Connection,
    config: TrainConfig | None = None,
    exclude_items: Collection[str] = (),
    progress: Progress | None = None,
) -> TrainingSummary:
    """Train on the database's events and make the result the active model."""
    config = config or TrainConfig()
    validate(config)
    started = time.perf_counter()
    exclude_items = sorted({str(i) for i in exclude_items})
    events = read_events(conn, exclude_items)
    catalog = read_catalog(conn, exclude_items)
    conn.commit()
    if len(events) < 2 or len(catalog) < 2:
        raise NoTrainingDataError(
            f"found {len(events)} events on {len(catalog)} items: load data first "
            "with `reco-db load movielens` or `reco-db load events FILE`"
        )
    logger.info("training on %d events and %d items", len(events), len(catalog))

    parameters = {**asdict(config), "excluded_items": len(exclude_items)}
    version = registry.create(conn, config.dimensions, parameters)
    try:
        summary = _train_and_write(conn, version, config, events, catalog, progress)
    except BaseException:
        conn.rollback()
        with conn.transaction():
            embeddings.drop_model(conn, version)
            registry.set_status(conn, version, "failed")
        serving = conn.execute(
            "SELECT version FROM reco.models WHERE is_active"
        ).fetchone()
        conn.commit()
        logger.warning(
            "training run %d failed; %s",
            version,
            f"model {serving[0]} still serves" if serving else "no model is active",
        )
        raise
    registry.activate(conn, version)
    summary.seconds = time.perf_counter() - started
    registry.record_metrics(conn, version, {"train_seconds": round(summary.seconds, 1)})
    return summary


def _train_and_write(
    conn: psycopg.Connection,
    version: int,
    config: TrainConfig,
    events: Interactions,
    catalog: Catalog,
    progress: Progress | None,
) -> TrainingSummary:
    model = train(events, catalog, config, progress=progress)
    dimensions = model.item_vectors.shape[1]

    # Several databases (demo, evaluation, yours) share the folder and reuse
    # version numbers: the file name carries the content hash as well.
    staging = model_dir() / f".encoder-v{version}-{os.getpid()}.onnx"
    exported = export_and_check(model.encoder, model.vocabulary, catalog, staging)
    path = model_dir() / f"encoder-v{version}-{exported.sha256[:12]}.onnx"
    staging.replace(path)
    logger.info("saved the encoder as %s", path)

    with conn.transaction():
        conn.execute(
            "UPDATE reco.models SET dimensions = %s, parameters = parameters || %s"
            " WHERE version = %s",
            (dimensions, psycopg.types.json.Jsonb(model.parameters), version),
        )
        registry.attach_encoder(
            conn,
            version,
            exported.onnx_model,
            exported.sha256,
            str(path),
            model.vocabulary.to_json(),
        )
        if progress:
            progress("writing embeddings", 0, 1)
        items = embeddings.write_items(
            conn,
            version,
            model.item_ids,
            model.item_vectors,
            model.query_vectors,
            model.item_sources,
        )
        users = embeddings.write_users(
            conn, version, model.user_ids, model.user_vectors
        )
        if progress:
            progress("writing embeddings", 1, 1)
            progress("building hnsw indexes", 0, 1)
        # HNSW builds faster when the graph fits in maintenance_work_mem.
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        embeddings.build_indexes(conn, version, dimensions)
        registry.set_status(conn, version, "ready")
        if progress:
            progress("building hnsw indexes", 1, 1)
    registry.record_metrics(
        conn,
        version,
        {
            "onnx_max_difference": exported.max_difference,
            "final_loss": model.losses[-1] if model.losses else None,
        },
    )
    return TrainingSummary(
        version=version,
        dimensions=dimensions,
        items=items,
        content_items=int(np.sum(np.asarray(model.item_sources) == "content")),
        users=users,
        events=len(events),
        onnx_path=path,
        onnx_sha256=exported.sha256,
        parity_difference=exported.max_difference,
        seconds=0.0,
    )
