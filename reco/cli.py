"""The `reco-db` command line: schema, loading, training, cold items, serving."""

from __future__ import annotations

import logging
import os
import signal
import sys
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Annotated

import alembic.util
import psycopg
import sqlalchemy.exc
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from reco import database, migrations

app = typer.Typer(
    help="A recommender inside PostgreSQL: train item2vec + a text CNN, "
    "embed new items with ONNX, recommend with SQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Manage the reco schema (Alembic migrations).")
load_app = typer.Typer(help="Load items and events into the reco schema.")
app.add_typer(db_app, name="db")
app.add_typer(load_app, name="load")

console = Console()
errors = Console(stderr=True)
logger = logging.getLogger("reco")


class CommandError(Exception):
    """A failure already explained to the user."""


# Bad input and unmet preconditions: every reco exception derives from one of
# these and names the value and the fix, so the CLI prints its message alone
# (the traceback with --verbose). psycopg.Error carries the server's hint.
USER_ERRORS = (
    CommandError,
    ValueError,
    LookupError,
    RuntimeError,
    OSError,
    psycopg.Error,
    sqlalchemy.exc.SQLAlchemyError,
    alembic.util.CommandError,
)


@app.callback()
def configure(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug steps and timings.")
    ] = False,
    database_name: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="Use database NAME on the configured server (e.g. reco_demo).",
            envvar="RECO_DATABASE",
        ),
    ] = None,
) -> None:
    """Set up logging for the reco logger only (not the libraries')."""
    if database_name:
        os.environ["RECO_DATABASE"] = database_name
    handler = RichHandler(console=errors, show_path=False, show_time=False)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


@contextmanager
def connection():
    """A connection to the configured database, at the head revision.

    A database without the reco schema gets it; one at another revision is
    left alone (it was downgraded on purpose, or needs a deliberate upgrade).
    """
    url = database.database_url()
    current = migrations.current_revision(url)
    if current is None:
        logger.info("creating the reco schema")
        migrations.upgrade(url)
    elif current != migrations.head_revision():
        raise CommandError(
            f"the reco schema is at revision {current}, this reco-db needs "
            f"{migrations.head_revision()}: run `reco-db db upgrade`"
        )
    with database.connect(url) as conn:
        yield conn


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=False,
    )


class StepProgress:
    """Adapts the library's progress(step, done, total) calls to rich bars."""

    def __init__(self, bar: Progress):
        self.bar = bar
        self.tasks: dict[str, int] = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        if step not in self.tasks:
            self.tasks[step] = self.bar.add_task(step, total=total)
        self.bar.update(self.tasks[step], completed=done, total=total)


# -- schema -----------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Bring the database to the newest schema; harmless to run twice.

    Example: reco-db db upgrade
    """
    url = database.database_url()
    migrations.upgrade(url, revision)
    console.print(f"schema at revision {migrations.current_revision(url)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, or base.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask before dropping data.")
    ] = False,
) -> None:
    """Revert the schema; `base` drops the reco schema and all its data.

    Example: reco-db db downgrade base --yes
    """
    url = database.database_url()
    if revision == "base" and not yes:
        typer.confirm(
            "drop the reco schema with all items, events and models in "
            f"{database.describe(url)}?",
            abort=True,
        )
    migrations.downgrade(url, revision)
    console.print(f"schema at revision {migrations.current_revision(url)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision and the database reco-db is using.

    Example: reco-db db current
    """
    url = database.database_url()
    current = migrations.current_revision(url)
    console.print(database.describe(url), soft_wrap=True)
    console.print(f"revision: {current} (head {migrations.head_revision()})")


# -- loading -----------------------------------------------------------------


@load_app.command("movielens")
def load_movielens(
    path: Annotated[
        Path | None,
        typer.Argument(help="Folder with ratings.csv and movies.csv; default: fetch."),
    ] = None,
) -> None:
    """Load MovieLens: movies become items, ratings become events.

    Example: reco-db load movielens ~/data/ml-latest-small
    """
    from reco import fetch, loading

    folder = fetch.movielens_folder(path)
    with connection() as conn:
        summary = loading.load_movielens(conn, folder)
    console.print(f"loaded {summary.items} items and {summary.events} new events")


@load_app.command("items")
def load_items(
    path: Annotated[Path, typer.Argument(help="CSV: item_id,title[,body,category].")],
) -> None:
    """Load or update items from a CSV file (see docs/loading.md).

    Example: reco-db load items items.csv
    """
    from reco import loading

    with connection() as conn:
        count = loading.load_items_csv(conn, path)
    console.print(f"loaded {count} items from {path}")


@load_app.command("events")
def load_events(
    path: Annotated[
        Path, typer.Argument(help="CSV: user_id,item_id,kind,occurred_at[,value].")
    ],
) -> None:
    """Load events from a CSV file; rows already loaded are skipped.

    Example: reco-db load events events.csv
    """
    from reco import loading

    with connection() as conn:
        count = loading.load_events_csv(conn, path)
    console.print(f"loaded {count} new events from {path}")


# -- training and cold items ---------------------------------------------------


