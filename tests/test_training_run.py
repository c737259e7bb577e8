"""`reco-db train` on a real database: one coherent model, switched atomically."""

import numpy as np
import psycopg
import pytest
import synthetic

from reco import registry
from reco.database import connect
from reco.embeddings import index_name
from reco.loading import load_events, load_items
from reco.training_run import (
    NoTrainingDataError,
    TrainingConfigError,
    _train_and_write,
    run_training,
)


@pytest.fixture
def loaded(conn):
    items = synthetic.catalog(200)
    load_items(conn, items)
    load_events(conn, synthetic.events(items, n_users=40))
    conn.commit()
    return conn


def _versions(conn, table):
    return {
        row[0]
        for row in conn.execute(f"SELECT DISTINCT model_version FROM reco.{table}")
    }


def test_training_writes_one_coherent_active_model(loaded):
    summary = run_training(loaded, synthetic.small_config())

    active = registry.active(loaded)
    assert active.version == summary.version and active.status == "ready"
    assert _versions(loaded, "item_embeddings") == {summary.version}
    assert _versions(loaded, "user_embeddings") == {summary.version}
    assert summary.users == 40
    count, dims = loaded.execute(
        "SELECT count(*), min(vector_dims(embedding)) FROM reco.item_embeddings"
    ).fetchone()
    assert count == summary.items == 200  # warm ones from behaviour, rest from text
    assert dims == summary.dimensions == active.dimensions
    indexes = {
        row[0]
        for row in loaded.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'reco'"
        )
    }
    assert index_name("item_embeddings", summary.version) in indexes
    assert index_name("user_embeddings", summary.version) in indexes
    assert active.onnx_sha256 and len(active.onnx_sha256) == 64
    assert active.metrics["onnx_max_difference"] < 2e-3


def test_excluded_items_get_no_vector_until_embedded(loaded):
    held_out = ["m0", "m1", "m2"]
    run_training(loaded, synthetic.small_config(), exclude_items=held_out)
    rows = loaded.execute(
        "SELECT item_id FROM reco.item_embeddings WHERE item_id = ANY(%s)", (held_out,)
    ).fetchall()
    assert rows == []


def test_failed_run_leaves_previous_model_serving(loaded, db_url):
    first = run_training(loaded, synthetic.small_config())
    before = loaded.execute("SELECT * FROM reco.recommend('u1', 5)").fetchall()

    def delete_an_item_meanwhile(step, done, total):
        # An app deletes an item while the model trains: writing its vector
        # then violates the foreign key, half-way through the run.
        if step == "behaviour" and done == 1:
            with connect(db_url) as app:
                app.execute("DELETE FROM reco.items WHERE item_id = 'm7'")

    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        run_training(
            loaded, synthetic.small_config(), progress=delete_an_item_meanwhile
        )
    loaded.rollback()

    assert registry.active(loaded).version == first.version
    statuses = {m.version: m.status for m in registry.all_models(loaded)}
    assert sorted(statuses.values()) == ["failed", "ready"]
    assert _versions(loaded, "item_embeddings") == {first.version}
    assert loaded.execute("SELECT * FROM reco.recommend('u1', 5)").fetchall() == before


def test_readers_see_the_old_model_until_the_switch(loaded):
    first = run_training(loaded, synthetic.small_config(seed=1))
    before = loaded.execute("SELECT * FROM reco.recommend('u3', 10)").fetchall()

    # A second run written completely but not yet switched on.
    from reco.training_run import read_catalog, read_events

    events, items = read_events(loaded), read_catalog(loaded)
    config = synthetic.small_config(seed=2, dimensions=12)
    version = registry.create(loaded, config.dimensions, {})
    _train_and_write(loaded, version, config, events, items, None)
    loaded.commit()
    assert loaded.execute("SELECT * FROM reco.recommend('u3', 10)").fetchall() == before

    registry.activate(loaded, version)
    after = loaded.execute("SELECT * FROM reco.recommend('u3', 10)").fetchall()
    assert after != before
    assert registry.active(loaded).dimensions == 12

    registry.activate(loaded, first.version)  # rollback is one call too
    assert loaded.execute("SELECT * FROM reco.recommend('u3', 10)").fetchall() == before


@pytest.mark.parametrize(
    "setting", [{"dimensions": 2}, {"epochs": 0}, {"session_gap_minutes": -5}]
)
def test_bad_settings_are_refused_before_a_run_is_registered(loaded, setting):
    with pytest.raises(TrainingConfigError, match="use --"):
        run_training(loaded, synthetic.small_config(**setting))
    assert registry.all_models(loaded) == []


def test_training_needs_data(conn):
    with pytest.raises(NoTrainingDataError, match="load data first"):
        run_training(conn, synthetic.small_config())


def test_training_is_reproducible(loaded):
    run_training(loaded, synthetic.small_config(seed=5))
    first = loaded.execute(
        "SELECT item_id, embedding FROM reco.item_embeddings ORDER BY item_id"
    ).fetchall()
    run_training(loaded, synthetic.small_config(seed=5))
    version = registry.active(loaded).version
    second = loaded.execute(
        "SELECT item_id, embedding FROM reco.item_embeddings"
        " WHERE model_version = %s ORDER BY item_id",
        (version,),
    ).fetchall()
    assert [r[0] for r in first] == [r[0] for r in second]
    np.testing.assert_allclose(
        np.stack([r[1].to_numpy() for r in first]),
        np.stack([r[1].to_numpy() for r in second]),
        atol=1e-5,
    )
