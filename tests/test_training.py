"""Pair generation, category negatives and the train() contract on tiny data."""

import json
from dataclasses import asdict

import numpy as np
import pytest
import synthetic
import torch

from reco.dataset import Catalog, Interactions
from reco.item2vec import CategorySampler, global_context_pairs, window_pairs
from reco.training import TrainConfig, train
from reco.user_vectors import history_weights, user_vectors

GENRES = ["Comedy", "Drama", "Horror", "Western"]


def _pairs(pairs):
    return sorted(zip(pairs.centres.tolist(), pairs.contexts.tolist(), strict=True))


def test_window_pairs_stay_inside_groups():
    items = np.array([10, 11, 12, 20, 21])
    groups = np.array([0, 0, 0, 1, 1])
    pairs = window_pairs(items, groups, np.ones(5, np.float32), 1)
    expected = [(10, 11), (11, 10), (11, 12), (12, 11), (20, 21), (21, 20)]
    assert _pairs(pairs) == expected
    forward = window_pairs(items, groups, np.ones(5, np.float32), 2, True, True)
    assert _pairs(forward) == [(10, 11), (10, 12), (11, 12), (20, 21)]
    keys = zip(forward.centres, forward.contexts, strict=True)
    decay = dict(zip(keys, forward.weights, strict=True))
    assert decay[(10, 12)] == pytest.approx(0.5)


def test_global_context_pairs_every_item_with_the_last_conversion():
    # session 0: 1 2 3* 4 5*  -> the last conversion 5 is context for 1 2 3 4
    # session 1: 6 7          -> no conversion, no pairs
    # session 2: 8* 9         -> 8 is context for 9
    items = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9])
    groups = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2])
    converted = np.array([0, 0, 1, 0, 1, 0, 0, 1, 0], dtype=bool)
    pairs = global_context_pairs(items, groups, converted, 2.0, per_session=1)
    assert _pairs(pairs) == [(1, 5), (2, 5), (3, 5), (4, 5), (9, 8)]
    assert (pairs.weights == 2.0).all()
    two = global_context_pairs(items, groups, converted, 1.0, per_session=2)
    assert (1, 3) in _pairs(two) and (5, 3) in _pairs(two)
    assert len(two) == 5 + 4


def test_category_negatives_come_from_the_centre_category():
    # items 0-2 are genre 0, items 3-5 genre 1, item 6 both, item 7 none
    sampler = CategorySampler([[0], [0], [0], [1], [1], [1], [0, 1], []])
    rng = np.random.default_rng(0)
    drawn = sampler.sample(np.array([0, 4, 6, 7]), 200, rng)
    assert set(drawn[0]) == {0, 1, 2, 6}
    assert set(drawn[1]) == {3, 4, 5, 6}
    assert set(drawn[2]) == set(range(7))
    assert set(drawn[3]) <= set(range(8)) and len(set(drawn[3])) > 4


def _synthetic(seed=0):
    """40 items in 4 genres; each user mostly watches one genre, in sessions."""
    rng = np.random.default_rng(seed)
    n_items = 40
    genre_of = np.arange(n_items) % 4
    catalog = Catalog(
        item_ids=np.array([str(i) for i in range(n_items)], dtype=object),
        titles=np.array(
            [
                f"{GENRES[g]} film {i % 3} ({1980 + g * 10})"
                for i, g in enumerate(genre_of)
            ],
            dtype=object,
        ),
        bodies=np.array([""] * n_items, dtype=object),
        categories=np.array([GENRES[g] for g in genre_of], dtype=object),
    )
    users, items, kinds, stamps, values = [], [], [], [], []
    for user in range(30):
        favourite = user % 4
        clock = 0.0
        for event in range(24):
            if event % 6 == 0:
                clock += 7200  # a new session
            pool = np.flatnonzero(genre_of == favourite)[:8]  # items 32+ stay cold
            if rng.random() < 0.2:
                pool = np.arange(32)
            rating = float(rng.integers(1, 6))
            users.append(str(user))
            items.append(str(rng.choice(pool)))
            kinds.append("conversion" if rating >= 4 else "interaction")
            stamps.append(clock)
            values.append(rating)
            clock += 60
    events = Interactions(
        np.array(users, dtype=object),
        np.array(items, dtype=object),
        np.array(kinds, dtype=object),
        np.array(stamps),
        np.array(values, dtype=np.float32),
    )
    return events, catalog


def _small_config(**changes):
    settings = dict(
        dimensions=8,
        window=4,
        batch_size=256,
        encoder_pairs_per_epoch=512,
        encoder_batch_size=128,
        history_epochs=1,
        history_cuts_per_user=2,
        user_negatives=16,
    )
    settings.update(changes)
    return synthetic.small_config(**settings)


@pytest.fixture(scope="module")
def trained():
    events, catalog = _synthetic()
    return events, catalog, train(events, catalog, _small_config())


