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


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
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
            "user_id,item_id,kind,occurred_at\nu,a,interaction,1714566600000\n",
            "line 2: occurred_at '1714566600000' is after the year 2200: "
            "milliseconds\\? divide by 1000",
        ),
        (
            "events.csv",
            "user_id,item_id,kind,occurred_at\nu,a,interaction,1e20\n",
            "line 2: occurred_at '1e20' is after the year 2200: use ISO 8601",
        ),
        (
            "events.csv",
            "user_id,item_id,kind,occurred_at\nu,a,interaction,1899-12-31\n",
            "line 2: occurred_at '1899-12-31' is before the year 1900",
        ),
        (
            "events.csv",
            "user_id,item_id,kind,occurred_at,value\n"
            "u,a,interaction,1,1\n"
            "u,a,interaction,2,1e39\n",
            "line 3: value '1e39' is beyond",
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
        (
            "items.csv",
            b"item_id,title\na,A\nb,Caf\xe9\n",
            "line 3: byte 0xe9 after 'b,Caf' is not UTF-8: save the file as UTF-8",
        ),
        (
            "items.csv",
            "item_id,title\na,A\nb,B\x00\n",
            "line 3: NUL byte",
        ),
        (
            "items.csv",
            'item_id,title\na,"A"x\n',
            "line 2: .*a quote inside it is written twice",
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


@pytest.mark.parametrize("name", ["items.csv", "events.csv"])
def test_unclosed_quote_names_its_line_and_writes_nothing(conn, tmp_path, name):
    load_items_csv(conn, write(tmp_path / "known.csv", "item_id,title\na,A\n"))
    if name == "items.csv":
        text = 'item_id,title\nsw1,"Swallow\nsw2,Second\nsw3,Third\n'
        loader = load_items_csv
    else:
        text = (
            "user_id,item_id,kind,occurred_at,value\n"
            'u,a,interaction,1700000000,"1\n'
            "u,a,interaction,1700000001,2\n"
        )
        loader = load_events_csv
    path = write(tmp_path / name, text)

    with pytest.raises(LoadError, match="quote opened on line 2 is never closed"):
        loader(conn, path)

    assert count(conn, "items") == 1
    assert count(conn, "events") == 0


def test_unclosed_quote_after_a_closed_multiline_field_names_its_own_line(
    conn, tmp_path
):
    path = write(
        tmp_path / "items.csv",
        'item_id,title,body\na,"two\nlines","never\nclosed\nb,B,\n',
    )

    with pytest.raises(LoadError, match="line 3 is never closed") as caught:
        load_items_csv(conn, path)

    assert caught.value.path == path and caught.value.line == 3


def test_changed_item_text_drops_its_content_vectors_only(conn, tmp_path, caplog):
    load_items_csv(
        conn, write(tmp_path / "items.csv", "item_id,title\na,A\nb,B\nc,C\n")
    )
    version = conn.execute(
        "INSERT INTO reco.models (dimensions) VALUES (3) RETURNING version"
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO reco.item_embeddings (model_version, item_id, embedding, source)"
        " VALUES (%(v)s, 'a', '[1,2,3]', 'content'),"
        " (%(v)s, 'b', '[1,2,3]', 'behaviour'), (%(v)s, 'c', '[1,2,3]', 'content')",
        {"v": version},
    )

    def vectors() -> list[tuple[str, str]]:
        return conn.execute(
            "SELECT item_id, source FROM reco.item_embeddings ORDER BY item_id"
        ).fetchall()

    reload = write(tmp_path / "same.csv", "item_id,title,available\na,A,false\n")
    assert load_items_csv(conn, reload) == 1
    assert len(vectors()) == 3

    changed = write(tmp_path / "new.csv", "item_id,title\na,A2\nb,B2\nc,C\n")
    with caplog.at_level("INFO", logger="reco"):
        assert load_items_csv(conn, changed) == 2
    assert vectors() == [("b", "behaviour"), ("c", "content")]
    assert "invalidated 1 content vector" in caplog.text

    catalog = Catalog(
        item_ids=np.array(["c"], dtype=object),
        titles=np.array(["C"], dtype=object),
        bodies=np.array([""], dtype=object),
        categories=np.array(["new"], dtype=object),
    )
    assert load_items(conn, catalog) == 1
    assert vectors() == [("b", "behaviour")]


def test_long_fields_tiny_values_and_multiline_titles_load(conn, tmp_path):
    title = "t" * 200_000
    items = write(
        tmp_path / "items.csv",
        f'item_id,title\nlong,{title}\nmulti,"first\nsecond"\n',
    )
    events = write(
        tmp_path / "events.csv",
        "user_id,item_id,kind,occurred_at,value\n"
        "u,long,interaction,1714566600,1e-50\n"
        "u,multi,interaction,1714566600,-3.4e38\n",
    )

    assert load_items_csv(conn, items) == 2
    assert load_events_csv(conn, events) == 2

    assert conn.execute(
        "SELECT length(title) FROM reco.items WHERE item_id = 'long'"
    ).fetchone() == (200_000,)
    assert conn.execute(
        "SELECT title FROM reco.items WHERE item_id = 'multi'"
    ).fetchone() == ("first\nsecond",)
    assert conn.execute(
        "SELECT value FROM reco.events ORDER BY item_id"
    ).fetchall() == [(0.0,), (pytest.approx(-3.4e38),)]


def test_field_over_the_size_limit_names_its_line(conn, tmp_path):
    path = write(
        tmp_path / "items.csv", f"item_id,title\na,A\nhuge,{'x' * (10 << 20)}x\n"
    )

    with pytest.raises(LoadError, match="line 3: .*longer than 10485760") as caught:
        load_items_csv(conn, path)

    assert caught.value.path == path


def test_arrays_with_milliseconds_or_values_beyond_real_name_the_row(conn):
    catalog = Catalog(
        item_ids=np.array(["a"], dtype=object),
        titles=np.array(["A"], dtype=object),
        bodies=np.array([""], dtype=object),
        categories=np.array([""], dtype=object),
    )
    load_items(conn, catalog)

    def events(stamps: list[float], values: list[float]) -> Interactions:
        return Interactions(
            np.array(["u"] * len(stamps), dtype=object),
            np.array(["a"] * len(stamps), dtype=object),
            np.array(["interaction"] * len(stamps), dtype=object),
            np.array(stamps),
            np.array(values),
        )

    with pytest.raises(LoadError, match="row 1: .*milliseconds"):
        load_events(conn, events([1.7e9, 1714566600000.0], [1.0, 1.0]))
    with pytest.raises(LoadError, match="row 0: value 1e\\+39"):
        load_events(conn, events([1.7e9], [1e39]))
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
