"""Test helpers for other packages: a small valid bundle without the trained one.

``make_test_bundle(tmp_path)`` builds tiny randomly initialised encoders and fusion head, exports
them with the real export code (so the ONNX interfaces are the real ones) and writes a verified
manifest, in about a second.
"""
from __future__ import annotations

import pathlib
from typing import Optional, Sequence

import torch

from emotion_training.models.fusion_model import FusionModel
from emotion_training.models.vision_encoder import VisionEncoder
from emotion_training.models.vocal_encoder import VocalEncoder

from .config import VISION_PREPROCESS, VOCAL_PREPROCESS
from .export import export_bundle
from .labels import DEFAULT_LABELS, VALENCE_AROUSAL

__all__ = ['DEFAULT_LABELS', 'make_test_bundle', 'tiny_models']


def tiny_models(labels: Sequence[str] = DEFAULT_LABELS, seed: int = 0,
                embedding_size: int = 16, hidden_size: int = 16
                ) -> tuple[VisionEncoder, VocalEncoder, FusionModel]:
    """Small random models with the production architecture (narrow widths)."""
    torch.manual_seed(seed)
    c = len(labels)
    vision = VisionEncoder(c, embedding_size=embedding_size, layers=(1, 1, 1, 1),
                           widths=(8, 8, 16, 16), stem_stride=2)
    vocal = VocalEncoder(c, embedding_size=embedding_size, widths=(4, 8, 8, 16))
    fusion = FusionModel(embedding_size, embedding_size, c,
                         [VALENCE_AROUSAL[k] for k in labels], hidden_size=hidden_size)
    return vision, vocal, fusion


def make_test_bundle(out_dir: str | pathlib.Path, labels: Sequence[str] = DEFAULT_LABELS,
                     seed: int = 0, vocal_normalisation: Optional[dict] = None) -> pathlib.Path:
    """Write a small, valid, random-weight bundle to ``out_dir`` and return its path.

    ``vocal_normalisation``: another manifest normalisation section (e.g. a 'speaker' one)."""
    vision, vocal, fusion = tiny_models(labels, seed)
    vocal_pre = dict(VOCAL_PREPROCESS)
    if vocal_normalisation is not None:
        vocal_pre['normalisation'] = dict(vocal_normalisation)
    return export_bundle(out_dir, list(labels), vision, dict(VISION_PREPROCESS), vocal,
                         vocal_pre, fusion,
                         training={'note': 'random weights for tests (make_test_bundle)'},
                         metrics={}, version='0.0.0-test', seed=seed)
