"""Skip-gram pairs from sessions and the item2vec model with the Airbnb changes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

logger = logging.getLogger("reco")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SkipGramPairs:
    """Positive (centre, context) item pairs with a weight each."""

    centres: np.ndarray
    contexts: np.ndarray
    weights: np.ndarray

    def __len__(self) -> int:
        return len(self.centres)

    @staticmethod
    def concat(parts: list[SkipGramPairs]) -> SkipGramPairs:
        """Join pair sets into one."""
        return SkipGramPairs(
            np.concatenate([p.centres for p in parts]).astype(np.int64),
            np.concatenate([p.contexts for p in parts]).astype(np.int64),
            np.concatenate([p.weights for p in parts]).astype(np.float32),
        )


def window_pairs(
    items: np.ndarray,
    groups: np.ndarray,
    event_weights: np.ndarray,
    window: int,
    forward_only: bool = False,
    distance_decay: bool = True,
) -> SkipGramPairs:
    """Pairs of items at most ``window`` steps apart inside the same group.

    ``items``, ``groups`` (session or user number) and ``event_weights`` are
    aligned and ordered by group then time. A pair is weighted by the context
    event's weight and, with ``distance_decay``, by (window - distance + 1) /
    window, the expected weight of word2vec's shrinking window.
    """
    parts = []
    for distance in range(1, window + 1):
        same = groups[:-distance] == groups[distance:]
        left, right = items[:-distance][same], items[distance:][same]
        decay = (window - distance + 1) / window if distance_decay else 1.0
        weight_right = event_weights[distance:][same] * decay
        parts.append(SkipGramPairs(left, right, weight_right))
        if not forward_only:
            weight_left = event_weights[:-distance][same] * decay
            parts.append(SkipGramPairs(right, left, weight_left))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return SkipGramPairs(empty, empty, np.zeros(0, dtype=np.float32))
    return SkipGramPairs.concat(parts)


def global_context_pairs(
    items: np.ndarray,
    groups: np.ndarray,
    converted: np.ndarray,
    weight: float,
    per_session: int = 1,
) -> SkipGramPairs:
    """Pair every item of a session with the session's converted item(s).

    Airbnb's global context: the booked listing is a positive for every listing
    clicked in that session, however far apart they are. ``per_session`` keeps
    the last converted items of a session (1: the conversion that ended it).
    Arrays are aligned and ordered by group then time; no item is its own
    context.
    """
    positions = np.flatnonzero(converted)
    conv_groups = groups[positions]
    # Rank conversions from the end of their session, keep the last ones.
    from_end = np.zeros(len(positions), dtype=np.int64)
    if len(positions):
        last_of_group = np.r_[conv_groups[1:] != conv_groups[:-1], True]
        ends = np.flatnonzero(last_of_group)
        group_end = np.repeat(ends, np.diff(np.r_[-1, ends]))
        from_end = group_end - np.arange(len(positions))
    positions = positions[from_end < per_session]

    group_starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    group_bounds = np.r_[group_starts, len(groups)]
    group_number = np.searchsorted(group_starts, positions, side="right") - 1
    starts = group_bounds[group_number]
    lengths = group_bounds[group_number + 1] - starts
    members = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    members += np.arange(lengths.sum())
    targets = np.repeat(items[positions], lengths)
    centres = items[members]
    distinct = centres != targets
    weights = np.full(int(distinct.sum()), weight, dtype=np.float32)
    return SkipGramPairs(centres[distinct], targets[distinct], weights)


class CategorySampler:
    """Draw negatives from the centre item's own category (Airbnb's market)."""

    def __init__(self, item_categories: list[list[int]]):
        counts = np.array([len(c) for c in item_categories], dtype=np.int64)
        self.n_items = len(item_categories)
        self.item_offsets = np.r_[0, np.cumsum(counts)]
        self.item_categories = np.array(
            [c for cats in item_categories for c in cats], dtype=np.int64
        )
        members = np.repeat(np.arange(self.n_items), counts)
        order = np.argsort(self.item_categories, kind="stable")
        self.category_items = members[order]
        sizes = np.bincount(self.item_categories, minlength=1)
        self.category_offsets = np.r_[0, np.cumsum(sizes)]

    def sample(
        self, centres: np.ndarray, count: int, rng: np.random.Generator
    ) -> np.ndarray:
        """``count`` items per centre from one of its categories, [len, count].

        Each draw picks one of the centre's categories, then an item of it;
        centres without a category get uniform random items.
        """
        shape = (len(centres), count)
        uniform = rng.integers(0, max(self.n_items, 1), size=shape)
        if not len(self.item_categories):
            return uniform
        n_categories = np.diff(self.item_offsets)[centres][:, None]
        pick = (rng.random(shape) * n_categories).astype(np.int64)
        slot = np.minimum(
            self.item_offsets[centres][:, None] + pick, len(self.item_categories) - 1
        )
        category = self.item_categories[slot]
        start = self.category_offsets[category]
        size = self.category_offsets[category + 1] - start
        member = start + (rng.random(shape) * size).astype(np.int64)
        drawn = self.category_items[np.minimum(member, len(self.category_items) - 1)]
        return np.where(n_categories > 0, drawn, uniform)


class SkipGram(nn.Module):
    """Item2vec: an input (centre) and an output (context) vector per item."""

    def __init__(self, n_items: int, dimensions: int):
        super().__init__()
        self.centre = nn.Embedding(n_items, dimensions)
        self.context = nn.Embedding(n_items, dimensions)
        nn.init.normal_(self.centre.weight, std=0.1)
        nn.init.normal_(self.context.weight, std=0.1)


@dataclass(frozen=True)
class SkipGramSettings:
    """Optimisation settings of the skip-gram (a slice of TrainConfig)."""

    dimensions: int
    epochs: int
    batch_size: int
    learning_rate: float
    negatives: int
    shared_negatives: int
    category_negatives: int
    loss: str
    l2: float


def _unigram(counts: np.ndarray, power: float = 0.75) -> torch.Tensor:
    probabilities = np.power(counts.astype(np.float64) + 1e-3, power)
    return torch.as_tensor(probabilities / probabilities.sum(), dtype=torch.float32)


def _pair_loss(
    model: SkipGram,
    centres: torch.Tensor,
    contexts: torch.Tensor,
    weights: torch.Tensor,
    negatives: torch.Tensor,
    negative_log_q: torch.Tensor,
    category: torch.Tensor | None,
    settings: SkipGramSettings,
) -> torch.Tensor:
    query = model.centre(centres)
    positive = (query * model.context(contexts)).sum(-1)
    shared = query @ model.context(negatives).T
    extra = None
    if category is not None:
        extra = torch.einsum("bd,bkd->bk", query, model.context(category))
    if settings.loss == "softmax":
        # Sampled softmax over the positive and the drawn negatives, logQ corrected.
        logits = [positive[:, None], shared - negative_log_q[None, :]]
        if extra is not None:
            logits.append(extra)
        per_pair = -F.log_softmax(torch.cat(logits, dim=1), dim=1)[:, 0]
    else:
        per_pair = F.softplus(-positive)
        per_pair = per_pair + settings.negatives * F.softplus(shared).mean(1)
        if extra is not None:
            per_pair = per_pair + F.softplus(extra).sum(1)
    loss = (weights * per_pair).sum() / weights.sum()
    if settings.l2:
        loss = loss + settings.l2 * (query.pow(2).sum(-1).mean())
    return loss


def train_skipgram(
    pairs: SkipGramPairs,
    item_counts: np.ndarray,
    settings: SkipGramSettings,
    sampler: CategorySampler | None,
    rng: np.random.Generator,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Fit skip-gram with negative sampling; return centre, context vectors, losses.

    Every batch shares ``shared_negatives`` items drawn from the unigram^0.75
    distribution; with a sampler, each centre also gets ``category_negatives``
    items of its own category, which teaches the model to tell apart items the
    category alone would confuse.
    """
    n_items = len(item_counts)
    model = SkipGram(n_items, settings.dimensions)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    unigram = _unigram(item_counts)
    log_q = torch.log(unigram * settings.shared_negatives)
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    centres = torch.as_tensor(pairs.centres)
    contexts = torch.as_tensor(pairs.contexts)
    weights = torch.as_tensor(pairs.weights)
    losses = []
    batches = max(1, -(-len(pairs) // settings.batch_size))

    for epoch in range(settings.epochs):
        started = time.perf_counter()
        order = torch.randperm(len(pairs), generator=generator)
        total, seen = 0.0, 0.0
        for batch in range(batches):
            rows = order[
                batch * settings.batch_size : (batch + 1) * settings.batch_size
            ]
            batch_centres = centres[rows]
            negatives = torch.multinomial(
                unigram, settings.shared_negatives, True, generator=generator
            )
            category = None
            if sampler is not None and settings.category_negatives:
                drawn = sampler.sample(
                    batch_centres.numpy(), settings.category_negatives, rng
                )
                category = torch.as_tensor(drawn)
            loss = _pair_loss(
                model,
                batch_centres,
                contexts[rows],
                weights[rows],
                negatives,
                log_q[negatives],
                category,
                settings,
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(rows)
            seen += len(rows)
        losses.append({"step": "behaviour", "epoch": epoch + 1, "loss": total / seen})
        logger.info("behaviour epoch %s loss %.4f", epoch + 1, total / seen)
        logger.debug("behaviour epoch took %.1fs", time.perf_counter() - started)
        if progress is not None:
            progress("behaviour", epoch + 1, settings.epochs)

    with torch.no_grad():
        centre_vectors = model.centre.weight.numpy().copy()
        context_vectors = model.context.weight.numpy().copy()
    return centre_vectors, context_vectors, losses


@dataclass(frozen=True)
class HistorySettings:
    """Settings of the history fine-tuning that follows the skip-gram."""

    epochs: int
    cuts_per_user: int
    targets: int
    max_history: int
    half_life: float | None
    batch_size: int
    learning_rate: float


def _padded_histories(
    users: np.ndarray, items: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by user then time into [users, longest] item and weight arrays."""
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    lengths = np.diff(np.r_[starts, len(users)])
    position = np.arange(len(users)) - np.repeat(starts, lengths)
    row = np.repeat(np.arange(len(starts)), lengths)
    padded_items = np.zeros((len(starts), lengths.max()), dtype=np.int64)
    padded_weights = np.zeros((len(starts), lengths.max()), dtype=np.float32)
    padded_items[row, position] = items
    padded_weights[row, position] = weights
    return padded_items, padded_weights, lengths


def finetune_on_histories(
    centre_vectors: np.ndarray,
    context_vectors: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    event_weights: np.ndarray,
    settings: HistorySettings,
    rng: np.random.Generator,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """Refine the skip-gram vectors so a history's mean predicts what comes next.

    Each sample cuts a user's time-ordered history at a random point; the user
    vector is the weighted mean of the centre vectors before the cut (weights by
    event kind and recency, exactly as served), and the next ``targets`` items
    must win a softmax over all items against context vectors plus an item bias.
    Skip-gram learns which items go together; this step learns which come next.

    Returns centre vectors, context vectors, item biases and losses.
    """
    histories, weights, lengths = _padded_histories(users, items, event_weights)
    eligible = np.flatnonzero(lengths >= 2)
    centre = nn.Parameter(torch.as_tensor(centre_vectors).clone())
    context = nn.Parameter(torch.as_tensor(context_vectors).clone())
    counts = np.bincount(items, minlength=len(context_vectors)).astype(np.float64)
    bias = nn.Parameter(torch.as_tensor(np.log(counts + 1.0), dtype=torch.float32))
    optimiser = torch.optim.Adam([centre, context, bias], lr=settings.learning_rate)
    histories_t = torch.as_tensor(histories)
    weights_t = torch.as_tensor(weights)
    back = torch.arange(settings.max_history, 0, -1)  # offsets before the cut
    ahead = torch.arange(settings.targets)
    losses = []

    for epoch in range(settings.epochs):
        samples = np.repeat(eligible, settings.cuts_per_user)
        samples = samples[rng.permutation(len(samples))]
        cuts = 1 + (rng.random(len(samples)) * (lengths[samples] - 1)).astype(np.int64)
        total = 0.0
        for start in range(0, len(samples), settings.batch_size):
            user = torch.as_tensor(samples[start : start + settings.batch_size])
            cut = torch.as_tensor(cuts[start : start + settings.batch_size])
            length = torch.as_tensor(lengths)[user]

            before = cut[:, None] - back[None, :]
            valid = before >= 0
            before = before.clamp(min=0)
            weight = weights_t[user[:, None], before] * valid
            if settings.half_life:
                steps_back = (back - 1).to(torch.float32)
                weight = weight * 0.5 ** (steps_back / settings.half_life)
            history = centre[histories_t[user[:, None], before]]
            query = (history * weight[..., None]).sum(1)
            query = query / weight.sum(1, keepdim=True).clamp(min=1e-12)

            after = cut[:, None] + ahead[None, :]
            target_valid = after < length[:, None]
            target = histories_t[user[:, None], after.clamp(max=histories.shape[1] - 1)]
            logits = query @ context.T + bias
            log_probabilities = F.log_softmax(logits, dim=1)
            picked = log_probabilities.gather(1, target) * target_valid
            loss = -picked.sum() / target_valid.sum().clamp(min=1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(user)
        mean = total / max(len(samples), 1)
        losses.append({"step": "history", "epoch": epoch + 1, "loss": mean})
        logger.info("history epoch %s loss %.4f", epoch + 1, mean)
        if progress is not None:
            progress("history", epoch + 1, settings.epochs)

    with torch.no_grad():
        return (
            centre.detach().numpy().copy(),
            context.detach().numpy().copy(),
            bias.detach().numpy().copy(),
            losses,
        )
