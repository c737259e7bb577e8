"""Create the serving functions and BI views from sql/serving.sql and sql/views.sql.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from alembic import op
from reco.migrations import sql_file

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FUNCTIONS = (
    "recommend_for_session(bigint[], integer, text)",
    "recommend_for_session(text[], integer, text)",
    "similar_items(bigint, integer, text)",
    "similar_items(text, integer, text)",
    "recommend(bigint, integer, boolean, text, text[])",
    "recommend(text, integer, boolean, text, text[])",
    "popular_items(integer, text, text[], text[], text)",
    "user_history_vector(text)",
    "history_vector(text[], real[])",
    "nearest_items(vector, integer, text, text[], text, text[])",
    "nearest_items_sql(integer, integer, integer, boolean)",
    "in_category(text, text)",
    "check_k(integer)",
    "query_vector(text, vector, vector)",
    "active_model()",
)
VIEWS = ("coverage", "model_runs", "item_neighbours", "user_recommendations")


def upgrade() -> None:
    # Straight to psycopg without parameters: the files hold several statements,
    # '::' casts and format() '%' patterns that SQLAlchemy would try to bind.
    cursor = op.get_bind().connection.dbapi_connection.cursor()
    cursor.execute(sql_file("serving.sql"))
    cursor.execute(sql_file("views.sql"))


def downgrade() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS reco.{view}")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS reco.{function}")
