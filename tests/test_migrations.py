"""Migrations: up, down, up again, and twice in a row."""

from conftest import drop_database, new_database

from reco import migrations
from reco.database import connect


def _tables(url: str) -> set[str]:
    with connect(url) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'reco'"
        ).fetchall()
    return {row[0] for row in rows}


def test_upgrade_creates_schema_and_is_repeatable(server_url, template_url):
    url = new_database(server_url, "postgres")
    try:
        assert migrations.current_revision(url) is None
        migrations.upgrade(url)
        migrations.upgrade(url)  # a second run changes nothing
        assert migrations.current_revision(url) == migrations.head_revision()
        assert {
            "items",
            "events",
            "models",
            "item_embeddings",
            "user_embeddings",
            "user_recommendations",
            "model_runs",
        } <= _tables(url)
    finally:
        drop_database(server_url, url)


def test_downgrade_to_base_and_back(db_url):
    migrations.downgrade(db_url, "base")
    assert migrations.current_revision(db_url) is None
    assert _tables(db_url) == set()

    migrations.upgrade(db_url)
    assert migrations.current_revision(db_url) == migrations.head_revision()
    with connect(db_url) as connection:
        functions = {
            row[0]
            for row in connection.execute(
                "SELECT proname FROM pg_proc WHERE pronamespace = 'reco'::regnamespace"
            )
        }
    assert {"recommend", "similar_items", "recommend_for_session"} <= functions


def test_downgrade_one_step_removes_functions_keeps_tables(db_url):
    migrations.downgrade(db_url, "0001")
    with connect(db_url) as connection:
        count = connection.execute(
            "SELECT count(*) FROM pg_proc WHERE pronamespace = 'reco'::regnamespace"
        ).fetchone()[0]
    assert count == 0
    assert "items" in _tables(db_url)
