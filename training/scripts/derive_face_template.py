#!/usr/bin/env python3
"""Measure ``face_alignment.FER_TEMPLATE``: where MTCNN puts the five landmarks in FER2013 crops
(``--detector yunet``: ``yunet_detection.YUNET_TEMPLATE``, where YuNet puts them).

FER2013 training faces (fixed seed, all classes), each upscaled to 144 px and padded by 24 px
(``face_alignment.precrop_landmarks``), through ``MtcnnFaceDetector(min_face_size=48,
min_confidence=0.9)`` (or ``YunetFaceDetector(min_face_size=48)`` with its raw landmarks); landmark
sets more than 3 robust sd from the per-coordinate median are dropped, the rest averaged, as
fractions of the crop side.  Prints the template as a constant.

    source scripts/env.sh; python training/scripts/derive_face_template.py [--n 2000] [--data DIR]
        [--detector mtcnn|yunet]
"""
from __future__ import annotations

import argparse
import os
import pathlib

import cv2
import numpy as np

from emotion_perception.face_alignment import precrop_landmarks
from emotion_perception.mtcnn_detection import MtcnnFaceDetector
from emotion_perception.yunet_detection import YunetFaceDetector

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    default = pathlib.Path(os.environ.get('EMOTION_DATA', ROOT.parent / 'shared' / 'data'))
    ap.add_argument('--data', default=str(default / 'fer2013' / 'train'))
    ap.add_argument('--n', type=int, default=2000)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--detector', choices=('mtcnn', 'yunet'), default='mtcnn')
    args = ap.parse_args()
    cv2.setNumThreads(1)
    files = sorted(pathlib.Path(args.data).glob('*/*.jpg'))
    rng = np.random.default_rng(args.seed)
    files = [files[i] for i in rng.choice(len(files), min(args.n, len(files)), replace=False)]
    det = (MtcnnFaceDetector(min_face_size=48, min_confidence=0.9) if args.detector == 'mtcnn'
           else YunetFaceDetector(min_face_size=48, mtcnn_landmarks=False))
    pts = []
    for f in files:
        g = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        lm = None if g is None else precrop_landmarks(g, det)
        if lm is not None:
            pts.append(lm / np.array([g.shape[1], g.shape[0]], np.float64))
    p = np.asarray(pts).reshape(-1, 10)
    med = np.median(p, 0)
    mad = 1.4826 * np.median(np.abs(p - med), 0)
    keep = np.all(np.abs(p - med) <= 3.0 * mad, axis=1)
    t = p[keep].mean(0).reshape(5, 2)
    print(f'# landmarks found on {len(p)} of {len(files)} faces; {int(keep.sum())} kept')
    name = 'FER_TEMPLATE' if args.detector == 'mtcnn' else 'YUNET_TEMPLATE'
    print(f'{name} = np.array([' + ',\n                         '.join(
        f'[{x:.4f}, {y:.4f}]' for x, y in t) + '], np.float64)')


if __name__ == '__main__':
    main()
