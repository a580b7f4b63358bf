#!/usr/bin/env python3
"""Face detection on generated 640x480 frames: found rate by face size, rotation, motion blur and
low light, false detections per 1,000 face-free frames, and ms per frame, for each detector.

Prints figures (never asserts).  Faces: FER2013 validation crops (when the data folder is there:
$EMOTION_DATA/fer2013/validation, else ../shared/data beside the checkout; stratified by class,
fixed seed), LFW faces of scikit-image's ``lfw_subset``, and the astronaut's and cameraman's faces
(scikit-image), each pasted as a square of the given side into a 640x480 background (face-free
scikit-image photos and textures, randomly cropped and flipped).  A face counts as found when a
detection's centre lies in the pasted square and its side is 0.5-2x the square's.  Conditions,
one changed at a time from upright / sharp / normal light:
  size 40, 60, 80, 120, 200 px; rotation +-15 and +-30 degrees, motion blur (11 px, random
  direction) and low light (x0.25, noise) at 100 px.
Face-free frames: the same backgrounds, a quarter each blurred / darkened.  Time: whole-frame
``detect(frame)`` and windowed ``detect(frame, regions)`` (scan_schedule's window around the face,
as face_node runs between whole-frame scans) on one core.  The found rates are of whole-frame scans
(a face entering the view); "in its window" rates are of the windowed search (a tracked face
followed between whole-frame scans).  ``+turned`` detectors search turned copies of the frame as
face_node does with ``turned_search_deg`` (default 30): a face counts as found when one of the four
whole scans of the angle cycle finds it; face-free frames get one scan each, so their false
detections mix the cycle's angles as a frame stream does.

    source scripts/env.sh; python bench/bench_detection.py [--faces N] [--negatives N]
        [--detectors mtcnn mtcnn+turned yunet yunet+turned mtcnn_yunet+turned haar]
        [--turned-deg 30] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(var, '1')

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from skimage import data  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'src' / 'emotion_perception'))

from emotion_perception.face_detection import HaarFaceDetector, SplitDetector  # noqa: E402
from emotion_perception.mtcnn_detection import MtcnnFaceDetector  # noqa: E402
from emotion_perception.scan_schedule import ScanSchedule  # noqa: E402
from emotion_perception.turned_search import TurnedSearch  # noqa: E402
from emotion_perception.yunet_detection import WHOLE_FRAME_SIDE, YunetFaceDetector  # noqa: E402

W, H = 640, 480
SIZES = (40, 60, 80, 120, 200)
NUISANCE_SIZE = 100
CLASSES = ('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise')


def data_root() -> pathlib.Path:
    env = os.environ.get('EMOTION_DATA')
    return pathlib.Path(env) if env else ROOT.parent / 'shared' / 'data'


def fer_faces(n: int, rng: np.random.Generator) -> list:
    folder = data_root() / 'fer2013' / 'validation'
    if not folder.is_dir():
        return []
    per = max(1, n // len(CLASSES))
    out = []
    for c in CLASSES:
        files = sorted((folder / c).glob('*.jpg'))
        for f in rng.choice(files, min(per, len(files)), replace=False):
            g = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            if g is not None:
                out.append(('fer', cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)))
    return out[:n]


def photo_faces(n_lfw: int) -> list:
    astro = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[52:180, 162:290]
    camera = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)[50:150, 220:320]
    out = [('photo', astro), ('photo', camera)]
    for crop in data.lfw_subset()[:n_lfw]:
        g = (crop * 255).astype(np.uint8)
        out.append(('photo', cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)))
    return out


def backgrounds() -> list:
    names = ('coffee', 'chelsea', 'rocket', 'brick', 'grass', 'gravel', 'coins', 'page', 'text',
             'moon', 'hubble_deep_field', 'immunohistochemistry', 'horse', 'colorwheel')
    out = []
    for name in names:
        try:
            img = np.asarray(getattr(data, name)())
        except Exception:  # noqa: BLE001, S112 - a photo missing in this skimage: skip it
            continue
        if img.dtype == bool:
            img = img.astype(np.uint8) * 255
        img = img.astype(np.uint8)
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else \
            cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
        out.append(img)
    rng = np.random.default_rng(7)
    out.append(cv2.GaussianBlur(rng.integers(60, 140, (H, W, 3), np.uint8), (7, 7), 0))
    return out


def random_background(bgs: list, rng: np.random.Generator) -> np.ndarray:
    img = bgs[rng.integers(len(bgs))]
    s = max(W / img.shape[1], H / img.shape[0]) * rng.uniform(1.0, 1.6)
    img = cv2.resize(img, (int(np.ceil(img.shape[1] * s)), int(np.ceil(img.shape[0] * s))))
    y, x = rng.integers(0, img.shape[0] - H + 1), rng.integers(0, img.shape[1] - W + 1)
    out = np.ascontiguousarray(img[y:y + H, x:x + W])
    return out[:, ::-1].copy() if rng.random() < 0.5 else out


def motion_blur(img: np.ndarray, rng: np.random.Generator, length: int = 11) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0 / length
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
    k = cv2.warpAffine(k, rot, (length, length))
    return cv2.filter2D(img, -1, k / max(k.sum(), 1e-6))


def low_light(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dark = img.astype(np.float32) * 0.25 + rng.normal(0, 3.0, img.shape)
    return np.clip(dark, 0, 255).astype(np.uint8)


def face_frame(face: np.ndarray, size: int, angle: float, bgs: list,
               rng: np.random.Generator) -> tuple[np.ndarray, tuple]:
    frame = random_background(bgs, rng)
    x = int(rng.integers(10, W - size - 10))
    y = int(rng.integers(10, H - size - 10))
    frame[y:y + size, x:x + size] = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA
                                               if size < face.shape[0] else cv2.INTER_CUBIC)
    if angle:
        m = int(size * 0.4)
        x0, y0 = max(0, x - m), max(0, y - m)
        x1, y1 = min(W, x + size + m), min(H, y + size + m)
        win = frame[y0:y1, x0:x1]
        rot = cv2.getRotationMatrix2D((x + size / 2 - x0, y + size / 2 - y0), angle, 1.0)
        frame[y0:y1, x0:x1] = cv2.warpAffine(win, rot, (x1 - x0, y1 - y0),
                                             borderMode=cv2.BORDER_REFLECT)
    return frame, (x, y, size, size)


def make_frames(faces: list, bgs: list, seed: int = 0) -> list:
    """[(condition, source, frame, truth box)] for every face under every condition."""
    rng = np.random.default_rng(seed)
    out = []
    for source, face in faces:
        for s in SIZES:
            f, box = face_frame(face, s, 0.0, bgs, rng)
            out.append((f'size {s}', source, f, box))
        for a in (15, 30):
            f, box = face_frame(face, NUISANCE_SIZE, a * rng.choice((-1, 1)), bgs, rng)
            out.append((f'rotation +-{a}', source, f, box))
        f, box = face_frame(face, NUISANCE_SIZE, 0.0, bgs, rng)
        out.append(('motion blur', source, motion_blur(f, rng), box))
        f, box = face_frame(face, NUISANCE_SIZE, 0.0, bgs, rng)
        out.append(('low light', source, low_light(f, rng), box))
    return out


def make_negatives(n: int, bgs: list, seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        f = random_background(bgs, rng)
        out.append(motion_blur(f, rng) if i % 4 == 1 else low_light(f, rng) if i % 4 == 2 else f)
    return out


def found(dets: list, box: tuple) -> bool:
    x, y, s, _ = box
    for d in dets:
        cx, cy, side = d.x + d.w / 2, d.y + d.h / 2, max(d.w, d.h)
        if x <= cx <= x + s and y <= cy <= y + s and 0.5 * s <= side <= 2.0 * s:
            return True
    return False


def measure(detector, frames: list, negatives: list) -> dict:
    hits: dict = {}
    win_hits: dict = {}
    ms_whole, ms_win = [], []
    ms_win_cond: dict = {}
    schedule = ScanSchedule(5, 1.0)
    detector.detect(frames[0][2])                      # warm-up
    # a turned search (turned_search.TurnedSearch) turns each whole scan by the next angle of
    # its cycle: a still face counts as found when one of a cycle's scans finds it (what a
    # face in view for four frames, 133 ms at 30 fps, gets)
    scans = 4 if isinstance(detector, TurnedSearch) else 1
    for cond, source, frame, box in frames:
        hit = False
        for _ in range(scans):
            t = time.perf_counter()
            dets = detector.detect(frame)
            ms_whole.append((time.perf_counter() - t) * 1e3)
            hit = hit or found(dets, box)
        hits.setdefault((cond, source), []).append(hit)
        regions = schedule.windows(W, H, [box])
        t = time.perf_counter()
        dets = detector.detect(frame, regions)
        ms_win.append((time.perf_counter() - t) * 1e3)
        ms_win_cond.setdefault(cond, []).append(ms_win[-1])
        win_hits.setdefault((cond, source), []).append(found(dets, box))
    false = 0
    for frame in negatives:
        t = time.perf_counter()
        false += len(detector.detect(frame))
        ms_whole.append((time.perf_counter() - t) * 1e3)
    return {'hits': hits, 'window_hits': win_hits, 'false': false, 'negatives': len(negatives),
            'whole': (float(np.percentile(ms_whole, 50)), float(np.percentile(ms_whole, 95))),
            'window': (float(np.percentile(ms_win, 50)), float(np.percentile(ms_win, 95))),
            'window_by_cond': {c: float(np.median(v)) for c, v in ms_win_cond.items()}}


def rate(hits: dict, conds, sources=('fer', 'photo')) -> tuple[float, int]:
    vals = [v for (c, s), vs in hits.items() if c in conds and s in sources for v in vs]
    return (float(np.mean(vals)) if vals else float('nan')), len(vals)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--faces', type=int, default=70, help='FER2013 validation faces (if present)')
    ap.add_argument('--lfw', type=int, default=20, help='LFW faces from scikit-image')
    ap.add_argument('--negatives', type=int, default=1000, help='face-free frames')
    ap.add_argument('--detectors', nargs='*',
                    default=['mtcnn', 'mtcnn+turned', 'mtcnn_yunet+turned', 'haar'],
                    help='detectors to measure: mtcnn, yunet, mtcnn_yunet (MTCNN on whole '
                         'frames, YuNet in windows), haar, and each with +turned '
                         '(face_node\'s '
                         'turned_search_deg: whole scans cycle upright, +angle, upright, -angle; '
                         'windows searched turned when upright finds nothing) [%(default)s]')
    ap.add_argument('--turned-deg', type=float, default=30.0,
                    help='angle of the +turned detectors (face_node turned_search_deg) [30]')
    ap.add_argument('--mtcnn-thresholds', type=float, nargs=3, default=(0.6, 0.7, 0.7),
                    metavar=('P', 'R', 'O'), help='MTCNN stage thresholds [0.6 0.7 0.7]')
    ap.add_argument('--mtcnn-min-confidence', type=float, default=0.9,
                    help='MTCNN ONet score a face needs (face_node mtcnn_min_confidence) [0.9]')
    ap.add_argument('--mtcnn-low-light-gain', type=float, default=4.0,
                    help='MTCNN largest gain on a dark frame (face_node mtcnn_low_light_gain; '
                         '1 = off) [4]')
    ap.add_argument('--mtcnn-min-face', type=int, default=48,
                    help='MTCNN and YuNet smallest face in px (face_node min_face_size) [48]')
    ap.add_argument('--yunet-score-threshold', type=float, default=0.7,
                    help='YuNet score a face needs (face_node yunet_score_threshold) [0.7]')
    ap.add_argument('--yunet-whole-side', type=int, default=WHOLE_FRAME_SIDE,
                    help='YuNet whole-frame scans: the frame scaled so that its short side is '
                         'this, never enlarged [%(default)s]')
    ap.add_argument('--seed', type=int, default=0,
                    help='placement of the faces (this seed) and the face-free frames (seed + 1) '
                         '[0]; the faces drawn stay the same')
    a = ap.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    fer = fer_faces(a.faces, rng)
    faces = fer + photo_faces(a.lfw)
    bgs = backgrounds()
    frames = make_frames(faces, bgs, a.seed)
    negatives = make_negatives(a.negatives, bgs, a.seed + 1)
    print(f'faces: {len(fer)} FER2013 validation ({"present" if fer else "absent"}), '
          f'{len(faces) - len(fer)} photos; {len(frames)} face frames, {len(negatives)} face-free; '
          f'machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}')
    build = {'mtcnn': lambda: MtcnnFaceDetector(min_face_size=a.mtcnn_min_face,
                                                thresholds=a.mtcnn_thresholds,
                                                min_confidence=a.mtcnn_min_confidence,
                                                low_light_gain=a.mtcnn_low_light_gain),
             'yunet': lambda: YunetFaceDetector(min_face_size=a.mtcnn_min_face,
                                                score_threshold=a.yunet_score_threshold,
                                                whole_frame_side=a.yunet_whole_side),
             'haar': lambda: HaarFaceDetector()}
    build['mtcnn_yunet'] = lambda: SplitDetector(build['mtcnn'](), build['yunet']())
    for name in ('mtcnn', 'yunet', 'mtcnn_yunet', 'haar'):
        build[f'{name}+turned'] = (lambda n=name: TurnedSearch(build[n](), a.turned_deg))
    unknown = sorted(set(a.detectors) - set(build))
    if unknown:
        ap.error(f'unknown detector(s) {unknown}; choose from {sorted(build)}')
    big = [f'size {s}' for s in SIZES if s >= 60] + ['rotation +-15', 'rotation +-30',
                                                     'motion blur', 'low light']
    rows = []
    for name in a.detectors:
        r = measure(build[name](), frames, negatives)
        h = r['hits']
        v, n = rate(h, big)
        rows.append((f'{name}: face >= 60 px found, all conditions', f'{v:.1%} of {n}', '>= 95 %'))
        v, n = rate(h, [c for c in big if c.startswith('size')])
        rows.append((f'{name}:   upright, sharp, normal light', f'{v:.1%} of {n}', '-'))
        if fer:
            v, n = rate(h, big, ('fer',))
            rows.append((f'{name}:   FER2013 faces only', f'{v:.1%} of {n}', '-'))
        for s in SIZES:
            v, n = rate(h, [f'size {s}'])
            rows.append((f'{name}:   size {s} px', f'{v:.1%} of {n}', '-'))
        for c in ('rotation +-15', 'rotation +-30', 'motion blur', 'low light'):
            v, n = rate(h, [c])
            rows.append((f'{name}:   {c} ({NUISANCE_SIZE} px)', f'{v:.1%} of {n}', '-'))
        wh = r['window_hits']
        v, n = rate(wh, big)
        rows.append((f'{name}: face >= 60 px found in its window, all conditions',
                     f'{v:.1%} of {n}', '-'))
        sizes = ' / '.join(f'{rate(wh, [f"size {s}"])[0]:.0%}' for s in SIZES)
        rows.append((f'{name}:   in its window, size {"/".join(map(str, SIZES))} px', sizes, '-'))
        per_k = 1000.0 * r['false'] / max(1, r['negatives'])
        rows.append((f'{name}: false detections per 1,000 face-free frames',
                     f'{per_k:.1f} ({r["false"]} in {r["negatives"]})', '<= 1'))
        rows.append((f'{name}: ms per 640x480 frame, whole frame p50/p95',
                     f'{r["whole"][0]:.1f} / {r["whole"][1]:.1f}', '-'))
        rows.append((f'{name}: ms per frame, window around the face p50/p95',
                     f'{r["window"][0]:.1f} / {r["window"][1]:.1f}', '-'))
        by = r['window_by_cond']
        rows.append((f'{name}:   window p50 by face size {"/".join(map(str, SIZES))} px',
                     ' / '.join(f'{by.get(f"size {s}", float("nan")):.1f}' for s in SIZES), '-'))
    w = max(len(r[0]) for r in rows)
    print(f'\n{"stage".ljust(w)} | {"measured".ljust(24)} | target')
    print('-' * (w + 40))
    for stage, measured, target in rows:
        print(f'{stage.ljust(w)} | {measured.ljust(24)} | {target}')


if __name__ == '__main__':
    main()
