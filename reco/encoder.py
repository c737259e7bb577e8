"""The Siamese text CNN that places an item by its text where its behaviour would."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from reco.item2vec import SkipGramPairs

logger = logging.getLogger("reco")


class TextCNN(nn.Module):
    """Token embedding -> Conv1d -> masked max-pool (+ masked mean) -> two heads.

    The item head gives the vector an item is found by, its last coordinate the
    item's bias; the query head gives the vector the item adds to a history,
    with a constant 1 last so that any weighted mean of query vectors keeps the
    1 and picks up the bias. Both heads read the same text features.
    """

    def __init__(
        self,
        vocabulary_size: int,
        dimensions: int,
        token_dimensions: int = 48,
        channels: int = 96,
        kernel_size: int = 3,
        dropout: float = 0.1,
    ):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size {kernel_size} must be odd")
        self.embedding = nn.Embedding(vocabulary_size, token_dimensions, padding_idx=0)
        # Same-length padding lets one-token inputs through the kernel.
        self.conv = nn.Conv1d(
            token_dimensions, channels, kernel_size, padding=kernel_size // 2
        )
        self.dropout = nn.Dropout(dropout)
        features = channels + token_dimensions
        self.item_head = nn.Linear(features, dimensions)
        self.query_head = nn.Linear(features, dimensions - 1)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """Pooled text features [B, channels + token_dimensions]."""
        mask = (tokens != 0).unsqueeze(-1).to(torch.float32)
        embedded = self.embedding(tokens) * mask
        hidden = F.relu(self.conv(embedded.transpose(1, 2))).transpose(1, 2)
        # ReLU output is >= 0, so zeroing padding before the max keeps the max of
        # real tokens and gives 0 (not -inf, not NaN) for an all-padding row.
        pooled = (hidden * mask).max(dim=1).values
        mean = embedded.sum(1) / mask.sum(1).clamp(min=1.0)
        return self.dropout(torch.cat([pooled, mean], dim=1))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(tokens)
        query = self.query_head(features)
        query = torch.cat([query, torch.ones_like(query[:, :1])], dim=1)
        return self.item_head(features), query


class EncoderEnsemble(nn.Module):
    """Text CNNs trained on different random draws; outputs are their mean."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = [member(tokens) for member in self.members]
        item = torch.stack([o[0] for o in outputs]).mean(dim=0)
        query = torch.stack([o[1] for o in outputs]).mean(dim=0)
        return item, query


class ItemEncoder(nn.Module):
    """The exported model: text CNN plus the transform into the stored space.

    With ``max_norm`` set, item vectors get the maximum-inner-product to cosine
    transform [v / max_norm, sqrt(1 - |v / max_norm|^2)] and query vectors a
    trailing 0, so that a cosine index ranks by the inner product of the model.
    """

    def __init__(self, cnn: TextCNN, max_norm: float | None):
        super().__init__()
        self.cnn = cnn
        self.transform = max_norm is not None
        self.register_buffer("max_norm", torch.tensor(float(max_norm or 1.0)))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        item, query = self.cnn(tokens)
        if not self.transform:
            return item, query
        return mips_to_cosine(item, self.max_norm), append_zero(query)


def mips_to_cosine(vectors: torch.Tensor, max_norm: torch.Tensor) -> torch.Tensor:
    """Scale into the unit ball (capping longer vectors) and add the norm slack."""
    scaled = vectors / max_norm
    norm = scaled.norm(dim=1, keepdim=True)
    scaled = scaled / norm.clamp(min=1.0)
    slack = (1.0 - (scaled * scaled).sum(1, keepdim=True)).clamp(min=0.0).sqrt()
    return torch.cat([scaled, slack], dim=1)


def append_zero(vectors: torch.Tensor) -> torch.Tensor:
    """Add the trailing 0 that pairs query vectors with transformed items."""
    return torch.cat([vectors, torch.zeros_like(vectors[:, :1])], dim=1)


