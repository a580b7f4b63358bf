"""Class-folder layouts: ``ROOT/<class>/*.jpg`` (FER2013 as distributed on Kaggle as images, and the
emotion-eval contract) and ``ROOT/<class>/*.wav``.  Folder names go through the alias table, so
``anger``/``angry`` both work; classes outside the label set (e.g. surprise) are skipped."""
from __future__ import annotations

import pathlib
from typing import Sequence

from ..labels import canonical
from .common import AUDIO_EXTS, IMAGE_EXTS, Sample
from .cremad import parse_cremad_name
from .emodb import parse_emodb_name


def speaker_from_name(name: str) -> str:
    """The speaker id in an EmoDB (SSaTTEv) or CREMA-D (ActorID_...) file name, else ''.

    Why: files sorted into class folders often keep their corpus names, and a speaker-normalised
    vocal encoder is calibrated per speaker."""
    info = parse_emodb_name(name)
    if info is not None:
        return info['speaker']
    info = parse_cremad_name(name)
    return info['actor'] if info is not None else ''


def _load(root: str | pathlib.Path, labels: Sequence[str], exts: Sequence[str],
          speakers: bool = False) -> list[Sample]:
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
                out.append(Sample(path=f, label=label,
                                  speaker=speaker_from_name(f.name) if speakers else ''))
    return out


def load_image_folders(root: str | pathlib.Path, labels: Sequence[str]) -> list[Sample]:
    """Images below ``root/<class>/`` with a class name (or alias) in ``labels``."""
    return _load(root, labels, IMAGE_EXTS)


def load_audio_folders(root: str | pathlib.Path, labels: Sequence[str]) -> list[Sample]:
    """Audio files below ``root/<class>/`` with a class name (or alias) in ``labels``; the speaker
    is taken from EmoDB or CREMA-D file names ('' for other names)."""
    return _load(root, labels, AUDIO_EXTS, speakers=True)
