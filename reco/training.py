"""Train the behaviour and content models and assemble the vectors to store."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from reco.dataset import Catalog, Interactions
from reco.encoder import (
    EncoderEnsemble,
    EncoderSettings,
    ItemEncoder,
    UserHistories,
    append_zero,
    mips_to_cosine,
    train_encoder,
)
from reco.item2vec import (
    CategorySampler,
    HistorySettings,
    SkipGramPairs,
    SkipGramSettings,
    finetune_on_histories,
    global_context_pairs,
    train_skipgram,
    window_pairs,
)
from reco.sessions import Sessions, build_sessions, time_order
from reco.text import Vocabulary, tokenize
from reco.user_vectors import history_weights, steps_back_in_groups, user_vectors

logger = logging.getLogger("reco")

Progress = Callable[[str, int, int], None]

BEHAVIOUR = "behaviour"
CONTENT = "content"


def _default_event_weights() -> dict[str, float]:
    return {
        "view": 0.5,
        "interaction": 1.0,
        "click": 1.0,
        "conversion": 2.0,
        "purchase": 2.0,
        "booking": 2.0,
        "apply": 2.0,
    }


@dataclass
class TrainConfig:
    """Everything ``train`` needs to know; JSON-serialisable via ``asdict``.

    Behaviour: sessions cut on ``session_gap_minutes`` of inactivity carry the
    Airbnb changes: the last converted item of a session is global context for
    all of it, negatives also come from the centre's own category, sessions with
    a conversion can be repeated (``oversample_converted``). Window pairs come
    from each session (``context`` "session") or from the user's whole history
    ("user"). ``event_weights`` weight a pair by its context event's kind and a
    history event in a user vector by its kind (unknown kinds weigh 1).
    ``history_epochs`` then refine the vectors so that the recency-weighted mean
    of a history predicts the next ``history_targets`` items, with an item bias.

    Content: a small text CNN learns, from a behaviour user vector built on part
    of a history, to pick the hidden rest by text alone (``user_weight``), plus
    distillation onto the behaviour vectors and the Siamese pair loss. It gives
    the vectors of every item without behaviour, in the same space.

    Stored vectors have ``dimensions`` coordinates: the model's, the item bias
    (a constant 1 on the query side) and, with ``mips_transform``, the slack that
    lets a cosine index rank by inner product.
    """

    dimensions: int = 64
    session_gap_minutes: float = 30.0
    min_dwell: float | None = None
    dwell_kinds: tuple[str, ...] | None = None
    event_weights: dict[str, float] = field(default_factory=_default_event_weights)
    conversion_kinds: tuple[str, ...] = ("conversion", "purchase", "booking", "apply")
    context: str = "user"
    window: int = 20
    forward_only: bool = False
    global_context: bool = True
    global_context_weight: float = 1.0
    global_context_per_session: int = 1
    category_negatives: bool = True
    category_negative_count: int = 2
    oversample_converted: int = 1
    epochs: int = 5
    batch_size: int = 4096
    learning_rate: float = 0.01
    negatives: int = 5
    shared_negatives: int = 256
    loss: str = "softmax"
    l2: float = 0.0
    min_item_pairs: int = 1
    mips_transform: bool = True
    user_half_life: float | None = 10.0
    user_value_power: float = 0.0
    user_max_history: int | None = 200
    max_tokens: int = 48
    min_token_items: int = 2
    token_dimensions: int = 32
    channels: int = 64
    kernel_size: int = 3
    encoder_dropout: float = 0.1
    encoder_ensemble: int = 3
    encoder_epochs: int = 3
    encoder_pairs_per_epoch: int = 16384
    encoder_batch_size: int = 512
    encoder_learning_rate: float = 0.003
    distill_weight: float = 0.1
    pair_weight: float = 0.0
    siamese_weight: float = 0.1
    temperature: float = 1.0
    user_weight: float = 1.0
    user_holdout: float = 0.2
    user_negatives: int = 512
    history_epochs: int = 3
    history_cuts_per_user: int = 8
    history_targets: int = 10
    history_batch_size: int = 128
    history_learning_rate: float = 0.003
    seed: int = 0
    threads: int | None = None


@dataclass
class TrainedModel:
    """Vectors for the pgvector tables, the encoder for new items, and the record.

    Ranking is cosine(user vector, item vector); a user or session vector is the
    weighted mean of ``query_vectors`` of its history (reco.user_vectors).
    """

    item_ids: np.ndarray
    item_vectors: np.ndarray
    item_sources: np.ndarray
    query_vectors: np.ndarray
    user_ids: np.ndarray
    user_vectors: np.ndarray
    encoder: nn.Module
    vocabulary: Vocabulary
    max_tokens: int
    parameters: dict
    losses: list[dict]


class TrainingError(ValueError):
    """The events or catalogue cannot train a model as configured."""


def _validate(config: TrainConfig) -> None:
    if config.context not in ("session", "user"):
        raise TrainingError(f"context {config.context!r}: use 'session' or 'user'")
    if config.loss not in ("sgns", "softmax"):
        raise TrainingError(f"loss {config.loss!r}: use 'sgns' or 'softmax'")
    if config.dimensions < 4:
        raise TrainingError(f"dimensions {config.dimensions}: use at least 4")


def _slices(sessions: Sessions, repeat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Event rows and group numbers with session k repeated ``repeat[k]`` times."""
    lengths = sessions.lengths()
    chosen = np.repeat(np.arange(len(sessions)), repeat)
    sizes = lengths[chosen]
    starts = np.repeat(sessions.starts[chosen] - np.r_[0, np.cumsum(sizes)[:-1]], sizes)
    rows = sessions.events[starts + np.arange(sizes.sum())]
    groups = np.repeat(np.arange(len(chosen)), sizes)
    return rows, groups


