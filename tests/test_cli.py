"""The reco-db command line, run as users run it."""

import os
import subprocess
import sys

import pytest
import synthetic
from typer.testing import CliRunner

from reco.cli import app
from reco.loading import load_events, load_items
from reco.training_run import run_training

runner = CliRunner()


def _commands(group, prefix=()):
    import typer.main

    click_group = typer.main.get_command(group)
    for name, command in click_group.commands.items():
        if hasattr(command, "commands"):
            for sub in command.commands:
                yield (*prefix, name, sub)
        else:
            yield (*prefix, name)


def test_every_command_has_help_with_an_example():
    commands = list(_commands(app))
    assert ("train",) in commands and ("embed-new-items",) in commands
    assert ("db", "upgrade") in commands and ("load", "movielens") in commands
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "Example: reco-db " + " ".join(command) in result.output, command


def reco_db(db_url, *args):
    """Run the installed entry point in a subprocess, as a user would."""
    env = {**os.environ, "DATABASE_URL": db_url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "reco.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture
def trained_url(db_url, conn):
    items = synthetic.catalog(200)
    load_items(conn, items)
    load_events(conn, synthetic.events(items, n_users=40))
    conn.commit()
    run_training(conn, synthetic.small_config(epochs=6), exclude_items=["m0", "m5"])
    conn.commit()
    return db_url


def test_serving_commands_print_titles_and_scores(trained_url):
    result = reco_db(trained_url, "recommend", "u1", "-k", "3")
    assert result.returncode == 0, result.stderr
    assert "recommendations for user u1" in result.stdout
    assert result.stdout.count(" story ") == 3  # three titles

    result = reco_db(trained_url, "embed-new-items")
    assert result.returncode == 0, result.stderr
    assert "embedded 2 items" in result.stdout

    result = reco_db(trained_url, "similar", "m0", "-k", "4")
    assert result.returncode == 0, result.stderr
    assert "western story 0 (1960)" in result.stdout
    assert result.stdout.count(" story ") == 5  # the item and four neighbours

    result = reco_db(trained_url, "session", "m1", "m6", "-k", "2")
    assert result.returncode == 0, result.stderr

    result = reco_db(trained_url, "models")
    assert result.returncode == 0 and "yes" in result.stdout


def test_add_item_then_similar(trained_url):
    result = reco_db(
        trained_url,
        "add-item",
        "brand-new",
        "--title",
        "horror story 2 (1980)",
        "--category",
        "Horror",
    )
    assert result.returncode == 0, result.stderr
    result = reco_db(trained_url, "similar", "brand-new", "-k", "3")
    assert result.returncode == 0, result.stderr


def test_errors_are_one_clear_line(db_url, tmp_path):
    result = reco_db(db_url, "recommend", "u1")
    assert result.returncode == 1
    assert "no active model" in result.stderr and "reco-db train" in result.stderr
    assert "Traceback" not in result.stderr

    bad = tmp_path / "events.csv"
    bad.write_text("user_id,item_id,kind,occurred_at\nu1,i1,view,yesterday\n")
    result = reco_db(db_url, "load", "events", str(bad))
    assert result.returncode == 1
    assert "line 2" in result.stderr and "yesterday" in result.stderr

    result = reco_db(db_url, "train")
    assert result.returncode == 1 and "load data first" in result.stderr

    result = reco_db(db_url, "embed-new-items", "--batch-size", "0")
    assert result.returncode == 2 and "--batch-size" in result.stderr

    result = reco_db(db_url, "recommend", "u1", "-k", "0")
    assert result.returncode == 2 and "-k" in result.stderr

    result = reco_db(db_url, "activate", "99")
    assert result.returncode == 1 and "model 99" in result.stderr


def test_train_from_the_command_line(db_url, tmp_path):
    items = tmp_path / "items.csv"
    items.write_text(
        "item_id,title,category\n"
        + "".join(
            f"i{n},{synthetic.GENRES[n % 5]} story {n % 7} (1990),{n % 5}\n"
            for n in range(60)
        )
    )
    events = tmp_path / "events.csv"
    events.write_text(
        "user_id,item_id,kind,occurred_at\n"
        + "".join(
            f"u{u},i{(u % 5) + 5 * ((u * 7 + e) % 12)},view,"
            f"{1_600_000_000 + u * 9000 + e * 60}\n"
            for u in range(30)
            for e in range(8)
        )
    )
    assert reco_db(db_url, "load", "items", str(items)).returncode == 0
    assert reco_db(db_url, "load", "events", str(events)).returncode == 0
    result = reco_db(
        db_url, "train", "--epochs", "1", "--encoder-epochs", "1", "--dimensions", "8"
    )
    assert result.returncode == 0, result.stderr
    assert "model 1 active" in result.stdout
    result = reco_db(db_url, "recommend", "u3", "-k", "2")
    assert result.returncode == 0 and "story" in result.stdout


def test_serving_and_cold_start_never_import_torch(trained_url):
    """Inference needs onnxruntime only: embed-new-items runs without torch."""
    code = (
        "import sys\n"
        "sys.argv = ['reco-db', 'embed-new-items']\n"
        "import reco, reco.new_items, reco.embedder\n"
        "from reco.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    env = {**os.environ, "DATABASE_URL": trained_url}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "embedded 2 items" in result.stdout
    assert "torch imported: False" in result.stdout
