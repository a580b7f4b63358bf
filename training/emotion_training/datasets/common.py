"""Shared record type and image reading."""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Optional

import cv2
import numpy as np

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.pgm', '.tif', '.tiff', '.webp')
AUDIO_EXTS = ('.wav', '.flac', '.ogg')


class UnreadableImageError(RuntimeError):
    """An image file could not be decoded."""


@dataclasses.dataclass
class Sample:
    """One labelled item.  ``path`` is the main media file (image or audio)."""

    path: pathlib.Path
    label: str
    speaker: str = ''
    audio: Optional[pathlib.Path] = None
    video: Optional[pathlib.Path] = None
    extra: dict = dataclasses.field(default_factory=dict)


def read_face(path: str | pathlib.Path) -> np.ndarray:
    """Read an image file unchanged in depth (grey stays grey, colour is BGR) as uint8."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UnreadableImageError(f'cannot read image file {path} (missing or not an image)')
    if img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return img
