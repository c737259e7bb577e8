"""The SQL API: recommend, similar_items, recommend_for_session, views, EXPLAIN."""

import numpy as np
import psycopg
import pytest
import synthetic
from conftest import drop_database, trained_database
from psycopg import sql

from reco import registry
from reco.database import connect
from reco.dataset import Interactions

N_ITEMS = 1000


def concatenate(first: Interactions, second: Interactions) -> Interactions:
    return Interactions(
        *(
            np.concatenate([a, b])
            for a, b in zip(vars(first).values(), vars(second).values(), strict=True)
        )
    )


@pytest.fixture(scope="module")
def served(server_url, template_url):
    """A trained model over 1000 items; tests here only read it."""
    items = synthetic.catalog(N_ITEMS)
    # One heavy user who has seen 800 of the 900 warm items.
    seen = items.item_ids[synthetic.warm_items(items)[:800]]
    heavy = Interactions(
        np.full(len(seen), "heavy", dtype=object),
        seen,
        np.full(len(seen), "interaction", dtype=object),
        1_700_000_000.0 + np.arange(len(seen)),
        np.full(len(seen), np.nan, dtype=np.float32),
    )
    events = synthetic.events(items, n_users=100)
    url = trained_database(
        server_url,
        items,
        concatenate(events, heavy),
        synthetic.small_config(epochs=10, encoder_epochs=4),
    )
    yield url
    drop_database(server_url, url)


@pytest.fixture
def db(served):
    with connect(served) as conn:
        yield conn


def _ids(rows):
    return [row[0] for row in rows]


def test_recommend_returns_k_best_first_without_seen_items(db):
    rows = db.execute("SELECT item_id, score FROM reco.recommend('u1', 10)").fetchall()
    assert len(rows) == 10
    scores = [row[1] for row in rows]
    assert scores == sorted(scores, reverse=True)
    seen = set(_ids(db.execute("SELECT item_id FROM reco.events WHERE user_id = 'u1'")))
    assert not seen & set(_ids(rows))


def test_recommend_includes_seen_items_when_asked(db):
    seen = set(_ids(db.execute("SELECT item_id FROM reco.events WHERE user_id = 'u1'")))
    rows = db.execute("SELECT item_id FROM reco.recommend('u1', 50, false)").fetchall()
    assert seen & set(_ids(rows))


def test_exactly_k_when_the_user_has_seen_most_nearest_items(db):
    seen = set(
        _ids(db.execute("SELECT item_id FROM reco.events WHERE user_id = 'heavy'"))
    )
    assert len(seen) == 800
    for k in (10, 100, 200):
        rows = db.execute("SELECT item_id FROM reco.recommend('heavy', %s)", (k,))
        ids = _ids(rows)
        assert len(ids) == k and len(set(ids)) == k
        assert not seen & set(ids)
    # 200 items are unseen: asking for more returns all of them, no more.
    assert (
        len(db.execute("SELECT * FROM reco.recommend('heavy', 300)").fetchall()) == 200
    )


def test_exactly_k_when_the_index_scan_gives_up_early(db):
    # Make the HNSW iterative scan stop after a handful of tuples: the exact
    # fallback must still fill k rows.
    db.execute("SET hnsw.max_scan_tuples = 20")
    ids = _ids(db.execute("SELECT item_id FROM reco.recommend('heavy', 50)"))
    assert len(set(ids)) == 50
    db.rollback()


def test_category_filter_still_returns_k(db):
    rows = db.execute(
        "SELECT r.item_id, i.category"
        " FROM reco.recommend('u1', 25, true, 'Horror') AS r"
        " JOIN reco.items AS i USING (item_id)"
    ).fetchall()
    assert len(rows) == 25
    assert {row[1] for row in rows} == {"Horror"}


def test_unavailable_items_are_never_recommended(db):
    top = _ids(db.execute("SELECT item_id FROM reco.recommend('u2', 5)"))
    db.execute("UPDATE reco.items SET available = false WHERE item_id = %s", (top[0],))
    again = _ids(db.execute("SELECT item_id FROM reco.recommend('u2', 5)"))
    assert top[0] not in again and len(again) == 5
    db.rollback()