def _behaviour_pairs(
    events: Interactions,
    config: TrainConfig,
    item_number: dict[str, int],
) -> tuple[SkipGramPairs, dict]:
    sessions = build_sessions(
        events, config.session_gap_minutes, config.min_dwell, config.dwell_kinds
    )
    kinds = events.kinds.astype(str)
    converted_event = np.isin(kinds, config.conversion_kinds)
    weight_of_event = np.array(
        [config.event_weights.get(k, 1.0) for k in kinds], dtype=np.float32
    )
    items = np.array([item_number.get(str(i), -1) for i in events.item_ids])

    converted_session = (
        np.add.reduceat(converted_event[sessions.events], sessions.starts[:-1])
        if len(sessions)
        else np.zeros(0, dtype=bool)
    )
    repeat = np.where(converted_session > 0, config.oversample_converted, 1)
    rows, groups = _slices(sessions, repeat)
    known = items[rows] >= 0
    rows, groups = rows[known], groups[known]

    if config.context == "user":
        whole = build_sessions(events, None, config.min_dwell, config.dwell_kinds)
        window_rows, window_groups = _slices(whole, np.ones(len(whole), np.int64))
    else:
        window_rows, window_groups = rows, groups
    parts = [
        window_pairs(
            items[window_rows],
            window_groups,
            weight_of_event[window_rows],
            config.window,
            config.forward_only,
        )
    ]
    if config.global_context:
        parts.append(
            global_context_pairs(
                items[rows],
                groups,
                converted_event[rows],
                config.global_context_weight,
                config.global_context_per_session,
            )
        )
    pairs = SkipGramPairs.concat(parts)
    facts = {
        "sessions": len(sessions),
        "converted_sessions": int((converted_session > 0).sum()),
        "window_pairs": len(parts[0]),
        "global_context_pairs": len(parts[1]) if config.global_context else 0,
    }
    return pairs, facts


def _category_lists(catalog: Catalog, behaviour_items: np.ndarray) -> list[list[int]]:
    row_of = {str(i): r for r, i in enumerate(catalog.item_ids)}
    names: dict[str, int] = {}
    lists = []
    for item in behaviour_items:
        row = row_of.get(str(item))
        category = "" if row is None else str(catalog.categories[row])
        tokens = [t for t in tokenize("", "", category) if t.startswith("genre:")]
        lists.append([names.setdefault(t, len(names)) for t in tokens])
    return lists


def _histories(
    events: Interactions,
    config: TrainConfig,
    item_number: dict[str, int],
    renumber: np.ndarray,
    has_text: np.ndarray | None,
) -> UserHistories:
    """Events (of items with text, if given), weighted as in the user vectors."""
    order = time_order(events)
    items = np.array([item_number[str(i)] for i in events.item_ids[order]])
    if has_text is not None:
        order, items = order[has_text[items]], items[has_text[items]]
    users = events.user_ids[order].astype(str)
    weights = history_weights(
        events.kinds[order],
        events.values[order],
        steps_back_in_groups(users),
        config.event_weights,
        # Fine-tuning applies recency from each cut point itself.
        config.user_half_life if has_text is not None else None,
        config.user_value_power,
    )
    _, user_numbers = np.unique(users, return_inverse=True)
    return UserHistories(user_numbers, renumber[items], weights)


