#!/usr/bin/env python3
"""Where the stream benchmark's vision accuracy goes: UAR of the same shown faces, stage by stage.

`emotion-eval stream` scores vision at about 0.47 UAR against about 0.67-0.68 for the same encoder
on pre-cropped FER2013 validation faces.  This bench rebuilds one or more seeds' stream clips
(``stream_bench.build_stream_clip``, FER2013 validation faces composited into moving 320x240
frames, JPEG q90 as the bag writer stores them) and scores every shown face in every frame
(every ``--stride``-th frame for the per-face stages) against its segment's label:

  a   the original 48x48 FER crop as training fed it (``face_to_input``)
  b0  the face cut from the rendered frame by its true pasted box, before JPEG
  b   the same from the JPEG-decoded frame (what face_node gets)
  c   the MTCNN box (whole-frame detect, face_node's detector settings for the stream) cut with
      ``crop_margin`` m, for several m (no alignment)
  c*  the landmarks fitted to the FER2013 template by scale and shift only (``align_face(...,
      rotate=False)``: FER's framing, the face's own roll kept)
  d   the landmark-aligned crop (``align_face`` turning the face fully upright: align_keep_roll 0)
  e   the node pipeline itself (``build_face_pipeline`` with the stream's face_node parameters:
      windowed search, tracker, min_hits): the encoder head per track per frame, the same
      smoothed per track, and fusion_node's vision-only output (``eval_bag.OfflinePipeline``'s
      vision_only runner: the bundle's fusion LSTM on the vision embeddings)

plus detection coverage (shown faces found by the whole-frame detector, tracked by the pipeline).
UAR is the mean recall over the labels present (``metrics.summarise``), n the scored face-frames.

    source scripts/env.sh; python bench/bench_stream_vision.py [--seeds 0] [--segments 30]
        [--stride 3] [--set crop_mode=fer_box ...]
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
sys.path.insert(0, str(HERE))

from table import print_table  # noqa: E402

from emotion_perception.face_alignment import align_face  # noqa: E402
from emotion_perception.vision_pipeline import build_detector, crop_face, thumbnail  # noqa: E402
from emotion_runtime.model_bundle import ModelBundle  # noqa: E402
from emotion_training import media, stream_bench  # noqa: E402
from emotion_training.datasets.common import read_face  # noqa: E402
from emotion_training.datasets.folders import load_image_folders  # noqa: E402
from emotion_training.eval_bag import (  # noqa: E402
    NS,
    OfflinePipeline,
    Truth,
    load_params,
    score,
)
from emotion_training.metrics import summarise  # noqa: E402

START_NS = stream_bench.START_NS
MARGINS = (0.0, 0.1, 0.2, 0.3)


def stream_face_params(size: tuple[int, int], overrides: dict) -> dict:
    """face_node's parameters as `emotion-eval stream` sets them (package defaults + the
    robot camera's detection geometry), then ``overrides``."""
    _, face_p, _ = load_params([])
    return {**face_p, **stream_bench.camera_geometry(size), **overrides}


def parse_set(items: list) -> dict:
    out = {}
    for item in items:
        k, _, v = item.partition('=')
        for conv in (int, float):
            try:
                v = conv(v)
                break
            except ValueError:
                continue
        out[k] = {'true': True, 'false': False}.get(v, v) if isinstance(v, str) else v
    return out


def matched(dets: list, box: tuple) -> object:
    """The detection whose centre lies in the pasted box and whose side is 0.5-2x the box's
    (bench_detection.found's rule); the nearest centre if several."""
    x, y, w, h = box
    best, dist = None, np.inf
    for d in dets:
        cx, cy, side = d.x + d.w / 2, d.y + d.h / 2, max(d.w, d.h)
        if x <= cx <= x + w and y <= cy <= y + h and 0.5 * h <= side <= 2.0 * h:
            dd = np.hypot(cx - (x + w / 2), cy - (y + h / 2))
            if dd < dist:
                best, dist = d, dd
    return best


class Stages:
    """Per stage: (true label index, predicted index) of every scored face-frame."""

    def __init__(self) -> None:
        self.pairs: dict[str, list] = {}

    def add(self, stage: str, y: int, logits: np.ndarray) -> None:
        self.pairs.setdefault(stage, []).append((y, int(np.argmax(logits))))

    def uar(self, stage: str, labels: list) -> tuple[float, int]:
        p = self.pairs.get(stage, [])
        if not p:
            return float('nan'), 0
        s = summarise([a for a, _ in p], [b for _, b in p], labels)
        return s['uar'], s['n']


