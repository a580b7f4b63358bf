"""Class-folder layouts: ``ROOT/<class>/*.jpg`` (FER2013 as distributed on Kaggle as images, and the
emotion-eval contract) and ``ROOT/<class>/*.wav``.  Folder names go through the alias table, so
``anger``/``angry`` both work; classes outside the label set (e.g. surprise) are skipped."""
from __future__ import annotations

import pathlib
from typing import Sequence

from ..labels import canonical
from .common import AUDIO_EXTS, IMAGE_EXTS, Sample


def _load(root: str | pathlib.Path, labels: Sequence[str], exts: Sequence[str]) -> list[Sample]:
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f'dataset folder {root} does not exist')
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        label = canonical(d.name, labels)
        if label is None:
            continue
        for f in sorted(d.rglob('*')):
            if f.is_file() and f.suffix.lower() in exts:
                out.append(Sample(path=f, label=label))
    return out


def load_image_folders(root: str | pathlib.Path, labels: Sequence[str]) -> list[Sample]:
    """Images below ``root/<class>/`` with a class name (or alias) in ``labels``."""
    return _load(root, labels, IMAGE_EXTS)


def load_audio_folders(root: str | pathlib.Path, labels: Sequence[str]) -> list[Sample]:
    """Audio files below ``root/<class>/`` with a class name (or alias) in ``labels``."""
    return _load(root, labels, AUDIO_EXTS)