def train(
    events: Interactions,
    catalog: Catalog,
    config: TrainConfig,
    progress: Progress | None = None,
) -> TrainedModel:
    """Train item2vec on ``events`` and the text encoder on ``catalog``.

    Items of the catalogue absent from the events (or without enough behaviour)
    get their vectors from the encoder, in the same space as the others.
    """
    _validate(config)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(config.threads or min(2, os.cpu_count() or 1))
    try:
        return _train(events, catalog, config, progress)
    finally:
        torch.set_num_threads(threads_before)


def _train(
    events: Interactions,
    catalog: Catalog,
    config: TrainConfig,
    progress: Progress | None,
) -> TrainedModel:
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if not len(events):
        raise TrainingError("no events to train on: load interactions first")

    # text: drop the catalogue items the vocabulary cannot describe
    vocabulary = Vocabulary.build(catalog, config.min_token_items, config.max_tokens)
    empty = vocabulary.empty_rows(catalog.titles, catalog.bodies, catalog.categories)
    if len(empty):
        logger.warning(
            "skipping %s items without known words, e.g. item %s",
            len(empty),
            catalog.item_ids[empty[0]],
        )
    text_catalog = catalog.subset(np.setdiff1d(np.arange(len(catalog)), empty))
    tokens = vocabulary.encode_catalog(text_catalog)
    logger.debug("vocabulary of %s tokens", len(vocabulary))

    # behaviour: sessions -> pairs -> skip-gram
    behaviour_items = np.unique(events.item_ids.astype(str))
    item_number = {item: n for n, item in enumerate(behaviour_items)}
    pairs, facts = _behaviour_pairs(events, config, item_number)
    if not len(pairs):
        raise TrainingError(
            "no item pairs: every session has fewer than 2 events; "
            "raise session_gap_minutes or use context='user'"
        )
    logger.debug("%s skip-gram pairs (%s)", len(pairs), facts)
    item_counts = np.bincount(pairs.contexts, minlength=len(behaviour_items))
    sampler = None
    if config.category_negatives:
        sampler = CategorySampler(_category_lists(catalog, behaviour_items))
    centre_vectors, context_vectors, losses = train_skipgram(
        pairs,
        item_counts,
        SkipGramSettings(
            config.dimensions - 1 - int(config.mips_transform),
            config.epochs,
            config.batch_size,
            config.learning_rate,
            config.negatives,
            config.shared_negatives,
            config.category_negative_count,
            config.loss,
            config.l2,
        ),
        sampler,
        rng,
        progress,
    )
    biases = np.zeros(len(behaviour_items), dtype=np.float32)
    if config.history_epochs:
        histories = _histories(
            events, config, item_number, np.arange(len(behaviour_items)), None
        )
        centre_vectors, context_vectors, biases, history_losses = finetune_on_histories(
            centre_vectors,
            context_vectors,
            histories.users,
            histories.items,
            histories.weights,
            HistorySettings(
                config.history_epochs,
                config.history_cuts_per_user,
                config.history_targets,
                config.user_max_history or 200,
                config.user_half_life,
                config.history_batch_size,
                config.history_learning_rate,
            ),
            rng,
            progress,
        )
        losses += history_losses
    # The constant 1 of every query vector meets the item bias in the dot product.
    centre_vectors = np.c_[centre_vectors, np.ones(len(centre_vectors), np.float32)]
    context_vectors = np.c_[context_vectors, biases]
    pair_counts = item_counts + np.bincount(
        pairs.centres, minlength=len(behaviour_items)
    )
    trusted = pair_counts >= config.min_item_pairs

    # content: the encoder learns from the behaviour items that have text
    text_row = {str(i): r for r, i in enumerate(text_catalog.item_ids)}
    behaviour_text_row = np.array([text_row.get(i, -1) for i in behaviour_items])
    has_text = behaviour_text_row >= 0
    renumber = np.cumsum(has_text) - 1
    usable = has_text[pairs.centres] & has_text[pairs.contexts]
    text_pairs = SkipGramPairs(
        renumber[pairs.centres[usable]],
        renumber[pairs.contexts[usable]],
        pairs.weights[usable],
    )
    members, content_losses = [], []
    for _ in range(config.encoder_ensemble):
        member, losses_of_member = train_encoder(
            tokens,
            behaviour_text_row[has_text],
            context_vectors[has_text],
            centre_vectors[has_text],
            text_pairs,
            len(vocabulary),
            EncoderSettings(
                config.token_dimensions,
                config.channels,
                config.kernel_size,
                config.encoder_dropout,
                config.encoder_epochs,
                config.encoder_pairs_per_epoch,
                config.encoder_batch_size,
                config.encoder_learning_rate,
                config.distill_weight,
                config.pair_weight,
                config.siamese_weight,
                config.temperature,
                config.user_weight,
                user_holdout=config.user_holdout,
                user_negatives=config.user_negatives,
            ),
            rng,
            progress,
            _histories(events, config, item_number, renumber, has_text),
        )
        members.append(member)
        content_losses += losses_of_member
    # Averaging encoders trained on different draws steadies the cold-start
    # vectors, which vary more between seeds than between settings.
    cnn = members[0] if len(members) == 1 else EncoderEnsemble(members)
    max_norm = None
    if config.mips_transform:
        max_norm = float(np.linalg.norm(context_vectors[trusted], axis=1).max())
    encoder = ItemEncoder(cnn, max_norm).eval()

    # assemble: behaviour vectors where trusted, encoder vectors elsewhere
    with torch.no_grad():
        content_items, content_queries = _encode(encoder, tokens)
        behaviour_out = torch.as_tensor(context_vectors)
        behaviour_in = torch.as_tensor(centre_vectors)
        if max_norm is not None:
            behaviour_out = mips_to_cosine(behaviour_out, torch.tensor(max_norm))
            behaviour_in = append_zero(behaviour_in)
    ids = [str(i) for i in behaviour_items[trusted]]
    vectors = [behaviour_out.numpy()[trusted]]
    queries = [behaviour_in.numpy()[trusted]]
    behaviour_ids = set(ids)
    content = np.array(
        [i not in behaviour_ids for i in text_catalog.item_ids.astype(str)]
    )
    ids += [str(i) for i in text_catalog.item_ids[content]]
    vectors.append(content_items[content])
    queries.append(content_queries[content])
    sources = np.array(
        [BEHAVIOUR] * int(trusted.sum()) + [CONTENT] * int(content.sum())
    )
    item_vectors = np.concatenate(vectors).astype(np.float32)
    query_vectors = np.concatenate(queries).astype(np.float32)
    item_ids = np.array(ids)

    users, user_matrix = user_vectors(
        events,
        item_ids,
        query_vectors,
        config.event_weights,
        config.user_half_life,
        config.user_value_power,
        config.user_max_history,
    )
    seconds = time.perf_counter() - started
    logger.info(
        "trained %s behaviour and %s content items in %.1fs",
        int(trusted.sum()),
        int(content.sum()),
        seconds,
    )
    parameters = {
        **asdict(config),
        **facts,
        "pairs": len(pairs),
        "behaviour_items": int(trusted.sum()),
        "content_items": int(content.sum()),
        "skipped_items": [str(i) for i in catalog.item_ids[empty]][:100],
        "vocabulary_size": len(vocabulary),
        "max_norm": max_norm,
        "stored_dimensions": int(item_vectors.shape[1]),
        "training_seconds": round(seconds, 2),
    }
    return TrainedModel(
        item_ids=item_ids,
        item_vectors=item_vectors,
        item_sources=sources,
        query_vectors=query_vectors,
        user_ids=users,
        user_vectors=user_matrix,
        encoder=encoder,
        vocabulary=vocabulary,
        max_tokens=config.max_tokens,
        parameters=parameters,
        losses=losses + content_losses,
    )


def _encode(
    encoder: nn.Module, tokens: np.ndarray, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    items, queries = [], []
    for start in range(0, len(tokens), batch_size):
        item, query = encoder(torch.as_tensor(tokens[start : start + batch_size]))
        items.append(item.numpy())
        queries.append(query.numpy())
    if not items:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(items), np.concatenate(queries)
