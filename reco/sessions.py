"""Cut each user's events into sessions, the sentences of the behaviour model."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from reco.dataset import Interactions

logger = logging.getLogger("reco")


@dataclass(frozen=True)
class Sessions:
    """Sessions as slices of an event index.

    Attributes:
        events: row numbers into the Interactions, grouped by session and in time
            order within a session.
        starts: offsets into ``events``; session k is
            ``events[starts[k]:starts[k + 1]]`` (len(starts) == sessions + 1).
        user_ids: the user of each session.
    """

    events: np.ndarray
    starts: np.ndarray
    user_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.starts) - 1

    def session_of_event(self) -> np.ndarray:
        """Session number of every entry of ``events``."""
        return np.repeat(np.arange(len(self)), np.diff(self.starts))

    def lengths(self) -> np.ndarray:
        """Number of events in each session."""
        return np.diff(self.starts)


def time_order(events: Interactions) -> np.ndarray:
    """Row numbers sorted by user, then timestamp, ties kept in row order."""
    rows = np.arange(len(events))
    return np.lexsort((rows, events.timestamps, events.user_ids.astype(str)))


def build_sessions(
    events: Interactions,
    gap_minutes: float | None = 30.0,
    min_dwell: float | None = None,
    dwell_kinds: tuple[str, ...] | None = None,
    min_length: int = 2,
) -> Sessions:
    """Split every user's events on gaps of inactivity.

    Args:
        events: the interactions to cut.
        gap_minutes: a pause longer than this starts a new session; None keeps a
            user's whole history as one session.
        min_dwell: when set, events whose value (read as seconds of dwell) is
            below it are dropped first; events without a value are kept.
        dwell_kinds: the kinds whose value is a dwell time; None means all.
        min_length: sessions with fewer events are dropped (2: a lone event has
            no neighbour to learn from).
    """
    order = time_order(events)
    if min_dwell is not None:
        values = events.values[order]
        short = values < min_dwell  # NaN compares False: no value, no drop
        if dwell_kinds is not None:
            short &= np.isin(events.kinds[order].astype(str), dwell_kinds)
        logger.debug("dropping %s events below %s dwell", int(short.sum()), min_dwell)
        order = order[~short]

    users = events.user_ids[order]
    stamps = events.timestamps[order]
    new_session = np.ones(len(order), dtype=bool)
    if len(order):
        new_session[1:] = users[1:] != users[:-1]
        if gap_minutes is not None:
            new_session[1:] |= np.diff(stamps) > gap_minutes * 60.0
    starts = np.flatnonzero(new_session)
    bounds = np.r_[starts, len(order)]
    keep = np.diff(bounds) >= min_length

    kept_starts = starts[keep]
    kept_lengths = np.diff(bounds)[keep]
    pieces = [order[s : s + n] for s, n in zip(kept_starts, kept_lengths, strict=True)]
    event_rows = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    offsets = np.r_[0, np.cumsum(kept_lengths)].astype(np.int64)
    logger.debug(
        "built %s sessions from %s events (%s too short dropped)",
        len(kept_starts),
        len(order),
        int((~keep).sum()),
    )
    return Sessions(event_rows, offsets, users[kept_starts])
