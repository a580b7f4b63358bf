"""The fusion node's view of one EmotionFeature, and the checks an input must pass.

Why a plain dataclass instead of the ROS message: the alignment, track and fusion logic is tested
and benchmarked without rclpy, and the node converts each message exactly once at the edge.
Why the checks live here: a NaN or a wrong-sized embedding that reached the LSTM would poison the
face's hidden state for good (NaN propagates through every later step), so every input is checked
before it is buffered, and the reason for a refusal is a stable string that diagnostics can count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

__all__ = ['MODALITY_VISION', 'MODALITY_VOICE', 'Feature', 'RejectReason', 'check_feature']

# Same values as emotion_msgs/EmotionFeature.MODALITY_* and Emotion.MODALITY_* (bit flags).
MODALITY_VISION = 1
MODALITY_VOICE = 2


class RejectReason:
    """Why an input was refused (the strings are the diagnostics keys)."""

    EMPTY = 'empty_embedding'
    WRONG_SIZE = 'wrong_embedding_size'
    NOT_FINITE = 'non_finite_embedding'
    WRONG_MODALITY = 'wrong_modality'
    NO_SOURCE = 'empty_source_id'
    LABEL_MISMATCH = 'label_mismatch'
    BAD_QUALITY = 'non_finite_quality'
    BAD_LOGITS = 'bad_logits'

    ALL = (EMPTY, WRONG_SIZE, NOT_FINITE, WRONG_MODALITY, NO_SOURCE, LABEL_MISMATCH, BAD_QUALITY,
           BAD_LOGITS)


@dataclass(frozen=True)
class Feature:
    """One encoder output: who (source_id), when (stamp_ns, capture time), what (embedding).

    ``stamp_ns`` is the header stamp in nanoseconds; ``frame_id`` is kept so the Emotion can carry
    the camera frame of the face (or the microphone frame for audio-only output).
    """

    stamp_ns: int
    source_id: str
    modality: int
    embedding: np.ndarray
    quality: float = 1.0
    speech: bool = True
    frame_id: str = ''
    # when the node received it (node clock, ns); used only for latency figures
    received_ns: int = field(default=0, compare=False)
    # EmotionFeature.labels and .logits: the producer's label order (() = not given) and its
    # encoder's own scores, checked against the bundle's order but not fused
    labels: tuple = field(default=(), compare=False)
    logits: Optional[np.ndarray] = field(default=None, compare=False)


def check_feature(source_id: str, modality: int, embedding: np.ndarray,
                  expected_modality: int, expected_size: Optional[int],
                  labels: Sequence[str] = (), expected_labels: Optional[Sequence[str]] = None,
                  quality: float = 1.0, logits: Optional[np.ndarray] = None) -> Optional[str]:
    """Return None when the input may be fused, else a RejectReason string.

    ``expected_size`` is the bundle's embedding size for this modality; None (no bundle loaded)
    skips only the size check, so bad inputs are still counted while the model is missing.
    ``labels``: the label order the producer's model used (EmotionFeature.labels); when given
    (non-empty) it must equal ``expected_labels`` (the fusion bundle's), else the embedding
    comes from a model trained with another label order.  ``quality`` must be finite;
    ``logits``, when given, finite and one per label.
    """
    if int(modality) != int(expected_modality):
        return RejectReason.WRONG_MODALITY
    if expected_modality == MODALITY_VISION and not source_id:
        return RejectReason.NO_SOURCE
    if embedding.size == 0:
        return RejectReason.EMPTY
    if expected_size is not None and embedding.size != expected_size:
        return RejectReason.WRONG_SIZE
    if not np.all(np.isfinite(embedding)):
        return RejectReason.NOT_FINITE
    if labels and expected_labels is not None and list(labels) != list(expected_labels):
        return RejectReason.LABEL_MISMATCH
    if not math.isfinite(quality):
        return RejectReason.BAD_QUALITY
    if logits is not None and logits.size and (
            not np.all(np.isfinite(logits)) or (labels and logits.size != len(labels))):
        return RejectReason.BAD_LOGITS
    return None
