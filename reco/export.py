"""Export the trained text encoder to ONNX and check it against PyTorch."""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from reco.dataset import Catalog

logger = logging.getLogger("reco")

OPSET = 17
# Outputs are unit-scale vectors. The max-inner-product transform ends in
# sqrt(max_norm^2 - |x|^2), which magnifies float32 rounding for items near the
# largest norm, so a correct export can differ by a few 1e-4 there; a broken one
# differs by 1e-1 or more.
TOLERANCE = 2e-3


class ExportParityError(RuntimeError):
    """onnxruntime and PyTorch disagree on the exported encoder."""


@dataclass
class ExportedEncoder:
    """The ONNX bytes, their hash, where they were written, and the parity check."""

    onnx_model: bytes
    sha256: str
    path: Path
    max_difference: float
    items_checked: int


def export_encoder(encoder: torch.nn.Module, path: Path) -> bytes:
    """Write the encoder as ONNX with variable batch size and text length."""
    encoder.eval()
    example = torch.ones((2, 8), dtype=torch.long)
    buffer = io.BytesIO()
    # dynamo=False: the TorchScript exporter needs no onnxscript and handles
    # dynamic axes for this Conv1d + max-pool model (NOTES.md).
    torch.onnx.export(
        encoder,
        (example,),
        buffer,
        input_names=["tokens"],
        output_names=["embedding", "query_embedding"],
        dynamic_axes={
            "tokens": {0: "batch", 1: "length"},
            "embedding": {0: "batch"},
            "query_embedding": {0: "batch"},
        },
        opset_version=OPSET,
        dynamo=False,
    )
    onnx_model = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onnx_model)
    return onnx_model


def check_parity(
    encoder: torch.nn.Module,
    onnx_model: bytes,
    tokens: np.ndarray,
    batch_sizes: tuple[int, ...] = (1, 7, 64),
) -> float:
    """Largest difference between torch and onnxruntime over real items.

    Runs several batch sizes and cuts the text at several lengths, so the dynamic
    axes are exercised, not only the shape used at export.
    """
    session = onnxruntime.InferenceSession(
        onnx_model, providers=["CPUExecutionProvider"]
    )
    worst = 0.0
    start = 0
    for batch in batch_sizes:
        for length in sorted({1, max(1, tokens.shape[1] // 2), tokens.shape[1]}):
            chunk = tokens[start : start + batch, :length]
            start = (start + batch) % max(len(tokens) - batch, 1)
            with torch.no_grad():
                expected = encoder(torch.from_numpy(chunk))
            actual = session.run(None, {"tokens": chunk})
            for want, got in zip(expected, actual, strict=True):
                worst = max(worst, float(np.abs(want.numpy() - got).max()))
    return worst


def export_and_check(
    encoder: torch.nn.Module, vocabulary, catalog: Catalog, path: Path
) -> ExportedEncoder:
    """Export, then compare with torch on up to 256 real items of ``catalog``."""
    onnx_model = export_encoder(encoder, path)
    usable = np.setdiff1d(
        np.arange(len(catalog)),
        vocabulary.empty_rows(catalog.titles, catalog.bodies, catalog.categories),
    )[:256]
    tokens = vocabulary.encode_catalog(catalog.subset(usable))
    difference = check_parity(encoder, onnx_model, tokens)
    if difference > TOLERANCE:
        raise ExportParityError(
            f"onnxruntime differs from torch by {difference:.2e} (> {TOLERANCE}) on "
            f"{len(usable)} items: the export of {path.name} is not trustworthy"
        )
    sha256 = hashlib.sha256(onnx_model).hexdigest()
    logger.info(
        "exported encoder: sha256 %s, onnxruntime vs torch max difference %.1e "
        "on %d items",
        sha256[:12],
        difference,
        len(usable),
    )
    return ExportedEncoder(onnx_model, sha256, path, difference, len(usable))
