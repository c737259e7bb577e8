"""Write items and events into reco.items and reco.events with COPY, all or nothing.

Every public ``load_*`` function runs inside ``conn.transaction()``: a failure rolls
the whole load back and writes nothing. None of them commits. On a connection that
is not in autocommit mode the rows join the caller's transaction (a savepoint within
it), so the caller commits, e.g. by leaving ``with connect() as conn:``. On an
autocommit connection the load is its own transaction and is committed on return.
"""

from __future__ import annotations

import codecs
import csv
import logging
import math
import re
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import numpy as np
import psycopg
from psycopg.pq import TransactionStatus

from reco.dataset import Catalog, Interactions
from reco.movielens import MovieLensFormatError, read_movies, read_ratings

logger = logging.getLogger("reco")

ITEM_COLUMNS = ("item_id", "title", "body", "category", "available")
EVENT_COLUMNS = ("user_id", "item_id", "kind", "occurred_at", "value")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
# csv's default of 131072 characters is too small for article bodies.
FIELD_LIMIT = 10 * 1024 * 1024
# Events outside these years are typing or unit mistakes (milliseconds, mostly).
_EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc).timestamp()
_LATEST = datetime(2201, 1, 1, tzinfo=timezone.utc).timestamp()
_REAL_MAX = float(np.finfo(np.float32).max)
_REAL_TINY = float(np.finfo(np.float32).tiny)
# Possessive, as csv reads them: '"a""' is an open field holding 'a"', not '"a"'
# followed by a stray quote.
_QUOTED_FIELD = re.compile(r'"[^"]*+(?:""[^"]*+)*+"')
_UNQUOTED_FIELD = re.compile(r"[^,\r\n]*")
_BEYOND_REAL = (
    "is beyond the range of a real (3.4e38 either way): scale it down, "
    "or leave it empty"
)
_QUOTING = (
    'a field holding commas, quotes or line breaks is enclosed in " and a quote '
    'inside it is written twice ("")'
)

# (line, item_id, title, body, category, available); available None = not given.
ItemRow = tuple[int, str, str, str, "str | None", "bool | None"]
# (line, user_id, item_id, kind, seconds since the epoch, value or None).
EventRow = tuple[int, str, str, str, float, "float | None"]