def test_train_returns_the_contract(trained):
    events, catalog, model = trained
    n = len(model.item_ids)
    assert n == len(catalog)  # every item has text, so every item has a vector
    assert model.item_vectors.shape == (n, 8)
    assert model.query_vectors.shape == (n, 8)
    assert model.item_vectors.dtype == np.float32
    assert np.isfinite(model.item_vectors).all()
    assert np.isfinite(model.query_vectors).all()
    assert set(model.item_sources) == {"behaviour", "content"}
    cold = {str(i) for i in range(32, 40)}
    sources = dict(zip(model.item_ids, model.item_sources, strict=True))
    assert {i for i, s in sources.items() if s == "content"} == cold
    assert model.user_vectors.shape == (30, 8)
    assert np.isfinite(model.user_vectors).all()
    json.dumps(model.parameters)
    assert model.parameters["dimensions"] == 8
    steps = [entry["step"] for entry in model.losses]
    config = _small_config()
    assert steps.count("behaviour") == config.epochs
    assert steps.count("content") == config.encoder_epochs * config.encoder_ensemble
    # the cosine transform gives every stored item vector the same norm
    norms = np.linalg.norm(model.item_vectors, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)


def test_config_is_json_serialisable():
    json.dumps(asdict(TrainConfig()))


def test_encoder_reproduces_content_vectors(trained):
    _, catalog, model = trained
    content = np.flatnonzero(model.item_sources == "content")
    rows = {str(i): r for r, i in enumerate(catalog.item_ids)}
    picked = catalog.subset(np.array([rows[model.item_ids[r]] for r in content]))
    tokens = model.vocabulary.encode_catalog(picked)
    with torch.no_grad():
        item, query = model.encoder(torch.as_tensor(tokens))
    assert np.allclose(item.numpy(), model.item_vectors[content], atol=1e-5)
    assert np.allclose(query.numpy(), model.query_vectors[content], atol=1e-5)
    # a longer padding changes nothing
    wider = np.pad(tokens, ((0, 0), (0, 7)))
    with torch.no_grad():
        again, _ = model.encoder(torch.as_tensor(wider))
    assert np.allclose(again.numpy(), item.numpy(), atol=1e-5)


def test_encoder_handles_one_token_and_all_padding(trained):
    model = trained[2]
    with torch.no_grad():
        for tokens in ([[5]], [[0]], [[0, 0, 0], [3, 0, 0]]):
            item, query = model.encoder(torch.tensor(tokens))
            assert item.shape == (len(tokens), 8)
            assert torch.isfinite(item).all() and torch.isfinite(query).all()


def test_user_vectors_are_weighted_means_of_query_vectors(trained):
    events, _, model = trained
    config = _small_config()
    user = "3"
    mine = np.flatnonzero(events.user_ids == user)
    mine = mine[np.argsort(events.timestamps[mine], kind="stable")]
    steps_back = np.arange(len(mine))[::-1]
    weights = history_weights(
        events.kinds[mine],
        events.values[mine],
        steps_back,
        config.event_weights,
        config.user_half_life,
    )
    row = {i: r for r, i in enumerate(model.item_ids)}
    rows = [row[i] for i in events.item_ids[mine]]
    expected = (model.query_vectors[rows] * weights[:, None]).sum(0) / weights.sum()
    position = list(model.user_ids).index(user)
    assert np.allclose(model.user_vectors[position], expected, atol=1e-5)


def test_kind_weights_and_recency_shape_the_user_vector():
    query = np.eye(2, dtype=np.float32)
    events = Interactions(
        np.array(["u", "u"], dtype=object),
        np.array(["a", "b"], dtype=object),
        np.array(["interaction", "conversion"], dtype=object),
        np.array([0.0, 1.0]),
        np.array([np.nan, np.nan], dtype=np.float32),
    )
    weights = {"interaction": 1.0, "conversion": 3.0}
    _, vectors = user_vectors(events, np.array(["a", "b"]), query, weights)
    assert np.allclose(vectors[0], [0.25, 0.75])
    _, decayed = user_vectors(events, np.array(["a", "b"]), query, {}, half_life=1)
    assert np.allclose(decayed[0], [1 / 3, 2 / 3])


def test_training_is_reproducible_with_a_seed():
    events, catalog = _synthetic()
    # One thread: parallel float reductions may differ in the last bits.
    first = train(events, catalog, _small_config(seed=3, threads=1))
    second = train(events, catalog, _small_config(seed=3, threads=1))
    other = train(events, catalog, _small_config(seed=4, threads=1))
    assert np.array_equal(first.item_vectors, second.item_vectors)
    assert np.array_equal(first.user_vectors, second.user_vectors)
    assert not np.allclose(first.item_vectors, other.item_vectors)


def test_behaviour_groups_genres_together(trained):
    _, _, model = trained
    behaviour = model.item_sources == "behaviour"
    ids = model.item_ids[behaviour].astype(int)
    vectors = model.query_vectors[behaviour]
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = vectors @ vectors.T
    same = (ids[:, None] % 4) == (ids[None, :] % 4)
    off_diagonal = ~np.eye(len(ids), dtype=bool)
    assert similarity[same & off_diagonal].mean() > similarity[~same].mean()


def test_history_finetuning_keeps_the_contract():
    events, catalog = _synthetic()
    config = _small_config(history_epochs=2, user_weight=0.0, siamese_weight=1.0)
    model = train(events, catalog, config)
    assert np.isfinite(model.item_vectors).all()
    assert np.isfinite(model.user_vectors).all()
    assert [entry["step"] for entry in model.losses].count("history") == 2
    # the query vectors end in the constant 1 (meeting the item bias) and the 0
    # that pairs them with the cosine transform of the item vectors
    assert np.allclose(model.query_vectors[:, -2:], [1.0, 0.0])
