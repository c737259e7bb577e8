"""`reco-db evaluate` end to end on a small MovieLens sample, through SQL."""

import csv
import json

import psycopg
import pytest
import synthetic
from conftest import movielens_dir

from reco import database
from reco.evaluation import evaluate_folder
from reco.movielens import read_movies, read_ratings
from reco.split import split

SAMPLE_USERS = 40


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The first 40 users of ml-latest-small and every movie."""
    source = movielens_dir()
    folder = tmp_path_factory.mktemp("movielens-sample")
    (folder / "movies.csv").write_bytes((source / "movies.csv").read_bytes())
    with (
        (source / "ratings.csv").open(newline="") as reader_file,
        (folder / "ratings.csv").open("w", newline="") as writer_file,
    ):
        reader = csv.reader(reader_file)
        writer = csv.writer(writer_file)
        writer.writerow(next(reader))
        writer.writerows(row for row in reader if int(row[0]) <= SAMPLE_USERS)
    return folder


def test_evaluate_runs_the_protocol_through_the_product(sample, server_url):
    name = "reco_test_evaluation"
    try:
        report = evaluate_folder(
            sample, seed=3, config=synthetic.small_config(), database_name=name
        )
        expected = split(read_ratings(sample), read_movies(sample))
        assert report.warm_users == len(expected.warm_test)
        assert report.cold_users == len(expected.cold_test)
        for figures in (report.warm, report.cold, report.baseline_warm):
            assert set(figures) == {"recall@10", "ndcg@10", "recall@20", "ndcg@20"}
            assert all(0.0 <= v <= 1.0 for v in figures.values())
        # Popularity on the sample is a real, non-zero baseline.
        assert report.baseline_warm["recall@20"] > 0

        url = database.with_database(server_url, name)
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT warm_recall_20, cold_recall_20 FROM reco.model_runs"
                " WHERE is_active"
            ).fetchone()
            held_out = conn.execute(
                "SELECT count(*) FROM reco.item_embeddings AS e"
                " JOIN reco.items AS i USING (item_id)"
                " WHERE i.item_id::int % 5 = 0 AND e.source = 'content'"
            ).fetchone()[0]
        assert row == pytest.approx(
            (report.warm["recall@20"], report.cold["recall@20"])
        )
        # Every cold movie with usable text was embedded by the ONNX encoder.
        assert held_out >= 0.95 * len(expected.cold_items)
        assert json.loads(report.to_json())["seed"] == 3
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
