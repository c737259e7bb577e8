"""Cold start: items embedded in-process by the ONNX encoder, alone or in batches."""

import threading

import numpy as np
import psycopg
import pytest
import synthetic
from conftest import drop_database, new_database, trained_database

from reco import registry
from reco.database import connect
from reco.embedder import ContentEncoder
from reco.new_items import (
    ItemExistsError,
    ItemTextError,
    NewItem,
    add_items,
    embed_new_items,
    pending_count,
)
from reco.registry import NoActiveModelError

HELD_OUT = [f"m{i}" for i in range(0, 100, 5)]  # 20 westerns, kept out of training


@pytest.fixture(scope="module")
def trained_template(server_url, template_url):
    """A database with a trained model, trained once and cloned per test."""
    items = synthetic.catalog(300)
    url = trained_database(
        server_url,
        items,
        synthetic.events(items, n_users=100),
        synthetic.small_config(epochs=10, encoder_epochs=4),
        exclude_items=HELD_OUT,
    )
    yield url
    drop_database(server_url, url)


@pytest.fixture
def trained_url(server_url, trained_template):
    name = psycopg.conninfo.conninfo_to_dict(trained_template)["dbname"]
    url = new_database(server_url, name)
    yield url
    drop_database(server_url, url)


@pytest.fixture
def trained(trained_url):
    with connect(trained_url) as conn:
        yield conn


def _embedded(conn, ids):
    rows = conn.execute(
        "SELECT item_id, count(*) FROM reco.item_embeddings"
        " WHERE item_id = ANY(%s) GROUP BY item_id",
        (ids,),
    ).fetchall()
    return dict(rows)


def test_embed_new_items_embeds_held_out_items_once(trained):
    assert pending_count(trained) == len(HELD_OUT)
    report = embed_new_items(trained, batch_size=7)
    trained.commit()
    assert report.embedded == len(HELD_OUT) and report.batches == 3
    assert _embedded(trained, HELD_OUT) == {i: 1 for i in HELD_OUT}
    again = embed_new_items(trained)
    assert again.embedded == 0 and pending_count(trained) == 0


def test_content_vectors_match_the_trained_encoder(trained):
    """onnxruntime at insert time gives what torch gave at training time."""
    version = registry.active(trained).version
    stored = trained.execute(
        "SELECT i.item_id, i.title, i.body, i.category, e.embedding"
        " FROM reco.item_embeddings AS e JOIN reco.items AS i USING (item_id)"
        " WHERE e.source = 'content' ORDER BY item_id LIMIT 20"
    ).fetchall()
    assert stored, "training gives items without events vectors from their text"
    encoder = ContentEncoder.for_version(trained, version)
    vectors = encoder.embed(
        [r[1] for r in stored], [r[2] for r in stored], [r[3] for r in stored]
    )
    expected = np.stack([r[4].to_numpy() for r in stored])
    np.testing.assert_allclose(vectors.embeddings, expected, atol=2e-3)


def test_new_item_becomes_recommendable(trained):
    embed_new_items(trained)
    trained.commit()
    # A western fan's recommendations restricted to the new items: they come.
    rows = trained.execute(
        "SELECT item_id FROM reco.recommend('u0', 5, true, NULL, %s::text[])",
        (HELD_OUT,),
    ).fetchall()
    assert len(rows) == 5
    # And a new western sits among westerns.
    neighbours = trained.execute(
        "SELECT i.category FROM reco.similar_items('m0', 10) AS s"
        " JOIN reco.items AS i USING (item_id)"
    ).fetchall()
    # Five genres: chance is 2 in 10.
    assert sum(row[0] == "Western" for row in neighbours) >= 4


def test_add_items_inserts_and_embeds_in_one_transaction(trained):
    count = add_items(
        trained,
        [NewItem("fresh-1", "western story 3 (1960)", "a western picture", "Western")],
    )
    trained.commit()
    assert count == 1
    assert _embedded(trained, ["fresh-1"]) == {"fresh-1": 1}
    rows = trained.execute("SELECT * FROM reco.similar_items('fresh-1', 5)").fetchall()
    assert len(rows) == 5


def test_add_items_refuses_existing_ids(trained):
    before = trained.execute(
        "SELECT source, embedding FROM reco.item_embeddings WHERE item_id = 'm1'"
    ).fetchone()
    with pytest.raises(ItemExistsError, match="item m1 already exists"):
        add_items(trained, [NewItem("m1", "musical story 1 (1970)")])
    trained.rollback()
    after = trained.execute(
        "SELECT source, embedding FROM reco.item_embeddings WHERE item_id = 'm1'"
    ).fetchone()
    assert after == before and before[0] == "behaviour"


def test_add_items_with_no_usable_text_writes_nothing(trained):
    with pytest.raises(ItemTextError, match="item blank-2 has no text"):
        add_items(
            trained,
            [
                NewItem("ok-1", "western story 1 (1960)", "", "Western"),
                NewItem("blank-2", "", "", None),
            ],
        )
    trained.rollback()
    found = trained.execute(
        "SELECT count(*) FROM reco.items WHERE item_id IN ('ok-1', 'blank-2')"
    ).fetchone()[0]
    assert found == 0


def test_batch_skips_items_without_text_and_never_stores_nan(trained):
    trained.execute(
        "INSERT INTO reco.items (item_id, title, body) VALUES"
        " ('empty-1', '', ''), ('gibberish-2', 'zzqx qqzx', '')"
    )
    trained.commit()
    report = embed_new_items(trained)
    trained.commit()
    assert set(report.skipped) == {"empty-1", "gibberish-2"}
    assert report.embedded == len(HELD_OUT)
    nan_rows = trained.execute(
        "SELECT count(*) FROM reco.item_embeddings WHERE 'NaN' = ANY(embedding::real[])"
    ).fetchone()[0]
    assert nan_rows == 0


def test_two_copies_at_once_neither_double_work_nor_deadlock(trained, trained_url):
    trained.execute(
        "INSERT INTO reco.items (item_id, title, body, category)"
        " SELECT 'bulk-' || n, 'horror story ' || n % 7 || ' (1980)',"
        " 'a horror picture', 'Horror' FROM generate_series(1, 400) AS n"
    )
    trained.commit()
    waiting = pending_count(trained)
    trained.commit()
    reports, failures = [], []
    start = threading.Barrier(2)

    def worker():
        try:
            with connect(trained_url) as own:
                start.wait(timeout=60)
                reports.append(embed_new_items(own, batch_size=16))
        except Exception as error:  # surfaced by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a copy hung"
    assert failures == []
    assert sum(r.embedded for r in reports) == waiting
    assert all(r.embedded > 0 for r in reports), "both copies shared the work"
    duplicates = trained.execute(
        "SELECT count(*) FROM (SELECT item_id FROM reco.item_embeddings"
        " GROUP BY model_version, item_id HAVING count(*) > 1) AS d"
    ).fetchone()[0]
    assert duplicates == 0 and pending_count(trained) == 0


def test_embedding_needs_a_trained_model(conn):
    with pytest.raises(NoActiveModelError, match="reco-db train"):
        embed_new_items(conn)
