"""Content embeddings from the exported ONNX encoder, with onnxruntime only."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime
import psycopg

from reco import registry
from reco.text import Vocabulary

logger = logging.getLogger("reco")


class EncoderIntegrityError(RuntimeError):
    """The stored ONNX bytes do not match the hash the registry recorded."""


@dataclass
class ContentVectors:
    """Vectors for the embeddable items of a batch, and the rows that had no text."""

    rows: np.ndarray
    embeddings: np.ndarray
    query_embeddings: np.ndarray
    skipped_rows: np.ndarray


class ContentEncoder:
    """Runs a model version's text encoder in-process."""

    def __init__(self, version: int, onnx_model: bytes, vocabulary: Vocabulary):
        self.version = version
        self.vocabulary = vocabulary
        options = onnxruntime.SessionOptions()
        # NOTES.md: a second thread gave no gain for this model size.
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            onnx_model, options, providers=["CPUExecutionProvider"]
        )

    @classmethod
    def for_version(cls, conn: psycopg.Connection, version: int) -> ContentEncoder:
        """Load a version's encoder from the registry, checking its hash."""
        onnx_model, expected, vocabulary_json = registry.encoder_files(conn, version)
        actual = hashlib.sha256(onnx_model).hexdigest()
        if actual != expected:
            raise EncoderIntegrityError(
                f"model {version}'s encoder hashes to {actual}, the registry says "
                f"{expected}: retrain with `reco-db train`"
            )
        return cls(version, onnx_model, Vocabulary.from_json(vocabulary_json))

    def encode(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the encoder on token ids [batch, length]."""
        embedding, query = self.session.run(None, {"tokens": tokens})
        return embedding, query

    def embed(
        self,
        titles: Sequence[str],
        bodies: Sequence[str],
        categories: Sequence[str],
    ) -> ContentVectors:
        """Embed the items that have usable text; report the rows that do not."""
        titles = [t or "" for t in titles]
        bodies = [b or "" for b in bodies]
        categories = [c or "" for c in categories]
        skipped = self.vocabulary.empty_rows(titles, bodies, categories)
        rows = np.setdiff1d(np.arange(len(titles)), skipped)
        if not rows.size:
            empty = np.zeros((0, 0), dtype=np.float32)
            return ContentVectors(rows, empty, empty, skipped)
        tokens = self.vocabulary.encode(
            [titles[r] for r in rows],
            [bodies[r] for r in rows],
            [categories[r] for r in rows],
        )
        embedding, query = self.encode(tokens)
        finite = np.isfinite(embedding).all(axis=1) & np.isfinite(query).all(axis=1)
        if not finite.all():
            # Never store a NaN vector: treat such items as not embeddable.
            logger.warning(
                "encoder gave non-finite vectors for %d items", (~finite).sum()
            )
            skipped = np.sort(np.r_[skipped, rows[~finite]])
            rows, embedding, query = rows[finite], embedding[finite], query[finite]
        return ContentVectors(rows, embedding, query, skipped)
