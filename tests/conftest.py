"""Test databases: DATABASE_URL if set, else an embedded PostgreSQL of the tests' own.

Every test that writes gets a fresh database cloned from a migrated template, so
tests never see each other's rows and the server is left as it was found.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from reco import database, migrations

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = "reco_test_template"
_counter = itertools.count()


def data_dir() -> Path:
    """MovieLens and other shared data: $RECO_DATA_DIR, else ../shared/data."""
    return Path(os.environ.get("RECO_DATA_DIR", REPO.parent / "shared" / "data"))


def movielens_dir() -> Path:
    path = data_dir() / "movielens-small"
    if not (path / "ratings.csv").is_file():
        pytest.skip(f"MovieLens not found at {path}: set RECO_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """URL of the server the tests use (its maintenance database)."""
    if os.environ.get("DATABASE_URL"):
        yield database.database_url()
        return
    with tempfile.TemporaryDirectory(prefix="reco-test-") as folder:
        pgdata = Path(folder) / "pgdata"
        os.environ["RECO_PGDATA"] = str(pgdata)
        try:
            yield database.database_url()
        finally:
            os.environ.pop("RECO_PGDATA", None)
            _stop_embedded(pgdata)


def _stop_embedded(pgdata: Path) -> None:
    """Stop the tests' server before its folder goes, whoever joined it last.

    pgserver stops a server when its last user process exits; CLI tests run
    reco-db in subprocesses that join the same server, and a race between
    them can leave it running with its folder deleted.
    """
    from pgserver._commands import pg_ctl

    server = database._servers.pop(pgdata.resolve(), None)
    if server is None:
        return
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)
    except Exception:  # already stopped by pgserver's own exit handler
        pass


def _with_database(url: str, name: str) -> str:
    """The same server URL pointing at database ``name``."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


def _admin(url: str, statement: sql.Composable) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(statement)


@pytest.fixture(scope="session")
def template_url(server_url: str) -> str:
    """A database at the head revision, cloned by every test database."""
    _admin(
        server_url,
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(TEMPLATE)
        ),
    )
    _admin(server_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    url = _with_database(server_url, TEMPLATE)
    migrations.upgrade(url)
    yield url
    _admin(
        server_url,
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(TEMPLATE)
        ),
    )


def new_database(server_url: str, template: str = TEMPLATE) -> str:
    """Create a database cloned from ``template`` and return its URL."""
    name = f"reco_test_{os.getpid()}_{next(_counter)}"
    _admin(
        server_url,
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        ),
    )
    return _with_database(server_url, name)


def drop_database(server_url: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    _admin(
        server_url,
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
    )


def trained_database(server_url, items, events, config, exclude_items=()) -> str:
    """A new database holding ``items`` and ``events`` and a model trained on them."""
    from reco.loading import load_events, load_items
    from reco.training_run import run_training

    url = new_database(server_url)
    with database.connect(url) as connection:
        load_items(connection, items)
        load_events(connection, events)
        connection.commit()
        run_training(connection, config, exclude_items=exclude_items)
    return url


@pytest.fixture
def db_url(server_url: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated, empty database for one test; dropped afterwards."""
    url = new_database(server_url)
    yield url
    drop_database(server_url, url)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the test's own database."""
    with database.connect(db_url) as connection:
        yield connection
