"""Aligned pre-cropped faces in training and ``emotion-eval faces --align`` (issue 18 point 2)."""
from __future__ import annotations

import json

import cv2
import numpy as np
from skimage import data

from emotion_training.datasets.common import Sample
from emotion_training.evaluate import main as eval_main
from emotion_training.face_data import faces_to_arrays

VISION = {'input_size': 48, 'mean': 0.5, 'std': 0.25}


def _write_faces(root):
    """happy/face.png: the astronaut's face cut like a FER2013 crop; sad/blank.png: noise (no
    face, so no landmarks)."""
    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)[60:170, 170:280]
    face = cv2.resize(grey, (48, 48), interpolation=cv2.INTER_AREA)
    blank = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (48, 48), np.uint8),
                             (5, 5), 0)
    for label, name, img in (('happy', 'face.png', face), ('sad', 'blank.png', blank)):
        (root / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / label / name), img)
    return [Sample(root / 'happy' / 'face.png', 'happy'), Sample(root / 'sad' / 'blank.png', 'sad')]


def test_face_loader_aligns_where_landmarks_are_found(tmp_path):
    samples = _write_faces(tmp_path)
    plain, y = faces_to_arrays(samples, ['happy', 'neutral', 'sad'], VISION)
    aligned, y2 = faces_to_arrays(samples, ['happy', 'neutral', 'sad'], VISION, align=True)
    assert y.tolist() == y2.tolist() == [0, 2]
    assert aligned.shape == plain.shape == (2, 1, 48, 48)
    assert not np.allclose(aligned[0], plain[0])      # the face: warped onto the template
    assert np.array_equal(aligned[1], plain[1])       # no landmarks: unchanged


def test_eval_faces_align_counts_the_aligned_crops(bundle_dir, tmp_path, capsys):
    _write_faces(tmp_path / 'faces')
    assert eval_main(['faces', '--align', '--bundle', str(bundle_dir),
                      str(tmp_path / 'faces')]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    res = json.loads(lines[-1])
    assert len(lines) == 1 and res['n'] == 2 and res['aligned'] == 1