def run_seed(seed: int, a: argparse.Namespace, bundle: ModelBundle, face_items: list,
             speech_items: list, stages: Stages, cover: dict, overrides: dict) -> dict:
    labels = list(bundle.labels)
    lab_idx = {lab: i for i, lab in enumerate(labels)}
    clip, segs = stream_bench.build_stream_clip(face_items, speech_items, labels, seed,
                                                a.segments)
    # which face each composite call pastes where: record the boxes of the frame being rendered
    pasted: list = []
    orig_composite = media.composite

    def recording(bg, face, cx, cy, height):
        frame, box = orig_composite(bg, face, cx, cy, height)
        pasted.append(box)
        return frame, box
    media.composite = recording
    face_p = stream_face_params(clip.size, overrides)
    # stages c/d: one upright whole-frame scan per frame (a turned search, turned_search_deg,
    # turns each call by the next angle of its cycle; the pipeline stage e runs it as built)
    detector = build_detector(face_p)
    detector = getattr(detector, 'base', detector)
    pipe = OfflinePipeline(bundle, None, face_p, None)
    pre_cache: dict[int, np.ndarray] = {}
    last_look: dict = {}                           # face slot -> (face index, thumbnail)
    smooth: dict[str, np.ndarray] = {}            # track id -> EMA of the head's probabilities
    frame_label: list = [0]
    process = pipe.faces.process

    def recording_process(image, stamp):
        res = process(image, stamp)
        if res.logits is not None:
            for tr, lg in zip(res.encoded, res.logits):
                p = np.exp(lg - lg.max())
                p /= p.sum()
                prev = smooth.get(tr.id)
                smooth[tr.id] = p if prev is None else (1 - a.ema) * prev + a.ema * p
                stages.add(f'e  pipeline encoder head, EMA {a.ema:g} of probabilities per track',
                           frame_label[0], smooth[tr.id])
        return res
    pipe.faces.process = recording_process
    try:
        k = 0
        for f, (t, frame) in enumerate(clip.frames()):
            while k < len(segs) - 1 and t >= segs[k].end:
                k += 1
            seg = segs[k]
            boxes = list(pasted)
            pasted.clear()
            shown = [] if seg.face_gap is not None and seg.face_gap[0] <= t < seg.face_gap[1] \
                else list(zip(seg.faces, boxes))
            y = lab_idx[seg.label]
            frame_label[0] = y
            jpg = cv2.imdecode(np.frombuffer(cv2.imencode(
                '.jpg', frame, [int(cv2.IMWRITE_JPEG_QUALITY), 90])[1], np.uint8),
                cv2.IMREAD_COLOR)
            stamp = START_NS + int(round(t * NS))
            res_tracks = pipe.on_image(stamp, 'camera', jpg)
            cover['shown'] += len(shown)
            cover['tracked'] += sum(matched_track(res_tracks, b) for _, b in shown)
            if f % a.stride:
                continue
            dets = detector.detect(jpg)
            crops: list = []
            names: list = []
            for idx, box in shown:
                if idx not in pre_cache:
                    pre_cache[idx] = read_face(face_items[idx].path)
                crops.append(pre_cache[idx])
                names.append('a  pre-cropped 48x48 FER (as trained)')
                x, yy, w, h = box
                crops.append(frame[yy:yy + h, x:x + w])
                names.append('b0 true box, rendered frame before JPEG')
                crops.append(jpg[yy:yy + h, x:x + w])
                names.append('b  true box, JPEG frame')
                d = matched(dets, box)
                cover['sampled'] += 1
                if d is None:
                    continue
                cover['found'] += 1
                for m in MARGINS:
                    crops.append(crop_face(jpg, d.box, m))
                    names.append(f'c  detector box, margin {m:.1f}')
                if d.landmarks is not None:
                    crops.append(align_face(jpg, d.landmarks, keep_roll_deg=180.0))
                    names.append('c* detector + landmarks, scale/shift only (no rotation)')
                    crops.append(align_face(jpg, d.landmarks))
                    names.append('d  detector + landmark alignment, fully upright')
                    for roll in a.keep_roll:
                        crops.append(align_face(jpg, d.landmarks, keep_roll_deg=roll))
                        names.append(f'd  detector + alignment keeping {roll:g} deg of roll')
                    slot = (len(shown), shown.index((idx, box)))
                    look = thumbnail(crops[-1])
                    if slot in last_look:
                        prev_idx, prev_look = last_look[slot]
                        cover['ncc_same' if prev_idx == idx else 'ncc_other'].append(
                            float(prev_look @ look))
                    last_look[slot] = (idx, look)
            if crops:
                _, logits = bundle.encode_faces(crops)
                for name, lg in zip(names, logits):
                    stages.add(name, y, lg)
        pipe.finish(stamp)
    finally:
        media.composite = orig_composite
    truth = Truth([(START_NS + int(round(s * NS)), clip.label_at(s))
                   for s in np.arange(0.0, clip.duration, 0.2) if clip.label_at(s)],
                  max_gap_ns=int(0.6 * NS))
    out = {}
    for name, key in (('e  pipeline encoder head, per frame', None),
                      ('e  fusion vision-only output (what the stream scores)', 'vision_only')):
        preds = pipe.preds[key] if key else None
        if preds is None:
            from emotion_training.eval_bag import Prediction  # noqa: PLC0415
            preds = [Prediction(s, '', lab, 1.0, 0) for s, lab in pipe.vision_head]
        r = score(preds, truth, labels)
        stages.pairs.setdefault(name, []).extend(
            (lab_idx[p.truth], lab_idx[p.expression]) for p in preds
            if p.truth in lab_idx and p.expression in lab_idx)
        out[name] = r['uar']
    return out


