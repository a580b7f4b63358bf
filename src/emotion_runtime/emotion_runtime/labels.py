"""The label order the robot's messages use, and the ``expected_labels`` parameter of every node
that runs a model (face_node, vocal_node, fusion_node).

Why: a bundle's logits and probabilities mean something only in its manifest's label order.  A
bundle trained (or hand-edited) with another order loads, runs and publishes plausible numbers
attributed to the wrong emotions ("sad" published as "happy").  So each such node declares the
order it expects and refuses, at configure, a bundle whose manifest differs
(``ModelBundle.load(..., expected_labels=...)``); the default is the order of the shipped
bundle's manifest.  No rclpy, no onnxruntime: the parameter tables import this.
"""
from __future__ import annotations

import json
import pathlib
from typing import Any, Optional

from .params import ParamSpec

__all__ = ['FALLBACK_LABELS', 'shipped_manifest_path', 'shipped_labels', 'parse_labels',
           'check_labels', 'expected_labels_spec']

#: The project's seven labels in their order, used only when the shipped manifest cannot be found
#: or read.  Everywhere else the label list is the bundle's own (its manifest's ``labels``): the
#: shipped bundle declares all seven; an older or custom bundle may declare fewer (0.6.0:
#: the first six).
FALLBACK_LABELS: tuple[str, ...] = ('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad',
                                    'surprise')


def shipped_manifest_path() -> Optional[pathlib.Path]:
    """manifest.json of the shipped bundle: the installed share directory, else the source tree
    (``$EMOTION_MODEL_BUNDLE`` is deliberately not consulted: it picks a bundle, not the order)."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415 - optional at import
        candidates.append(pathlib.Path(get_package_share_directory('emotion_runtime')))
    except Exception:  # noqa: BLE001 - ament not installed, package not built
        pass
    candidates.append(pathlib.Path(__file__).resolve().parents[1])
    for root in candidates:
        path = root / 'models' / 'default' / 'manifest.json'
        if path.is_file():
            return path
    return None


def shipped_labels() -> tuple[str, ...]:
    """The label order of the shipped bundle's manifest (FALLBACK_LABELS if it is absent)."""
    path = shipped_manifest_path()
    if path is None:
        return FALLBACK_LABELS
    try:
        labels = json.loads(path.read_text(encoding='utf-8'))['labels']
    except (OSError, ValueError, KeyError, TypeError):
        return FALLBACK_LABELS
    if check_labels(labels):
        return FALLBACK_LABELS
    return tuple(labels)


def parse_labels(value: Any) -> list[str]:
    """A comma-separated string ("angry, happy") or a list of names -> the list of names."""
    if isinstance(value, str):
        return [p.strip() for p in value.split(',') if p.strip()]
    return [str(p).strip() for p in value]


def check_labels(value: Any) -> Optional[str]:
    """Why ``value`` is not a usable label list (None when it is): non-empty, distinct names."""
    try:
        labels = parse_labels(value)
    except TypeError:
        return 'must be a list of label names'
    if not labels:
        return 'must name at least one label'
    if len(set(labels)) != len(labels):
        return 'must not repeat a label'
    return None


def _check(value: Any) -> Optional[str]:
    return check_labels(value)


_check.constraint = 'comma-separated, distinct label names'   # type: ignore[attr-defined]


def expected_labels_spec() -> ParamSpec:
    """The ``expected_labels`` parameter (default: the shipped manifest's order)."""
    return ParamSpec(
        'expected_labels', ','.join(shipped_labels()),
        'Label order the model bundle must have (comma-separated, or a string array); a bundle '
        'whose manifest lists other labels or another order is refused at configure. Default: '
        "the shipped bundle's order.", _check)