@dataclass(frozen=True)
class EncoderSettings:
    """How the text CNN is shaped and trained (a slice of TrainConfig)."""

    token_dimensions: int
    channels: int
    kernel_size: int
    dropout: float
    epochs: int
    pairs_per_epoch: int
    batch_size: int
    learning_rate: float
    distill_weight: float
    pair_weight: float
    siamese_weight: float
    temperature: float
    user_weight: float = 0.0
    user_batch_size: int = 128
    user_holdout: float = 0.2
    user_negatives: int = 1024


@dataclass(frozen=True)
class UserHistories:
    """Training events as parallel arrays sorted by user (numbers, not ids).

    Attributes:
        users: user number per event, non-decreasing.
        items: behaviour item number (as in the pairs) per event.
        weights: the event's weight in its user's vector (reco.user_vectors).
    """

    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray


def _user_targets(
    histories: UserHistories,
    query_targets: np.ndarray,
    holdout: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Hide a share of each history; the rest makes the user's vector.

    Returns the vectors [users, D] and, per user, the hidden item numbers.
    """
    hidden = rng.random(len(histories.users)) < holdout
    n_users = int(histories.users.max()) + 1
    weights = np.where(hidden, 0.0, histories.weights)
    sums = np.zeros((n_users, query_targets.shape[1]))
    np.add.at(sums, histories.users, query_targets[histories.items] * weights[:, None])
    totals = np.bincount(histories.users, weights=weights, minlength=n_users)
    vectors = sums / np.maximum(totals, 1e-12)[:, None]
    order = np.argsort(histories.users[hidden], kind="stable")
    hidden_users = histories.users[hidden][order]
    hidden_items = histories.items[hidden][order]
    bounds = np.searchsorted(hidden_users, np.arange(n_users + 1))
    targets = [hidden_items[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    for user in np.flatnonzero(totals <= 0):
        targets[user] = hidden_items[:0]
    return vectors.astype(np.float32), targets


def _user_loss(
    model: TextCNN,
    text: torch.Tensor,
    vectors: np.ndarray,
    targets: list[np.ndarray],
    settings: EncoderSettings,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Softmax of a user's behaviour vector over the text vectors of the batch.

    Returns the loss and the items it encoded with their item and query vectors.
    """
    candidates = np.flatnonzero([len(t) > 0 for t in targets])
    users = rng.choice(candidates, min(settings.user_batch_size, len(candidates)))
    lengths = np.array([len(targets[u]) for u in users])
    items = np.concatenate([targets[u] for u in users])
    # Uniform extra candidates let the softmax learn popularity (the bias
    # coordinate) as the ranking over all items needs it.
    extra = rng.integers(0, len(text), settings.user_negatives)
    unique, columns = np.unique(np.r_[items, extra], return_inverse=True)
    columns = columns[: len(items)]
    item_vectors, query_vectors = model(_trimmed(text[torch.as_tensor(unique)]))
    logits = torch.as_tensor(vectors[users]) @ item_vectors.T / settings.temperature
    rows = torch.as_tensor(np.repeat(np.arange(len(users)), lengths))
    log_probabilities = F.log_softmax(logits, dim=1)
    loss = -log_probabilities[rows, torch.as_tensor(columns)].mean()
    return loss, torch.as_tensor(unique), item_vectors, query_vectors


def _in_batch_loss(
    queries: torch.Tensor, items: torch.Tensor, temperature: float
) -> torch.Tensor:
    logits = queries @ items.T / temperature
    labels = torch.arange(len(queries))
    return F.cross_entropy(logits, labels)


def _trimmed(batch_text: torch.Tensor) -> torch.Tensor:
    """Cut a left-aligned token batch to its longest row (at least 1)."""
    width = max(1, int((batch_text != 0).sum(1).max()))
    return batch_text[:, :width]


def _pair_terms(
    model: TextCNN,
    text: torch.Tensor,
    pairs: SkipGramPairs,
    probabilities: np.ndarray,
    query_targets: torch.Tensor,
    settings: EncoderSettings,
    rng: np.random.Generator,
) -> torch.Tensor:
    """In-batch softmax losses on behaviour pairs (c, p).

    The behaviour query of c must pick the text item vector of p among the
    batch (a warm history finding a cold item), and so must the text query of
    c: two towers with shared weights, the Siamese form that serves anonymous
    sessions made of cold items.
    """
    drawn = rng.choice(len(pairs), settings.batch_size, p=probabilities)
    centres = torch.as_tensor(pairs.centres[drawn])
    contexts = torch.as_tensor(pairs.contexts[drawn])
    # Encode each distinct item once.
    unique, inverse = torch.unique(torch.cat([centres, contexts]), return_inverse=True)
    item_vectors, query_vectors = model(_trimmed(text[unique]))
    centre_query = query_vectors[inverse[: len(drawn)]]
    context_item = item_vectors[inverse[len(drawn) :]]
    pair = _in_batch_loss(query_targets[centres], context_item, settings.temperature)
    siamese = _in_batch_loss(centre_query, context_item, settings.temperature)
    return settings.pair_weight * pair + settings.siamese_weight * siamese


def train_encoder(
    tokens: np.ndarray,
    warm_rows: np.ndarray,
    item_targets: np.ndarray,
    query_targets: np.ndarray,
    pairs: SkipGramPairs,
    vocabulary_size: int,
    settings: EncoderSettings,
    rng: np.random.Generator,
    progress: Callable[[str, int, int], None] | None = None,
    histories: UserHistories | None = None,
) -> tuple[TextCNN, list[dict]]:
    """Train the text CNN to put items where behaviour puts them.

    Args:
        tokens: token ids of every catalogue item [N, L].
        warm_rows: the catalogue row of each behaviour item (pairs index these).
        item_targets, query_targets: behaviour context / centre vectors per
            behaviour item, the place the text must land on.
        pairs: the behaviour model's positive pairs, in behaviour item numbers.
        histories: the users' events; with ``user_weight`` set, a behaviour user
            vector built from part of a history must pick the text item vectors
            of the hidden rest, against uniformly drawn items too. This is the
            cold-start task itself, popularity included.

    Every step regresses the text vectors of the items it encodes onto their
    behaviour vectors (distillation) and adds the pair terms of ``_pair_terms``
    when their weights are set.
    """
    dimensions = item_targets.shape[1]
    model = TextCNN(
        vocabulary_size,
        dimensions,
        settings.token_dimensions,
        settings.channels,
        settings.kernel_size,
        settings.dropout,
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    text = torch.as_tensor(tokens[warm_rows])
    item_targets_t = torch.as_tensor(item_targets, dtype=torch.float32)
    query_targets_t = torch.as_tensor(query_targets, dtype=torch.float32)
    scale = float(item_targets_t.pow(2).sum(1).mean()) or 1.0
    probabilities = pairs.weights / pairs.weights.sum()
    steps = max(1, settings.pairs_per_epoch // settings.batch_size)
    losses = []

    model.train()
    for epoch in range(settings.epochs):
        started = time.perf_counter()
        total = 0.0
        use_users = histories is not None and settings.user_weight > 0
        if use_users:
            vectors, targets = _user_targets(
                histories, query_targets, settings.user_holdout, rng
            )
        for _ in range(steps):
            if use_users:
                user, items, item_vectors, query_vectors = _user_loss(
                    model, text, vectors, targets, settings, rng
                )
            else:
                user = torch.zeros(())
                drawn = rng.choice(len(pairs), settings.batch_size, p=probabilities)
                items = torch.as_tensor(np.unique(pairs.contexts[drawn]))
                item_vectors, query_vectors = model(_trimmed(text[items]))
            distill = (
                F.mse_loss(item_vectors, item_targets_t[items], reduction="sum")
                + F.mse_loss(query_vectors, query_targets_t[items], reduction="sum")
            ) / (2 * len(items) * scale)
            loss = settings.distill_weight * distill + settings.user_weight * user
            if settings.pair_weight or settings.siamese_weight:
                loss = loss + _pair_terms(
                    model, text, pairs, probabilities, query_targets_t, settings, rng
                )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
        losses.append({"step": "content", "epoch": epoch + 1, "loss": total / steps})
        logger.info("content epoch %s loss %.4f", epoch + 1, total / steps)
        logger.debug("content epoch took %.1fs", time.perf_counter() - started)
        if progress is not None:
            progress("content", epoch + 1, settings.epochs)
    model.eval()
    return model, losses
