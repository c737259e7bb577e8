"""Bring a database to the current schema with Alembic, and find the SQL files."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from alembic import command
from reco.database import sqlalchemy_url

logger = logging.getLogger("reco")

VERSION_TABLE = "reco_alembic_version"


def _resource_dir(name: str) -> Path:
    """alembic/ or sql/: beside the package in a checkout, else installed data."""
    for root in (
        Path(__file__).resolve().parent.parent,
        Path(sys.prefix) / "share/reco-db",
    ):
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(f"reco-db's {name}/ folder is missing: reinstall reco-db")


def sql_file(name: str) -> str:
    """The text of one of the .sql files under sql/."""
    return (_resource_dir("sql") / name).read_text(encoding="utf-8")


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config pointing at reco-db's migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(_resource_dir("alembic")))
    config.attributes["url"] = sqlalchemy_url(url)
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; a database already there is untouched."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    """Revert migrations down to ``revision`` ("base" removes the reco schema)."""
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    """The revision the database is at, or None before the first migration."""
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"version_table": VERSION_TABLE, "version_table_schema": "public"},
        )
        revision = context.get_current_revision()
    engine.dispose()
    return revision


def head_revision() -> str:
    """The newest revision this version of reco-db knows."""
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused"))
    return script.get_current_head()
