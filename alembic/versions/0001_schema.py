"""Create the reco schema: items, events, model registry and embeddings.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute("CREATE SCHEMA IF NOT EXISTS reco")

    op.create_table(
        "items",
        sa.Column("item_id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("body", sa.Text, nullable=False, server_default=""),
        sa.Column("category", sa.Text),
        sa.Column("available", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=NOW),
        schema="reco",
    )
    op.create_table(
        "events",
        sa.Column("event_id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column(
            "item_id",
            sa.Text,
            sa.ForeignKey("reco.items.item_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("value", sa.REAL),
        sa.UniqueConstraint(
            "user_id", "item_id", "kind", "occurred_at", name="events_natural_key"
        ),
        schema="reco",
    )
    op.create_index(
        "events_user_time", "events", ["user_id", "occurred_at"], schema="reco"
    )
    op.create_index("events_item", "events", ["item_id"], schema="reco")

    op.create_table(
        "models",
        sa.Column("version", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=NOW),
        sa.Column("status", sa.Text, nullable=False, server_default="training"),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("activated_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("dimensions", sa.Integer, nullable=False),
        sa.Column("parameters", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("metrics", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("onnx_sha256", sa.Text),
        sa.Column("onnx_path", sa.Text),
        sa.Column("onnx_model", postgresql.BYTEA),
        sa.Column("vocabulary", postgresql.JSONB),
        sa.CheckConstraint(
            "status IN ('training', 'ready', 'failed')", name="models_status"
        ),
        sa.CheckConstraint("dimensions > 0", name="models_dimensions"),
        schema="reco",
    )
    # At most one active model: the switch is one UPDATE in one transaction.
    op.create_index(
        "models_one_active",
        "models",
        ["is_active"],
        unique=True,
        schema="reco",
        postgresql_where=sa.text("is_active"),
    )

    for table, key in (("item_embeddings", "item_id"), ("user_embeddings", "user_id")):
        key_column = (
            sa.Column(
                key,
                sa.Text,
                sa.ForeignKey("reco.items.item_id", ondelete="CASCADE"),
                primary_key=True,
            )
            if key == "item_id"
            else sa.Column(key, sa.Text, primary_key=True)
        )
        op.create_table(
            table,
            sa.Column(
                "model_version",
                sa.Integer,
                sa.ForeignKey("reco.models.version", ondelete="CASCADE"),
                primary_key=True,
            ),
            key_column,
            # Untyped vector: each model version has its own dimension and its
            # own partial HNSW index on embedding::vector(d) (see reco/embeddings.py).
            sa.Column("embedding", Vector(), nullable=False),
            sa.Column("query_embedding", Vector()),
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=NOW),
            schema="reco",
        )


def downgrade() -> None:
    op.execute("DROP SCHEMA reco CASCADE")