def matched_track(tracks: list, box: tuple) -> bool:
    x, y, w, h = box
    return any(x <= t.x + t.w / 2 <= x + w and y <= t.y + t.h / 2 <= y + h for t in tracks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0])
    ap.add_argument('--segments', type=int, default=30)
    ap.add_argument('--stride', type=int, default=3,
                    help='per-face stages a-d on every N-th frame (the pipeline sees all)')
    ap.add_argument('--set', nargs='*', default=[], metavar='PARAM=VALUE',
                    help='face_node parameter overrides for the pipeline stage (e)')
    ap.add_argument('--keep-roll', type=float, nargs='*', default=[10.0, 20.0],
                    help='align_keep_roll values measured as stages d')
    ap.add_argument('--ema', type=float, default=0.3,
                    help='weight of the newest frame in the per-track smoothing stage')
    ap.add_argument('--bundle', default=None)
    a = ap.parse_args()
    cv2.setNumThreads(1)
    bundle = ModelBundle.load(a.bundle)
    labels = list(bundle.labels)
    data = stream_bench.default_data()
    face_items = load_image_folders(data / 'fer2013' / 'validation', labels)
    speech_items = stream_bench.load_speech_spec('ravdess', data, labels)
    overrides = parse_set(a.set)
    stages = Stages()
    cover = {'shown': 0, 'tracked': 0, 'sampled': 0, 'found': 0, 'ncc_same': [],
             'ncc_other': []}
    for seed in a.seeds:
        run_seed(seed, a, bundle, face_items, speech_items, stages, cover, overrides)
    print(f'seeds {a.seeds}, {a.segments} segments each; per-face stages on every {a.stride}. '
          f'frame; face_node overrides {overrides or "none"}; machine load '
          f'{os.getloadavg()[0]:.2f}')
    rows = []
    for name in sorted(stages.pairs, key=lambda s: (s[:3], s)):
        u, n = stages.uar(name, labels)
        rows.append((name, 'UAR (n face-frames)', '-', f'{u:.3f} ({n})'))
    rows.append(('detection', 'shown faces found, whole-frame MTCNN',
                 '-', f'{cover["found"] / max(1, cover["sampled"]):.1%} of {cover["sampled"]}'))
    rows.append(('detection', 'shown faces tracked by the pipeline', '-',
                 f'{cover["tracked"] / max(1, cover["shown"]):.1%} of {cover["shown"]}'))
    for key, what in (('ncc_same', 'same face'), ('ncc_other', 'another face')):
        v = np.asarray(cover[key])
        if v.size:
            rows.append(('identity', f'thumbnail correlation with the {what} {a.stride} frames '
                         'before, p1/p5/p50', '-', f'{np.percentile(v, 1):.2f} / '
                         f'{np.percentile(v, 5):.2f} / {np.median(v):.2f} (n {v.size}, max '
                         f'{v.max():.2f})'))
    print_table(rows)


if __name__ == '__main__':
    main()
