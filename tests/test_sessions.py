"""Sessions cut on inactivity, dwell filtering and short-session dropping."""

import numpy as np

from reco.dataset import Interactions
from reco.sessions import build_sessions


def _events(rows):
    users, items, minutes, values = zip(*rows, strict=True)
    return Interactions(
        user_ids=np.array(users, dtype=object),
        item_ids=np.array(items, dtype=object),
        kinds=np.array(["interaction"] * len(rows), dtype=object),
        timestamps=np.array(minutes, dtype=np.float64) * 60.0,
        values=np.array(values, dtype=np.float32),
    )


def _as_items(events, sessions):
    return [
        list(events.item_ids[sessions.events[a:b]])
        for a, b in zip(sessions.starts[:-1], sessions.starts[1:], strict=True)
    ]


def test_gap_splits_sessions_and_drops_single_events():
    # u1: a b (10 min) | 45 min pause | c alone | 31 min pause | d e
    # u2: rows given out of time order; one session x y z
    events = _events(
        [
            ("u1", "a", 0, 1),
            ("u2", "z", 20, 1),
            ("u1", "b", 10, 1),
            ("u1", "c", 55, 1),
            ("u1", "d", 86, 1),
            ("u1", "e", 100, 1),
            ("u2", "x", 0, 1),
            ("u2", "y", 5, 1),
        ]
    )
    sessions = build_sessions(events, gap_minutes=30)
    assert _as_items(events, sessions) == [["a", "b"], ["d", "e"], ["x", "y", "z"]]
    assert list(sessions.user_ids) == ["u1", "u1", "u2"]
    assert list(sessions.lengths()) == [2, 2, 3]
    assert list(sessions.session_of_event()) == [0, 0, 1, 1, 2, 2, 2]


def test_gap_exactly_at_threshold_stays_in_session():
    events = _events([("u", "a", 0, 1), ("u", "b", 30, 1), ("u", "c", 60.5, 1)])
    assert _as_items(events, build_sessions(events, 30)) == [["a", "b"]]


def test_no_gap_keeps_whole_history():
    events = _events([("u", "a", 0, 1), ("u", "b", 1000, 1), ("v", "c", 0, 1)])
    assert _as_items(events, build_sessions(events, None)) == [["a", "b"]]


def test_dwell_threshold_drops_short_events_before_cutting():
    events = _events(
        [("u", "a", 0, 40), ("u", "b", 1, 2), ("u", "c", 2, 30), ("u", "d", 3, np.nan)]
    )
    sessions = build_sessions(events, 30, min_dwell=5)
    assert _as_items(events, sessions) == [["a", "c", "d"]]