def test_integer_ids_work(db):
    db.execute(
        "INSERT INTO reco.events (user_id, item_id, kind, occurred_at)"
        " VALUES ('4242', 'm3', 'interaction', now())"
    )
    text_rows = db.execute("SELECT * FROM reco.recommend('4242', 5)").fetchall()
    int_rows = db.execute("SELECT * FROM reco.recommend(4242, 5)").fetchall()
    assert text_rows == int_rows and len(int_rows) == 5
    db.rollback()


def test_user_without_history_gets_popular_items(db):
    rows = db.execute("SELECT * FROM reco.recommend('somebody-new', 7)").fetchall()
    popular = db.execute(
        "SELECT item_id FROM reco.events GROUP BY item_id"
        " ORDER BY count(DISTINCT user_id) DESC, item_id LIMIT 1"
    ).fetchone()[0]
    assert len(rows) == 7 and rows[0][0] == popular


def test_user_added_after_training_is_served_from_live_history(db):
    db.execute(
        "INSERT INTO reco.events (user_id, item_id, kind, occurred_at)"
        " SELECT 'late', item_id, 'conversion', now() FROM reco.items"
        " WHERE category = 'Western' ORDER BY item_id LIMIT 5"
    )
    rows = db.execute(
        "SELECT i.category FROM reco.recommend('late', 10) AS r"
        " JOIN reco.items AS i USING (item_id)"
    ).fetchall()
    # Live history of westerns: mostly westerns come back, not the popular list.
    assert sum(row[0] == "Western" for row in rows) > 5
    db.rollback()


def test_new_events_change_recommendations_without_retraining(db):
    before = db.execute(
        "SELECT i.category FROM reco.recommend('u0', 10) AS r"
        " JOIN reco.items AS i USING (item_id)"
    ).fetchall()
    assert sum(row[0] == "Western" for row in before) >= 4  # u0 likes westerns
    db.execute(
        "INSERT INTO reco.events (user_id, item_id, kind, occurred_at)"
        " SELECT 'u0', item_id, 'conversion', now() FROM reco.items"
        # Half of the comedies most users watch: the other half is left to find.
        " WHERE category = 'Comedy' ORDER BY substr(item_id, 2)::int LIMIT 15"
    )
    after = db.execute(
        "SELECT i.category FROM reco.recommend('u0', 10) AS r"
        " JOIN reco.items AS i USING (item_id)"
    ).fetchall()
    comedies_before = sum(row[0] == "Comedy" for row in before)
    comedies_after = sum(row[0] == "Comedy" for row in after)
    assert comedies_after >= 5 and comedies_after >= comedies_before + 4
    db.rollback()


def test_similar_items_excludes_the_item_itself(db):
    rows = db.execute("SELECT * FROM reco.similar_items('m0', 10)").fetchall()
    assert len(rows) == 10 and "m0" not in _ids(rows)
    genres = db.execute(
        "SELECT i.category FROM reco.similar_items('m0', 10) AS s"
        " JOIN reco.items AS i USING (item_id)"
    ).fetchall()
    assert sum(g[0] == "Western" for g in genres) > 5


def test_similar_items_of_unknown_item_says_so(db):
    with pytest.raises(psycopg.errors.NoDataFound, match="item nope does not exist"):
        db.execute("SELECT * FROM reco.similar_items('nope')")
    db.rollback()


def test_recommend_for_session(db):
    session = ["m1", "m6", "m11"]  # musicals (genre = number % 5)
    rows = db.execute(
        "SELECT r.item_id, i.category"
        " FROM reco.recommend_for_session(%s::text[], 10) AS r"
        " JOIN reco.items AS i USING (item_id)",
        (session,),
    ).fetchall()
    assert len(rows) == 10 and not set(session) & set(_ids(rows))
    assert sum(row[1] == "Musical" for row in rows) > 5
    as_int = db.execute("SELECT * FROM reco.recommend_for_session(ARRAY[1, 2])")
    assert len(as_int.fetchall()) == 10  # unknown ids: popular items


def test_bad_k_is_refused(db):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="k must be"):
        db.execute("SELECT * FROM reco.recommend('u1', 0)")
    db.rollback()


