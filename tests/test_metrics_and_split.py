"""Metrics against hand-computed cases; the split against a hand-made file."""

import math

import pytest

from reco.metrics import mean_metrics, ndcg_at_k, recall_at_k
from reco.movielens import read_movies, read_ratings
from reco.split import split


def test_recall_divides_by_min_of_k_and_relevant():
    ranked = ["a", "b", "c", "d"]
    assert recall_at_k(ranked, {"a", "c", "x"}, 2) == 0.5  # 1 hit / min(2, 3)
    assert recall_at_k(ranked, {"a", "c", "x"}, 4) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, {"z"}, 4) == 0.0


def test_ndcg_binary_gains():
    # Hits at ranks 2 and 3 of 3 relevant, K = 3.
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(["x", "a", "b"], {"a", "b", "c"}, 3) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(["a", "b"], {"a", "b"}, 10) == pytest.approx(1.0)


def test_mean_metrics_counts_missing_users_as_zero():
    figures = mean_metrics({"u1": ["a"]}, {"u1": {"a"}, "u2": {"b"}}, ks=(1,))
    assert figures == {"recall@1": 0.5, "ndcg@1": 0.5}


def _write(folder, ratings):
    (folder / "movies.csv").write_text(
        "movieId,title,genres\r\n"
        + "".join(f"{m},Movie {m} (2000),Drama\r\n" for m in range(1, 31))
    )
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\r\n"
        + "".join(f"{u},{m},{r},{t}\r\n" for u, m, r, t in ratings)
    )


def test_split_holds_out_last_ten_warm_and_all_cold(tmp_path):
    ratings = []
    # User 1: 22 warm ratings (movies not divisible by 5) + 2 cold ones.
    warm_movies = [m for m in range(1, 30) if m % 5][:22]
    for t, movie in enumerate(warm_movies):
        ratings.append((1, movie, 4.0, 1000 + t))
    ratings += [(1, 5, 3.0, 50), (1, 10, 5.0, 60)]
    # User 2: 19 warm ratings (too few to test warm) + 1 cold one.
    for t, movie in enumerate(warm_movies[:19]):
        ratings.append((2, movie, 2.0, 500 + t))
    ratings.append((2, 15, 4.0, 70))
    # User 3: only cold ratings: no training data, so not cold-tested either.
    ratings.append((3, 20, 4.0, 80))
    # Same timestamp for two of user 1's last items: movieId breaks the tie.
    _write(tmp_path, ratings)

    data = split(read_ratings(tmp_path), read_movies(tmp_path))

    assert sorted(data.cold_items) == ["10", "15", "20", "25", "30", "5"]
    assert set(data.warm_test) == {"1"}
    assert data.warm_test["1"] == {str(m) for m in warm_movies[-10:]}
    assert data.cold_test == {"1": {"5", "10"}, "2": {"15"}}
    train_pairs = set(zip(data.train.user_ids, data.train.item_ids, strict=True))
    assert ("1", str(warm_movies[0])) in train_pairs
    assert ("1", str(warm_movies[-1])) not in train_pairs
    assert len([p for p in train_pairs if p[0] == "2"]) == 19
    assert not any(int(item) % 5 == 0 for item in data.train.item_ids)


def test_ties_in_time_are_broken_by_movie_id(tmp_path):
    warm_movies = [m for m in range(1, 30) if m % 5][:21]
    ratings = [(1, m, 4.0, 100) for m in warm_movies]  # all at the same second
    _write(tmp_path, ratings)
    data = split(read_ratings(tmp_path), read_movies(tmp_path))
    assert data.warm_test["1"] == {str(m) for m in sorted(warm_movies)[-10:]}
