"""Loading MovieLens and users' own CSVs into reco.items and reco.events."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from conftest import movielens_dir

from reco import database
from reco.dataset import Catalog, Interactions
from reco.loading import (
    LoadError,
    LoadSummary,
    load_events,
    load_events_csv,
    load_items,
    load_items_csv,
    load_movielens,
)
from reco.movielens import read_ratings


def count(conn, table: str, where: str = "true") -> int:
    return conn.execute(f"SELECT count(*) FROM reco.{table} WHERE {where}").fetchone()[
        0
    ]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_movielens_loads_every_movie_and_rating_once(conn):
    folder = movielens_dir()
    ratings = read_ratings(folder)

    summary = load_movielens(conn, folder)

    assert summary == LoadSummary(items=9742, events=100836)
    assert count(conn, "items") == 9742
    assert count(conn, "events") == 100836
    assert count(conn, "events", "kind = 'conversion'") == int(
        (ratings.values >= 4.0).sum()
    )
    assert count(conn, "events", "kind = 'conversion' AND value < 4") == 0
    title, category, body = conn.execute(
        "SELECT title, category, body FROM reco.items WHERE item_id = '1'"
    ).fetchone()
    assert (title, category, body) == (
        "Toy Story (1995)",
        "Adventure|Animation|Children|Comedy|Fantasy",
        "",
    )
    first = conn.execute(
        "SELECT occurred_at, value FROM reco.events"
        " WHERE user_id = '1' AND item_id = '1'"
    ).fetchone()
    assert first == (datetime.fromtimestamp(964982703, timezone.utc), 4.0)

    assert load_movielens(conn, folder) == LoadSummary(items=0, events=0)
    assert count(conn, "events") == 100836


def test_movielens_excluded_items_keep_the_item_but_not_its_events(conn):
    folder = movielens_dir()
    ratings = read_ratings(folder)
    held_back = {"1", "2", "318"}
    rated = int(np.isin(ratings.item_ids, list(held_back)).sum())

    summary = load_movielens(conn, folder, exclude_items=held_back)

    assert summary == LoadSummary(items=9742, events=100836 - rated)
    assert count(conn, "items", "item_id IN ('1', '2', '318')") == 3
    assert count(conn, "events", "item_id IN ('1', '2', '318')") == 0


def test_movielens_malformed_rating_names_the_line_and_writes_nothing(conn, tmp_path):
    source = movielens_dir()
    write(tmp_path / "movies.csv", (source / "movies.csv").read_text("utf-8"))
    write(
        tmp_path / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,good,964981247\n",
    )

    with pytest.raises(LoadError, match="line 3"):
        load_movielens(conn, tmp_path)

    assert count(conn, "items") == 0


def test_items_and_events_from_arrays_skip_what_is_already_there(conn):
    catalog = Catalog(
        item_ids=np.array(["a", "b"], dtype=object),
        titles=np.array(["Alpha", "Beta"], dtype=object),
        bodies=np.array(["", "about beta"], dtype=object),
        categories=np.array(["x", ""], dtype=object),
    )
    events = Interactions(
        user_ids=np.array(["u1", "u1", "u2"], dtype=object),
        item_ids=np.array(["a", "b", "a"], dtype=object),
        kinds=np.array(["interaction", "conversion", "interaction"], dtype=object),
        timestamps=np.array([1.7e9, 1.7e9 + 60, 1.7e9 + 0.25]),
        values=np.array([np.nan, 5.0, 2.5], dtype=np.float32),
    )

    assert load_items(conn, catalog) == 2
    assert load_events(conn, events) == 3
    assert load_items(conn, catalog) == 0
    assert load_events(conn, events) == 0

    changed = Catalog(
        catalog.item_ids,
        np.array(["Alpha 2", "Beta"], dtype=object),
        catalog.bodies,
        catalog.categories,
    )
    assert load_items(conn, changed) == 1
    rows = conn.execute(
        "SELECT item_id, title, category, available FROM reco.items ORDER BY item_id"
    ).fetchall()
    assert rows == [("a", "Alpha 2", "x", True), ("b", "Beta", None, True)]
    assert count(conn, "events", "value IS NULL") == 1
    stamp = conn.execute(
        "SELECT extract(epoch FROM occurred_at) FROM reco.events WHERE user_id = 'u2'"
    ).fetchone()[0]
    assert float(stamp) == 1.7e9 + 0.25


def test_event_with_unknown_item_names_it_and_writes_nothing(conn, tmp_path):
    load_items_csv(conn, write(tmp_path / "items.csv", "item_id,title\nx,X\n"))
    events = write(
        tmp_path / "events.csv",
        "user_id,item_id,kind,occurred_at\n"
        "u,x,interaction,1700000000\n"
        "u,ghost,interaction,1700000001\n",
    )

    with pytest.raises(LoadError, match="line 3.*'ghost'.*load items first"):
        load_events_csv(conn, events)

    assert count(conn, "events") == 0
    arrays = Interactions(
        np.array(["u"], dtype=object),
        np.array(["ghost"], dtype=object),
        np.array(["interaction"], dtype=object),
        np.array([1.7e9]),
        np.array([1.0], dtype=np.float32),
    )
    with pytest.raises(LoadError, match="row 0: item 'ghost'") as caught:
        load_events(conn, arrays)
    assert caught.value.path is None and caught.value.line == 0


def test_csv_files_load_with_quotes_crlf_and_text_ids(conn, tmp_path):
    items = write(
        tmp_path / "items.csv",
        "\ufeffitem_id,title,body,category,available\r\n"
        '007,"Bond, James","Shaken,\r\nnot stirred",spy,false\r\n'
        "42,,only a body,,\r\n",
    )
    events = write(
        tmp_path / "events.csv",
        "user_id,item_id,kind,occurred_at,value\r\n"
        "0012,007,interaction,2024-05-01T12:30:00Z,\r\n"
        "0012,42,conversion,2024-05-01 13:00:00+02:00,9.5\r\n"
        "0013,007,interaction,1714566600,1\r\n",
    )

    assert load_items_csv(conn, items) == 2
    assert load_events_csv(conn, events) == 3
    assert load_events_csv(conn, events) == 0

    assert conn.execute(
        "SELECT item_id, title, body, category, available FROM reco.items"
        " ORDER BY item_id"
    ).fetchall() == [
        ("007", "Bond, James", "Shaken,\r\nnot stirred", "spy", False),
        ("42", "", "only a body", None, True),
    ]
    rows = conn.execute(
        "SELECT user_id, item_id, occurred_at, value FROM reco.events ORDER BY event_id"
    ).fetchall()
    noon = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
    assert rows[0] == ("0012", "007", noon, None)
    assert rows[1][2] == datetime(2024, 5, 1, 11, 0, tzinfo=timezone.utc)
    assert rows[2] == ("0013", "007", noon, 1.0)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "events.csv",
            "user_id,item_id,kind,occurred_at\n"
            "u,a,interaction,1700000000\n"
            "u,a,interaction,yesterday\n",
            "events.csv line 3: occurred_at 'yesterday' is not a timestamp: "
            "use ISO 8601",
        ),
        (
            "events.csv",
            "user_id,item_id,kind,occurred_at,value\nu,a,interaction,1,lots\n",
            "line 2: value 'lots' is not a finite number",
        ),
        (
            "events.csv",
            "user,item_id,kind,occurred_at\n",
            "line 1: unknown column.*'user'.*expected columns user_id, item_id",
        ),
        (
            "events.csv",
            "user_id,item_id,occurred_at\nu,a,1\n",
            "line 1: missing column.*kind",
        ),
        (
            "items.csv",
            "item_id,title,body\na,A,\n ,B,\n",
            "line 3: empty item_id",
        ),
        (
            "items.csv",
            "item_id,title,body\na,A,\nb,,\n",
            "line 3: item 'b' has neither title nor body",
        ),
        (
            "items.csv",
            "item_id,title\na,A\nb,B,extra\n",
            "line 3: 3 field.* header has 2",
        ),
        (
            "items.csv",
            "item_id,title\na,A\nb,B\na,again\n",
            "line 4: item_id 'a' repeats line 2",
        ),
        (
            "items.csv",
            "item_id,title,available\na,A,maybe\n",
            "line 2: available 'maybe' is not a boolean",
        ),
    ],
)
def test_bad_csv_row_names_the_line_and_writes_nothing(
    conn, tmp_path, name, text, message
):
    load_items_csv(conn, write(tmp_path / "known.csv", "item_id,title\na,A\n"))
    path = write(tmp_path / name, text)
    loader = load_events_csv if name == "events.csv" else load_items_csv

    with pytest.raises(LoadError, match=message) as caught:
        loader(conn, path)

    assert caught.value.path == path
    assert count(conn, "items") == 1
    assert count(conn, "events") == 0


def test_loads_join_the_callers_transaction(conn, db_url, tmp_path):
    load_items_csv(conn, write(tmp_path / "items.csv", "item_id,title\na,A\n"))
    bad = write(tmp_path / "bad.csv", "item_id,title\nb,B\nb,again\n")
    with pytest.raises(LoadError):
        load_items_csv(conn, bad)

    with database.connect(db_url) as other:
        assert count(other, "items") == 0
        assert count(conn, "items") == 1
        conn.commit()
        assert count(other, "items") == 1
