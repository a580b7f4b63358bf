"""Face arrays for training: every image goes through ``preprocess.face_to_input`` (the robot's
exact preprocessing) once, then lives in memory as one float32 tensor."""
from __future__ import annotations

import random
import sys
from collections import defaultdict
from typing import Sequence

import numpy as np
from tqdm import tqdm

from emotion_runtime.preprocess import face_to_input

from .datasets.common import Sample, read_face


def faces_to_arrays(samples: Sequence[Sample], labels: Sequence[str], vision: dict,
                    desc: str = 'faces') -> tuple[np.ndarray, np.ndarray]:
    """(x [N,1,H,W] float32, y [N] int64) from image samples."""
    idx = {k: i for i, k in enumerate(labels)}
    size = int(vision['input_size'])
    x = np.empty((len(samples), 1, size, size), np.float32)
    y = np.empty(len(samples), np.int64)
    for i, s in enumerate(tqdm(samples, desc=desc, file=sys.stderr, leave=False, mininterval=2)):
        x[i] = face_to_input(read_face(s.path), vision)
        y[i] = idx[s.label]
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
