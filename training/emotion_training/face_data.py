"""Face arrays for training: every image goes through ``preprocess.face_to_input`` (the robot's
exact preprocessing) once, then lives in memory as one float32 tensor.  ``align=True`` first
aligns each crop on its five MTCNN landmarks (``emotion_perception.face_alignment``, as face_node
with ``align_faces``) where MTCNN finds them on the upscaled crop; the others stay as they are."""
from __future__ import annotations

import random
import sys
from collections import defaultdict
from typing import Any, Optional, Sequence

import numpy as np
from tqdm import tqdm

from emotion_runtime.preprocess import face_to_input

from .datasets.common import Sample, read_face


def faces_to_arrays(samples: Sequence[Sample], labels: Sequence[str], vision: dict,
                    desc: str = 'faces', align: bool = False,
                    detector: Optional[Any] = None) -> tuple[np.ndarray, np.ndarray]:
    """(x [N,1,H,W] float32, y [N] int64) from image samples.  ``align``: crops aligned where
    landmarks are found (``detector``: an ``MtcnnFaceDetector``, default settings when None);
    how many were is logged to stderr."""
    idx = {k: i for i, k in enumerate(labels)}
    size = int(vision['input_size'])
    x = np.empty((len(samples), 1, size, size), np.float32)
    y = np.empty(len(samples), np.int64)
    if align:
        from emotion_perception.face_alignment import align_precropped  # noqa: PLC0415 - MTCNN/onnxruntime only when aligning
        if detector is None:
            from emotion_perception.mtcnn_detection import MtcnnFaceDetector  # noqa: PLC0415 - as above
            detector = MtcnnFaceDetector()
    aligned = 0
    for i, s in enumerate(tqdm(samples, desc=desc, file=sys.stderr, leave=False, mininterval=2)):
        crop = read_face(s.path)
        if align:
            crop, ok = align_precropped(crop, detector)
            aligned += ok
        x[i] = face_to_input(crop, vision)
        y[i] = idx[s.label]
    if align:
        print(f'{desc}: {aligned} of {len(samples)} crops aligned on MTCNN landmarks',
              file=sys.stderr)
    return x, y


def stratified_holdout(samples: Sequence[Sample], fraction: float,
                       seed: int) -> tuple[list[Sample], list[Sample]]:
    """Split off ``fraction`` of each class (for early stopping without touching the test split)."""
    by = defaultdict(list)
    for s in samples:
        by[s.label].append(s)
    rng = random.Random(seed)
    train, hold = [], []
    for k in sorted(by):
        items = by[k][:]
        rng.shuffle(items)
        n = int(round(len(items) * fraction))
        hold += items[:n]
        train += items[n:]
    return train, hold
