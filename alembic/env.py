"""Alembic environment: runs reco-db's migrations on the configured database."""

from sqlalchemy import create_engine, pool

from alembic import context
from reco.database import sqlalchemy_url

VERSION_TABLE_SCHEMA = "public"


def run_migrations_online() -> None:
    url = context.config.attributes.get("url") or sqlalchemy_url()
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            version_table="reco_alembic_version",
            version_table_schema=VERSION_TABLE_SCHEMA,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("reco-db migrations run online only: use `reco-db db upgrade`")
run_migrations_online()
