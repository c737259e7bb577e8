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

    The item head gives the vector an item is found by, the query head the
    vector it adds to a user's history; both read the same text features.
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
        self.query_head = nn.Linear(features, dimensions)

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
        return self.item_head(features), self.query_head(features)


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


def _in_batch_loss(
    queries: torch.Tensor, items: torch.Tensor, temperature: float
) -> torch.Tensor:
    logits = queries @ items.T / temperature
    labels = torch.arange(len(queries))
    return F.cross_entropy(logits, labels)


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
) -> tuple[TextCNN, list[dict]]:
    """Train the text CNN on behaviour: distillation plus Siamese pair losses.

    Args:
        tokens: token ids of every catalogue item [N, L].
        warm_rows: the catalogue row of each behaviour item (pairs index these).
        item_targets, query_targets: behaviour context / centre vectors per
            behaviour item, the place the text must land on.
        pairs: the behaviour model's positive pairs, in behaviour item numbers.

    Each batch of pairs (c, p) adds three terms: the text vectors regress onto
    the behaviour vectors; the behaviour query of c must pick the text item
    vector of p among the batch (a warm history finding a cold item); the text
    query of c must pick the text item vector of p (two towers, shared weights,
    the Siamese form that serves anonymous sessions of cold items).
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
        for _ in range(steps):
            drawn = rng.choice(len(pairs), settings.batch_size, p=probabilities)
            centres = torch.as_tensor(pairs.centres[drawn])
            contexts = torch.as_tensor(pairs.contexts[drawn])
            # Encode each distinct item once, cut to the batch's longest text.
            unique, inverse = torch.unique(
                torch.cat([centres, contexts]), return_inverse=True
            )
            batch_text = text[unique]
            width = max(1, int((batch_text != 0).sum(1).max()))
            unique_item, unique_query = model(batch_text[:, :width])
            centre_query = unique_query[inverse[: len(drawn)]]
            context_item = unique_item[inverse[len(drawn) :]]
            distill = (
                F.mse_loss(context_item, item_targets_t[contexts], reduction="sum")
                + F.mse_loss(centre_query, query_targets_t[centres], reduction="sum")
            ) / (2 * len(drawn) * scale)
            pair = _in_batch_loss(
                query_targets_t[centres], context_item, settings.temperature
            )
            siamese = _in_batch_loss(centre_query, context_item, settings.temperature)
            loss = (
                settings.distill_weight * distill
                + settings.pair_weight * pair
                + settings.siamese_weight * siamese
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