class LoadError(ValueError):
    """A row cannot be loaded; nothing of the load was written.

    Attributes:
        path: the file read, or None for in-memory data.
        line: the file's line number (header = line 1), or the row index into the
            in-memory arrays; None when the problem is not one row's.
        reason: what is wrong and how to fix it.
    """

    def __init__(
        self, reason: str, path: str | Path | None = None, line: int | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        if path is not None and line is not None:
            message = f"{path} line {line}: {reason}"
        elif path is not None:
            message = f"{path}: {reason}"
        elif line is not None:
            message = f"row {line}: {reason}"
        else:
            message = reason
        super().__init__(message)


@dataclass(frozen=True)
class LoadSummary:
    """Rows written by one load: items inserted or changed, events newly inserted."""

    items: int
    events: int


def load_items(conn: psycopg.Connection, catalog: Catalog) -> int:
    """Insert new items and update the title, body and category of known ones.

    Returns the number of rows written (new or changed). ``available`` keeps its
    value for known items and defaults to true for new ones. Errors name the row
    index into the catalogue's arrays.
    """
    rows = _catalog_rows(catalog)
    with _atomic(conn):
        return _write_items(conn, rows, path=None, with_available=False)


def load_events(conn: psycopg.Connection, events: Interactions) -> int:
    """Insert events whose items are in reco.items; returns rows newly inserted.

    An event already stored (same user, item, kind and time) is skipped, so loading
    the same events twice does not duplicate them. NaN values are stored as NULL.
    """
    rows = _interaction_rows(events, np.arange(len(events)))
    with _atomic(conn):
        return _write_events(conn, rows, path=None)


def load_movielens(
    conn: psycopg.Connection,
    folder: str | Path,
    exclude_items: Collection[str] = (),
) -> LoadSummary:
    """Load a MovieLens folder: movies.csv into items, ratings.csv into events.

    Every rating becomes one event, a "conversion" when it is 4.0 or more and an
    "interaction" otherwise, with the rating as its value. The events of
    ``exclude_items`` are left out while the items themselves are loaded, which
    holds them back as new items with no history.
    """
    folder = Path(folder)
    # Read both files before writing, so a malformed row writes nothing.
    try:
        catalog = read_movies(folder)
        ratings = read_ratings(folder)
    except MovieLensFormatError as error:
        raise LoadError(str(error)) from error

    # Header is line 1, so rating i sits on line i + 2 of ratings.csv.
    lines = np.arange(len(ratings)) + 2
    if exclude_items:
        kept = ~np.isin(ratings.item_ids, np.asarray(list(exclude_items), dtype=object))
        ratings, lines = ratings.subset(kept), lines[kept]
        logger.debug(
            "left out %d events of %d items", (~kept).sum(), len(exclude_items)
        )

    with _atomic(conn):
        items = _write_items(
            conn, _catalog_rows(catalog, base=2), folder / "movies.csv", False
        )
        events = _write_events(
            conn, _interaction_rows(ratings, lines), folder / "ratings.csv"
        )
    return LoadSummary(items=items, events=events)


def load_items_csv(conn: psycopg.Connection, path: str | Path) -> int:
    """Load a user's items.csv (see docs/loading.md); returns rows written."""
    path = Path(path)
    rows = list(_parse_items(path))
    with _atomic(conn):
        return _write_items(conn, rows, path, with_available=True)


def load_events_csv(conn: psycopg.Connection, path: str | Path) -> int:
    """Load a user's events.csv (see docs/loading.md); returns rows newly inserted."""
    path = Path(path)
    rows = list(_parse_events(path))
    with _atomic(conn):
        return _write_events(conn, rows, path)


@contextmanager
def _atomic(conn: psycopg.Connection) -> Iterator[None]:
    """All or nothing, and inside the caller's transaction when there can be one."""
    if not conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        # On an idle connection psycopg's transaction() would BEGIN and COMMIT on
        # its own; a first statement opens the implicit transaction instead, so
        # the commit stays with the caller.
        conn.execute("SELECT 1")
    with conn.transaction():
        yield


def _write_items(
    conn: psycopg.Connection,
    rows: list[ItemRow],
    path: Path | None,
    with_available: bool,
) -> int:
    _check_unique_items(rows, path)
    conn.execute(
        "CREATE TEMP TABLE reco_load_items (line int, item_id text, title text,"
        " body text, category text, available boolean) ON COMMIT DROP"
    )
    with conn.cursor().copy(
        "COPY reco_load_items (line, item_id, title, body, category, available)"
        " FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)

    _invalidate_content_vectors(conn)

    # Rows that would not change anything are not counted as written.
    if with_available:
        statement = """
            INSERT INTO reco.items (item_id, title, body, category, available)
            SELECT item_id, title, body, category, coalesce(available, true)
            FROM reco_load_items
            ON CONFLICT (item_id) DO UPDATE SET title = EXCLUDED.title,
                body = EXCLUDED.body, category = EXCLUDED.category,
                available = EXCLUDED.available
            WHERE (items.title, items.body, items.category, items.available)
                IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.body, EXCLUDED.category,
                EXCLUDED.available)
        """
    else:
        statement = """
            INSERT INTO reco.items (item_id, title, body, category)
            SELECT item_id, title, body, category FROM reco_load_items
            ON CONFLICT (item_id) DO UPDATE SET title = EXCLUDED.title,
                body = EXCLUDED.body, category = EXCLUDED.category
            WHERE (items.title, items.body, items.category)
                IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.body, EXCLUDED.category)
        """
    written = conn.execute(statement).rowcount
    conn.execute("DROP TABLE reco_load_items")
    logger.info("loaded %d items (%d unchanged)", written, len(rows) - written)
    return written


def _invalidate_content_vectors(conn: psycopg.Connection) -> None:
    """Drop the content vectors of known items whose text the load changes.

    embed-new-items then embeds them again from the new text. Behaviour vectors
    are learned from events, not text, and stay.
    """
    dropped = conn.execute(
        """
        DELETE FROM reco.item_embeddings e
        USING reco_load_items l, reco.items i
        WHERE e.source = 'content' AND e.item_id = l.item_id
            AND i.item_id = l.item_id
            AND (i.title, i.body, i.category)
                IS DISTINCT FROM (l.title, l.body, l.category)
        """
    ).rowcount
    if dropped:
        logger.info("invalidated %d content vectors of changed items", dropped)


def _write_events(
    conn: psycopg.Connection, rows: Iterable[EventRow], path: Path | None
) -> int:
    conn.execute(
        "CREATE TEMP TABLE reco_load_events (line int, user_id text, item_id text,"
        " kind text, occurred_epoch double precision, value real) ON COMMIT DROP"
    )
    total = 0
    with conn.cursor().copy(
        "COPY reco_load_events (line, user_id, item_id, kind, occurred_epoch, value)"
        " FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)
            total += 1

    # Checked here rather than left to the foreign key, whose error names neither
    # the row nor the fix.
    unknown = conn.execute(
        """
        SELECT min(line), count(*), count(DISTINCT item_id),
            (array_agg(item_id ORDER BY line))[1]
        FROM reco_load_events e
        WHERE NOT EXISTS (SELECT FROM reco.items i WHERE i.item_id = e.item_id)
        """
    ).fetchone()
    if unknown[1]:
        line, events, items, item_id = unknown
        raise LoadError(
            f"item {item_id!r} is not in reco.items ({events} event(s) name "
            f"{items} unknown item(s)): load items first",
            path,
            line,
        )

    inserted = conn.execute(
        """
        INSERT INTO reco.events (user_id, item_id, kind, occurred_at, value)
        SELECT user_id, item_id, kind, to_timestamp(occurred_epoch), value
        FROM reco_load_events
        ORDER BY line
        ON CONFLICT ON CONSTRAINT events_natural_key DO NOTHING
        """
    ).rowcount
    conn.execute("DROP TABLE reco_load_events")
    logger.info("loaded %d events (%d already present)", inserted, total - inserted)
    return inserted


def _check_unique_items(rows: list[ItemRow], path: Path | None) -> None:
    # ON CONFLICT DO UPDATE cannot touch one row twice in a statement.
    first_seen: dict[str, int] = {}
    for line, item_id, *_ in rows:
        if item_id in first_seen:
            where = "line" if path is not None else "row"
            raise LoadError(
                f"item_id {item_id!r} repeats {where} {first_seen[item_id]}: "
                "give each item one row",
                path,
                line,
            )
        first_seen[item_id] = line


def _catalog_rows(catalog: Catalog, base: int = 0) -> list[ItemRow]:
    rows = []
    fields = zip(
        catalog.item_ids.tolist(),
        catalog.titles.tolist(),
        catalog.bodies.tolist(),
        catalog.categories.tolist(),
        strict=True,
    )
    for index, (item_id, title, body, category) in enumerate(fields):
        item_id = _text(item_id)
        if not item_id:
            raise LoadError("empty item id: every item needs one", line=index + base)
        rows.append(
            (
                index + base,
                item_id,
                _text(title),
                _text(body),
                _text(category) or None,
                None,
            )
        )
    return rows


def _interaction_rows(events: Interactions, lines: np.ndarray) -> Iterator[EventRow]:
    fields = zip(
        lines.tolist(),
        events.user_ids.tolist(),
        events.item_ids.tolist(),
        events.kinds.tolist(),
        events.timestamps.tolist(),
        events.values.tolist(),
        strict=True,
    )
    for line, user_id, item_id, kind, stamp, value in fields:
        user_id, item_id, kind = _text(user_id), _text(item_id), _text(kind)
        if not user_id or not item_id or not kind:
            raise LoadError(
                "empty user id, item id or kind: every event needs all three",
                line=line,
            )
        problem = _time_problem(stamp, f"timestamp {stamp!r}", numeric=True)
        if problem:
            raise LoadError(problem, line=line)
        if value is None or math.isnan(value):
            value = None
        elif not abs(value) <= _REAL_MAX:
            raise LoadError(f"value {value!r} {_BEYOND_REAL}", line=line)
        yield line, user_id, item_id, kind, stamp, _real(value)


def _text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _real(value: float | None) -> float | None:
    # PostgreSQL refuses a real too close to zero ("out of range for type real")
    # rather than rounding it to zero, so round here; denormals go too.
    if value is None or abs(value) >= _REAL_TINY:
        return value
    return 0.0


def _time_problem(stamp: float, shown: str, numeric: bool) -> str | None:
    """Why ``stamp`` (seconds since the epoch) is not an event time, or None."""
    if _EARLIEST <= stamp < _LATEST:
        return None
    fix = "use ISO 8601 (2024-05-01T12:30:00Z) or seconds since the epoch"
    if not math.isfinite(stamp):
        return f"{shown} is not a timestamp: {fix}"
    if numeric and _EARLIEST <= stamp / 1000 < _LATEST:
        fix = "milliseconds? divide by 1000 for seconds since the epoch"
    when = "before the year 1900" if stamp < _EARLIEST else "after the year 2200"
    return f"{shown} is {when}: {fix}"


def _parse_items(path: Path) -> Iterator[ItemRow]:
    for line, row in _csv_rows(path, ITEM_COLUMNS, required=("item_id",)):
        item_id = row["item_id"]
        if not item_id:
            raise LoadError("empty item_id: every item needs one", path, line)
        title, body = row.get("title", ""), row.get("body", "")
        if not title and not body:
            raise LoadError(
                f"item {item_id!r} has neither title nor body: give it one or both, "
                "the content model reads them",
                path,
                line,
            )
        available = None
        if "available" in row:
            available = _parse_available(row["available"], path, line)
        yield line, item_id, title, body, row.get("category") or None, available


def _parse_available(text: str, path: Path, line: int) -> bool | None:
    word = text.strip().lower()
    if not word:
        return None
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise LoadError(
        f"available {text!r} is not a boolean: use true or false (empty means true)",
        path,
        line,
    )


def _parse_events(path: Path) -> Iterator[EventRow]:
    required = ("user_id", "item_id", "kind", "occurred_at")
    for line, row in _csv_rows(path, EVENT_COLUMNS, required=required):
        for column in ("user_id", "item_id", "kind"):
            if not row[column]:
                raise LoadError(
                    f"empty {column}: every event needs user_id, item_id and kind",
                    path,
                    line,
                )
        stamp = _parse_time(row["occurred_at"], path, line)
        value = _parse_value(row.get("value", ""), path, line)
        yield line, row["user_id"], row["item_id"], row["kind"], stamp, value


def _parse_time(text: str, path: Path, line: int) -> float:
    """Seconds since the epoch from a number or ISO 8601 (UTC when no offset)."""
    text = text.strip()
    numeric = True
    try:
        stamp = float(text)
    except ValueError:
        numeric = False
        try:
            # fromisoformat accepts a trailing "Z" only from Python 3.11 on.
            moment = datetime.fromisoformat(
                text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
            )
        except ValueError:
            stamp = math.nan
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            stamp = moment.timestamp()
    problem = _time_problem(stamp, f"occurred_at {text!r}", numeric)
    if problem:
        raise LoadError(problem, path, line)
    return stamp


def _parse_value(text: str, path: Path, line: int) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.inf
    if math.isnan(value):
        return None
    if not math.isfinite(value):
        raise LoadError(
            f"value {text!r} is not a finite number: use a number such as 4.5, "
            "or leave it empty",
            path,
            line,
        )
    if abs(value) > _REAL_MAX:
        raise LoadError(f"value {text!r} {_BEYOND_REAL}", path, line)
    return _real(value)


def _csv_rows(
    path: Path, columns: tuple[str, ...], required: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a headed CSV as dicts of stripped text, with their line numbers."""
    if not path.is_file():
        raise LoadError("file not found: check the path", path)
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)

    with path.open("rb") as handle:
        row_lines: list[str] = []
        # strict: without it a quote left open swallows the rest of the file
        # into one field instead of raising at the end of the data.
        reader = csv.reader(_text_lines(handle, path, row_lines), strict=True)
        try:
            header = [name.strip() for name in next(reader, [])]
            _check_header(header, columns, required, path)
            while True:
                # A quoted field may span lines: report the line where its row
                # starts.
                line = reader.line_num + 1
                row_lines.clear()
                fields = next(reader, None)
                if fields is None:
                    return
                if not fields or fields == [""]:
                    continue
                if len(fields) != len(header):
                    raise LoadError(
                        f"{len(fields)} field(s) where the header has "
                        f"{len(header)}: quote fields that contain commas",
                        path,
                        line,
                    )
                values = (value.strip() for value in fields)
                yield line, dict(zip(header, values, strict=True))
        except csv.Error as error:
            raise _csv_error(error, row_lines, reader.line_num, path) from error


def _check_header(
    header: list[str], columns: tuple[str, ...], required: tuple[str, ...], path: Path
) -> None:
    expected = (
        f"expected columns {', '.join(columns)} (required: {', '.join(required)})"
    )
    if not header:
        raise LoadError(f"no header row: {expected}", path, 1)
    unknown = [name for name in header if name not in columns]
    if unknown:
        raise LoadError(
            f"unknown column(s) {', '.join(map(repr, unknown))}: {expected}", path, 1
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise LoadError(f"column(s) {', '.join(repeated)} repeat: {expected}", path, 1)
    missing = [name for name in required if name not in header]
    if missing:
        raise LoadError(f"missing column(s) {', '.join(missing)}: {expected}", path, 1)
    if "title" in columns and "title" not in header and "body" not in header:
        raise LoadError(f"needs a title or body column: {expected}", path, 1)


def _text_lines(handle: BinaryIO, path: Path, row_lines: list[str]) -> Iterator[str]:
    """The file's lines as text, each also appended to ``row_lines``.

    Decoding line by line lets a bad byte be reported with its line; no UTF-8
    sequence holds a line-break byte, so this decodes as the whole file would.
    """
    number = 0
    for chunk in handle:
        # \r alone also ends a line, as with open(newline="").
        for raw in chunk.splitlines(keepends=True):
            number += 1
            if number == 1:
                # Spreadsheet programs write a byte-order mark.
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                before = raw[max(0, error.start - 20) : error.start]
                raise LoadError(
                    f"byte 0x{raw[error.start]:02x} after "
                    f"{before.decode('utf-8', 'replace')!r} is not UTF-8: save the "
                    "file as UTF-8 (in a spreadsheet program: CSV UTF-8)",
                    path,
                    number,
                ) from None
            if "\x00" in text:
                raise LoadError(
                    f"NUL byte (0x00) at column {text.index(chr(0)) + 1}, which "
                    "PostgreSQL text cannot hold: remove it (a file full of NUL "
                    "bytes is UTF-16: save it as UTF-8)",
                    path,
                    number,
                )
            row_lines.append(text)
            yield text


def _csv_error(
    error: csv.Error, row_lines: list[str], last: int, path: Path
) -> LoadError:
    """A LoadError for what csv.reader refused, at the line that caused it."""
    opened = _unclosed_quote_line(row_lines, last + 1 - len(row_lines))
    # csv raises one exception class for everything; its message tells them apart.
    if "field limit" in str(error):
        reason = f"a field is longer than {csv.field_size_limit()} characters"
        if opened is None:
            return LoadError(f"{reason}: shorten it", path, last)
        return LoadError(
            f"{reason}: close the quote opened on line {opened}, or shorten the field",
            path,
            opened,
        )
    if opened is not None:
        return LoadError(
            f"quote opened on line {opened} is never closed: close it; {_QUOTING}",
            path,
            opened,
        )
    return LoadError(f"{error}: {_QUOTING}", path, last)


def _unclosed_quote_line(row_lines: list[str], first: int) -> int | None:
    """The line of a quote that opens a field of the row and never closes."""
    row = "".join(row_lines)
    position = 0
    while position < len(row):
        if row[position] == '"':
            closed = _QUOTED_FIELD.match(row, position)
            if closed is None:
                return _line_at(row_lines, first, position)
            position = closed.end()
        else:
            position = _UNQUOTED_FIELD.match(row, position).end()
        if row[position : position + 1] != ",":
            return None
        position += 1
    return None


def _line_at(row_lines: list[str], first: int, position: int) -> int:
    end = 0
    for number, text in enumerate(row_lines, first):
        end += len(text)
        if position < end:
            return number
    return first + len(row_lines) - 1