def _read_ids(value: str | None) -> list[str]:
    """Ids from a comma-separated list, or from a file with one id per line."""
    if not value:
        return []
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise CommandError(
                f"id file {path} not found: give @FILE with one id per line"
            )
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [part.strip() for part in value.split(",") if part.strip()]


@app.command()
def train(
    dimensions: Annotated[
        int | None, typer.Option(help="Embedding size (default: the model's).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Skip-gram epochs.")] = None,
    encoder_epochs: Annotated[
        int | None, typer.Option(help="Text encoder epochs.")
    ] = None,
    session_gap: Annotated[
        float | None, typer.Option(help="Minutes of inactivity that end a session.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same model.")] = 0,
    exclude_items: Annotated[
        str | None,
        typer.Option(
            help="Items to hold out as new items: ID,ID,... or @FILE (one per line)."
        ),
    ] = None,
) -> None:
    """Train on the database's events and switch serving to the new model.

    Example: reco-db train --exclude-items @new_items.txt
    """
    from dataclasses import replace

    from reco.training import TrainConfig
    from reco.training_run import run_training

    config = TrainConfig(seed=seed)
    overrides = {
        "dimensions": dimensions,
        "epochs": epochs,
        "encoder_epochs": encoder_epochs,
        "session_gap_minutes": session_gap,
    }
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    held_out = _read_ids(exclude_items)
    with connection() as conn, progress_bar() as bar:
        summary = run_training(conn, config, held_out, progress=StepProgress(bar))
    console.print(
        f"model {summary.version} active: {summary.items} item vectors "
        f"({summary.content_items} from text), {summary.users} user vectors, "
        f"{summary.dimensions} dimensions, {summary.seconds:.0f}s"
    )
    console.print(
        f"encoder {summary.onnx_path} sha256 {summary.onnx_sha256[:16]}, "
        f"onnxruntime vs torch max difference {summary.parity_difference:.1e}"
    )


@app.command("embed-new-items")
def embed_new_items(
    batch_size: Annotated[
        int, typer.Option(min=1, help="Items per transaction.")
    ] = 256,
    watch: Annotated[
        float | None,
        typer.Option(
            min=0.1, help="Keep running, checking for new items every N seconds."
        ),
    ] = None,
) -> None:
    """Embed every item that has no vector yet, with the active ONNX encoder.

    Example: reco-db embed-new-items --batch-size 512
    """
    import time

    from reco import new_items

    with connection() as conn:
        while True:
            waiting = new_items.pending_count(conn)
            conn.commit()
            with progress_bar() as bar:
                task = bar.add_task("embedding new items", total=waiting)
                report = new_items.embed_new_items(
                    conn, batch_size, progress=partial(bar.advance, task)
                )
            console.print(
                f"embedded {report.embedded} items with model {report.model_version}"
                + (
                    f"; skipped {len(report.skipped)} without usable text: "
                    f"{', '.join(report.skipped[:10])}"
                    if report.skipped
                    else ""
                )
            )
            if watch is None:
                break
            time.sleep(watch)


@app.command("add-item")
def add_item(
    item_id: Annotated[str, typer.Argument(help="The application's item id.")],
    title: Annotated[str, typer.Option(help="Item title.")] = "",
    body: Annotated[str, typer.Option(help="Item description.")] = "",
    category: Annotated[str | None, typer.Option(help="Item category.")] = None,
) -> None:
    """Insert an item and embed it in the same transaction.

    Example: reco-db add-item m-42 --title "Toy Story 5 (2027)" --category Animation
    """
    from reco.new_items import NewItem, add_items

    with connection() as conn:
        add_items(conn, [NewItem(item_id, title, body, category)])
    console.print(f"item {item_id} added and embedded; it is recommendable now")


# -- serving -------------------------------------------------------------------


def _print_items(title: str, rows: list[tuple]) -> None:
    table = Table(title=title)
    for column in ("#", "item", "title", "category", "score"):
        table.add_column(
            column, justify="right" if column in ("#", "score") else "left"
        )
    for rank, (item_id, name, category, score) in enumerate(rows, start=1):
        table.add_row(str(rank), item_id, name, category or "", f"{score:.3f}")
    console.print(table)


def _titled(conn: psycopg.Connection, query: str, params: tuple) -> list[tuple]:
    return conn.execute(
        f"SELECT r.item_id, i.title, i.category, r.score FROM {query} AS r"
        " JOIN reco.items AS i USING (item_id) ORDER BY r.score DESC, r.item_id",
        params,
    ).fetchall()


@app.command()
def recommend(
    user_id: Annotated[str, typer.Argument(help="The application's user id.")],
    k: Annotated[
        int, typer.Option("-k", min=1, max=10_000, help="Number of items.")
    ] = 10,
    include_seen: Annotated[
        bool, typer.Option(help="Also recommend items the user already has.")
    ] = False,
    category: Annotated[
        str | None, typer.Option(help="Only items of this category.")
    ] = None,
) -> None:
    """Print the top-k items for a user, with titles and scores.

    Example: reco-db recommend 42 -k 5
    """
    with connection() as conn:
        rows = _titled(
            conn,
            "reco.recommend(%s::text, %s, %s, %s)",
            (user_id, k, not include_seen, category),
        )
    _print_items(f"recommendations for user {user_id}", rows)


