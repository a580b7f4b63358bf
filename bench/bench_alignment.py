#!/usr/bin/env python3
"""Aligned vs box face crops through the shipped vision encoder (issue 18 point 2): accuracy and
UAR of the same detections, cropped both ways, and of FER's own pre-cropped faces with and
without alignment (where MTCNN finds their landmarks).

Faces: FER2013 validation (PublicTest) faces of the bundle's labels ($EMOTION_DATA/fer2013/
validation, else ../shared/data; up to ``--per-class`` per class, fixed seed).  Scenes: each face
pasted once into a 640x480 background by bench_detection's generator, side uniform in
[``--min-size``, ``--max-size``] px, rotated uniformly in +-``--max-angle`` degrees about its
centre.  ``MtcnnFaceDetector()`` (face_node's default settings) runs on the frame; a face counts
when a detection with landmarks matches the pasted square (bench_detection.found).  Its box crop
(``crop_face``, margin 0.1: face_node's default) and its aligned crop
(``face_alignment.align_face``) go through the same bundle; paired difference with a bootstrap 95 %
interval (1,000 resamples of faces).  Pre-cropped: ``face_alignment.align_precropped`` (144 px
upscale) vs the 48x48 image itself, on the faces where landmarks are found.

    source scripts/env.sh; python bench/bench_alignment.py [--per-class 600] [--bundle DIR]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys

for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(var, '1')

import cv2  # noqa: E402
import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / 'src' / 'emotion_perception'))
sys.path.insert(0, str(HERE))

from bench_detection import backgrounds, data_root, face_frame  # noqa: E402

from emotion_perception.face_alignment import align_face, align_precropped  # noqa: E402
from emotion_perception.mtcnn_detection import MtcnnFaceDetector  # noqa: E402
from emotion_perception.vision_pipeline import crop_face  # noqa: E402
from emotion_runtime.model_bundle import ModelBundle  # noqa: E402


def load_faces(labels: list, per_class: int, rng: np.random.Generator) -> list:
    """[(grey 48x48 face, label index)] of FER2013 validation, up to per_class each."""
    folder = data_root() / 'fer2013' / 'validation'
    out = []
    for i, c in enumerate(labels):
        files = sorted((folder / c).glob('*.jpg'))
        for f in rng.permutation(files)[:per_class]:
            g = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            if g is not None:
                out.append((g, i))
    return out


def scores(y: np.ndarray, pred: np.ndarray, n_cls: int) -> tuple[float, float]:
    """(accuracy, UAR over the classes present)."""
    rec = [float(np.mean(pred[y == k] == k)) for k in range(n_cls) if np.any(y == k)]
    return float(np.mean(pred == y)), float(np.mean(rec))


def paired(y: np.ndarray, a: np.ndarray, b: np.ndarray, n_cls: int,
           rng: np.random.Generator) -> dict:
    """Figures of predictions a (unaligned) and b (aligned) on the same faces, and the 95 %
    bootstrap interval of b - a."""
    acc_a, uar_a = scores(y, a, n_cls)
    acc_b, uar_b = scores(y, b, n_cls)
    deltas = []
    for _ in range(1000):
        i = rng.integers(0, len(y), len(y))
        sa, sb = scores(y[i], a[i], n_cls), scores(y[i], b[i], n_cls)
        deltas.append((sb[0] - sa[0], sb[1] - sa[1]))
    lo, hi = np.percentile(np.array(deltas), [2.5, 97.5], axis=0)
    return {'n': len(y), 'acc': (acc_a, acc_b), 'uar': (uar_a, uar_b),
            'ci_acc': (lo[0], hi[0]), 'ci_uar': (lo[1], hi[1]),
            'changed': int(np.sum(a != b))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--per-class', type=int, default=600)
    ap.add_argument('--min-size', type=int, default=60)
    ap.add_argument('--max-size', type=int, default=160)
    ap.add_argument('--max-angle', type=float, default=15.0)
    ap.add_argument('--bundle', default=None)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(a.seed)
    bundle = ModelBundle.load(a.bundle, threads=1) if a.bundle else ModelBundle.load(threads=1)
    labels, n_cls = list(bundle.labels), len(bundle.labels)
    faces = load_faces(labels, a.per_class, rng)
    if not faces:
        raise SystemExit('no FER2013 validation faces found')
    det = MtcnnFaceDetector()
    bgs = backgrounds()
    scene = {'y': [], 'box': [], 'aligned': [], 'angle': []}
    pre = {'y': [], 'plain': [], 'aligned': []}
    missed = 0
    for face, k in faces:
        size = int(rng.integers(a.min_size, a.max_size + 1))
        angle = float(rng.uniform(-a.max_angle, a.max_angle))
        frame, (x, y, s, _) = face_frame(cv2.cvtColor(face, cv2.COLOR_GRAY2BGR), size, angle,
                                         bgs, rng)
        hit = None
        for d in det.detect(frame):
            cx, cy = d.x + d.w / 2, d.y + d.h / 2
            if (d.landmarks is not None and x <= cx <= x + s and y <= cy <= y + s
                    and 0.5 * s <= max(d.w, d.h) <= 2.0 * s):
                hit = d
                break
        if hit is None:
            missed += 1
        else:
            scene['y'].append(k)
            scene['angle'].append(abs(angle))
            scene['box'].append(crop_face(frame, hit.box, 0.1))
            scene['aligned'].append(align_face(frame, hit.landmarks))
        aligned, ok = align_precropped(face, det)
        if ok:
            pre['y'].append(k)
            pre['plain'].append(face)
            pre['aligned'].append(aligned)

    def predict(crops: list) -> np.ndarray:
        out = [bundle.encode_faces(crops[i:i + 128])[1].argmax(1)
               for i in range(0, len(crops), 128)]
        return np.concatenate(out) if out else np.zeros(0, int)

    ys, box, al = np.array(scene['y']), predict(scene['box']), predict(scene['aligned'])
    ang = np.array(scene['angle'])
    rows = [('scene crops: box (margin 0.1) vs aligned, same detections',
             paired(ys, box, al, n_cls, rng))]
    for lo, hi in ((0.0, 5.0), (5.0, 10.0), (10.0, 90.0)):
        m = (ang >= lo) & (ang < hi)
        if m.any():
            rows.append((f'  rotation {lo:g}-{min(hi, a.max_angle):g} deg',
                         paired(ys[m], box[m], al[m], n_cls, rng)))
    rows += [
            ('pre-cropped FER: 48x48 as is vs aligned (landmarks found)',
             paired(np.array(pre['y']), predict(pre['plain']), predict(pre['aligned']),
                    n_cls, rng))]
    print(f'faces: {len(faces)} FER2013 validation of {labels}; scenes: side {a.min_size}-'
          f'{a.max_size} px, rotation +-{a.max_angle:g} deg; detected with landmarks '
          f'{len(faces) - missed}, missed {missed}; pre-cropped landmarks found on '
          f'{len(pre["y"])}; bundle {bundle.path}')
    print('stage | measured | target')
    for name, r in rows:
        print(f'{name} (n={r["n"]}) | accuracy {r["acc"][0]:.3f} -> {r["acc"][1]:.3f} '
              f'(delta 95 % CI {r["ci_acc"][0]:+.3f}..{r["ci_acc"][1]:+.3f}), UAR '
              f'{r["uar"][0]:.3f} -> {r["uar"][1]:.3f} (CI {r["ci_uar"][0]:+.3f}..'
              f'{r["ci_uar"][1]:+.3f}); {r["changed"]} predictions changed | '
              f'>= +0.005 both to ship on')


if __name__ == '__main__':
    main()