def test_views_for_bi_tools(db):
    rows = db.execute(
        "SELECT user_id, rank, item_id, title, score FROM reco.user_recommendations"
        " WHERE user_id = 'u1' ORDER BY rank"
    ).fetchall()
    assert [row[1] for row in rows] == list(range(1, 11))
    direct = db.execute("SELECT item_id FROM reco.recommend('u1', 10)").fetchall()
    assert [row[2] for row in rows] == _ids(direct)

    neighbours = db.execute(
        "SELECT neighbour_id FROM reco.item_neighbours WHERE item_id = 'm0'"
    ).fetchall()
    assert len(neighbours) == 10

    runs = db.execute("SELECT version, is_active FROM reco.model_runs").fetchall()
    assert runs == [(registry.active(db).version, True)]
    coverage = db.execute("SELECT items, embedded_items FROM reco.coverage").fetchone()
    assert coverage == (N_ITEMS, N_ITEMS)


def _plan(db, exact=False):
    model = registry.active(db)
    query = db.execute(
        "SELECT reco.nearest_items_sql(%s, %s, 10, %s)",
        (model.version, model.dimensions, exact),
    ).fetchone()[0]
    vector = db.execute(
        "SELECT embedding FROM reco.user_embeddings WHERE user_id = 'u1'"
    ).fetchone()[0]
    db.execute("PREPARE nearest (vector, text[], text, text, text[]) AS " + query)
    # EXPLAIN EXECUTE takes literals, not bound parameters.
    plan = db.execute(
        sql.SQL(
            "EXPLAIN EXECUTE nearest ({}::vector, '{{}}', 'u1', NULL, NULL)"
        ).format(sql.Literal(vector.to_text()))
    ).fetchall()
    db.execute("DEALLOCATE nearest")
    return "\n".join(row[0] for row in plan), model.version


def test_recommendation_query_uses_the_hnsw_index(db):
    plan, version = _plan(db)
    assert f"Index Scan using item_embeddings_v{version}_hnsw" in plan
    exact_plan, _ = _plan(db, exact=True)
    assert "hnsw" not in exact_plan


def test_fallback_honours_candidates_and_seen_items(db):
    wanted = ["m500", "m505", "m510"]
    rows = db.execute(
        "SELECT item_id FROM reco.recommend('nobody', 3, true, NULL, %s::text[])",
        (wanted,),
    ).fetchall()
    assert sorted(_ids(rows)) == sorted(wanted)

    # Events only on items without vectors: popular items, minus those seen.
    db.execute(
        "INSERT INTO reco.items (item_id, title) VALUES ('x1', 'x'), ('x2', 'y');"
        "INSERT INTO reco.events (user_id, item_id, kind, occurred_at)"
        " SELECT 'pp', item_id, 'view', now() FROM reco.items"
        " WHERE item_id IN ('x1', 'x2')"
    )
    rows = db.execute("SELECT item_id FROM reco.recommend('pp', 2000)").fetchall()
    assert not {"x1", "x2"} & set(_ids(rows))
    db.rollback()


def test_nulls_in_id_arrays_are_ignored(db):
    with_null = db.execute(
        "SELECT * FROM reco.recommend_for_session(ARRAY['m1', NULL, 'm6'], 5)"
    ).fetchall()
    without = db.execute(
        "SELECT * FROM reco.recommend_for_session(ARRAY['m1', 'm6'], 5)"
    ).fetchall()
    assert with_null == without and len(without) == 5
    assert (
        len(
            db.execute(
                "SELECT * FROM reco.popular_items(3, NULL, ARRAY['m1', NULL])"
            ).fetchall()
        )
        == 3
    )


def test_category_matches_any_listed_part_in_any_case(db):
    db.execute("UPDATE reco.items SET category = 'Drama, HORROR' WHERE item_id = 'm2'")
    rows = db.execute(
        "SELECT item_id FROM reco.recommend('u1', 1000, true, 'horror')"
    ).fetchall()
    assert "m2" in _ids(rows) or "m2" in _ids(
        db.execute("SELECT item_id FROM reco.events WHERE user_id = 'u1'")
    )
    assert len(rows) > 100
    db.rollback()


def test_live_history_vector_matches_the_trained_user_vector(db):
    """SQL weights a history as training did: same vector for the same events."""
    rows = db.execute(
        "SELECT u.user_id, 1 - (u.embedding <=> reco.user_history_vector(u.user_id))"
        " FROM reco.user_embeddings AS u WHERE u.user_id IN ('u1', 'u2', 'u3')"
    ).fetchall()
    assert len(rows) == 3
    for user, similarity in rows:
        assert similarity > 0.999, user