@app.command()
def similar(
    item_id: Annotated[str, typer.Argument(help="The application's item id.")],
    k: Annotated[
        int, typer.Option("-k", min=1, max=10_000, help="Number of items.")
    ] = 10,
) -> None:
    """Print the items nearest to an item, with titles and scores.

    Example: reco-db similar 1 -k 5
    """
    with connection() as conn:
        name = conn.execute(
            "SELECT title FROM reco.items WHERE item_id = %s", (item_id,)
        ).fetchone()
        rows = _titled(conn, "reco.similar_items(%s::text, %s)", (item_id, k))
    _print_items(f"items like {item_id} {name[0] if name else ''}", rows)


@app.command()
def session(
    item_ids: Annotated[list[str], typer.Argument(help="Items viewed, oldest first.")],
    k: Annotated[
        int, typer.Option("-k", min=1, max=10_000, help="Number of items.")
    ] = 10,
) -> None:
    """Print recommendations for an anonymous session of viewed items.

    Example: reco-db session 1 260 1196
    """
    with connection() as conn:
        rows = _titled(
            conn, "reco.recommend_for_session(%s::text[], %s)", (item_ids, k)
        )
    _print_items("recommendations for the session", rows)


@app.command()
def models() -> None:
    """List training runs, their status and metrics.

    Example: reco-db models
    """
    from reco import registry

    with connection() as conn:
        records = registry.all_models(conn)
    table = Table(title="models")
    for column in (
        "version",
        "created",
        "status",
        "active",
        "dims",
        "warm R@20",
        "cold R@20",
        "sha256",
    ):
        table.add_column(column, no_wrap=column in ("created", "sha256"))
    for record in records:
        metrics = record.metrics
        table.add_row(
            str(record.version),
            f"{record.created_at:%Y-%m-%d %H:%M}",
            record.status,
            "yes" if record.is_active else "",
            str(record.dimensions),
            _figure(metrics.get("warm_recall@20")),
            _figure(metrics.get("cold_recall@20")),
            (record.onnx_sha256 or "")[:12],
        )
    console.print(table)


def _figure(value) -> str:
    return "" if value is None else f"{value:.3f}"


@app.command()
def activate(
    version: Annotated[int, typer.Argument(help="Model version to serve.")],
) -> None:
    """Serve another trained model, e.g. to roll back a retrain.

    Example: reco-db activate 3
    """
    from reco import registry
    from reco.new_items import pending_count

    with connection() as conn:
        registry.activate(conn, version)
        waiting = pending_count(conn)
    console.print(f"model {version} is now active")
    if waiting:
        console.print(
            f"{waiting} items have no vector in model {version}: "
            "run `reco-db embed-new-items`"
        )


# -- evaluation and demo ---------------------------------------------------------


@app.command()
def evaluate(
    path: Annotated[
        Path | None,
        typer.Argument(help="MovieLens-format folder; default: fetch ml-latest-small."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures here.")
    ] = None,
) -> None:
    """Measure warm and cold Recall/NDCG@10,20 through SQL (docs/evaluation.md).

    Example: reco-db evaluate ~/data/ml-latest-small --json results.json
    """
    from reco import evaluation, fetch

    folder = fetch.movielens_folder(path)
    with progress_bar() as bar:
        report = evaluation.evaluate_folder(
            folder, seed=seed, progress=StepProgress(bar)
        )
    console.print(evaluation.report_table(report))
    if json_path:
        json_path.write_text(report.to_json())
        console.print(f"figures written to {json_path}")


@app.command()
def demo(
    path: Annotated[
        Path | None,
        typer.Argument(help="MovieLens-format folder; default: fetch ml-latest-small."),
    ] = None,
) -> None:
    """Run the whole job on MovieLens: load, train, embed new items, recommend.

    Example: reco-db demo
    """
    from reco import demo as demo_job

    demo_job.run(path, console, StepProgress)


def _stop_on_sigterm(signum, frame) -> None:
    # docker stop and systemd send SIGTERM: unwind like Ctrl-C, so a training
    # run is marked failed and cleaned up instead of left "training".
    raise KeyboardInterrupt


def _message(error: BaseException) -> str:
    """One line: PostgreSQL's primary message and hint, without PL/pgSQL context."""
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.orig is not None:
        error = error.orig
    diag = getattr(error, "diag", None)
    if diag is not None and diag.message_primary:
        hint = f" ({diag.message_hint})" if diag.message_hint else ""
        return diag.message_primary + hint
    return str(error).strip() or repr(error)


def main() -> None:
    """Entry point: run the app, turning known errors into one clear line."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        app()
    except USER_ERRORS as error:
        message = _message(error)
        errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        if logger.isEnabledFor(logging.DEBUG):
            errors.print_exception()
        sys.exit(1)


if __name__ == "__main__":
    main()
