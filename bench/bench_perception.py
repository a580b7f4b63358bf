#!/usr/bin/env python3
"""Perception budget on this machine: vision path ms/frame, vocal path CPU %, detector recall.

Prints figures (never asserts): at 640x480, 30 fps, one face, the vision path (detect, track,
crop, encode) per frame p50/p95 on one core (target p95 <= 25 ms), the vocal path's CPU use as %
of one core in real time (target <= 10 %), and Haar detection recall / false positives on the
real photos of the tests.  The vision path runs with face_node's default detector (MTCNN,
``--detector``) and with the other one (MTCNN, or Haar when MTCNN is chosen).  ``--mtcnn`` also
measures facenet-pytorch's own MTCNN when it is importable (it is not a dependency).

Uses the shipped bundle (src/emotion_runtime/models/default, or $EMOTION_MODEL_BUNDLE) when
present, else a tiny random-weight one (emotion_test_tools.tiny_bundle; said in the output).
Imports no training module.  Run:  source scripts/env.sh; python bench/bench_perception.py
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time
from typing import Optional

# One core: set before numpy/onnxruntime/OpenCV start their thread pools.
for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(var, '1')

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / 'src' / 'emotion_perception'
sys.path.insert(0, str(PKG))
sys.path.insert(0, str(PKG / 'test'))

from perception_media import detection_photos, moving_face_frames, speech_wav  # noqa: E402

from emotion_perception.face_detection import HaarFaceDetector  # noqa: E402
from emotion_perception.node_params import FACE_PARAMS  # noqa: E402
from emotion_perception.vision_pipeline import build_face_pipeline  # noqa: E402
from emotion_perception.voice_pipeline import VoicePipeline  # noqa: E402
from emotion_runtime.model_bundle import ModelBundle, default_bundle_path  # noqa: E402
from emotion_runtime.params import defaults  # noqa: E402


def load_bundle() -> tuple[ModelBundle, str]:
    shipped = default_bundle_path()
    if (shipped / 'manifest.json').is_file():
        return ModelBundle.load(shipped, threads=1), f'shipped bundle {shipped}'
    from emotion_test_tools.tiny_bundle import make_tiny_bundle  # noqa: PLC0415 - fallback only
    path = make_tiny_bundle(pathlib.Path(tempfile.mkdtemp()) / 'bundle')
    return ModelBundle.load(path, threads=1), 'tiny_bundle (random tiny weights)'


def bench_vision(bundle: ModelBundle, frames: int, full_scan_every: int,
                 background: bool, detector: str = 'mtcnn',
                 encode_rate: Optional[float] = None) -> dict:
    """The face_node's pipeline (its parameter defaults but these, ``encode_rate`` its
    ``max_encode_rate_hz``, None = the default) on the moving-photo clip, frames back to back,
    stamped at 30 fps.  A background scan runs on another core where there is one; the
    process's CPU time per frame counts it too."""
    params = defaults(FACE_PARAMS)
    if encode_rate is not None:
        params['max_encode_rate_hz'] = encode_rate
    pipe = build_face_pipeline(dict(params, full_scan_every=full_scan_every,
                                    background_scan=background, face_detector=detector), bundle)
    there = moving_face_frames(60)
    clip = there + there[::-1]                     # back and forth: one person, one id
    pipe.process(clip[0], 0.0)                      # warm-up (session creation)
    totals, stages, found = [], {'detect': [], 'track': [], 'encode': []}, 0
    cpu0 = time.process_time()
    for i in range(frames):
        r = pipe.process(clip[i % len(clip)], (i + 1) / 30.0)
        totals.append(r.timings['total'])
        for k in stages:
            stages[k].append(r.timings.get(k, 0.0))
        found += len(r.tracks) == 1
    pipe.close()                                    # waits for a running background scan
    cpu_ms = (time.process_time() - cpu0) * 1e3 / frames
    ms = np.asarray(totals) * 1e3
    return {'p50': float(np.percentile(ms, 50)), 'p95': float(np.percentile(ms, 95)),
            'mean': float(ms.mean()), 'cpu': cpu_ms, 'full': pipe.schedule.full_scan_fraction,
            'stages': {k: float(np.percentile(np.asarray(v) * 1e3, 50)) for k, v in stages.items()},
            'encode_mean': float(np.mean(stages['encode'])) * 1e3,
            'encoded': frames - pipe.gate.held_back,
            'hit_rate': found / frames, 'ids': sorted(t.id for t in pipe.tracker.confirmed())}


def bench_voice(bundle: ModelBundle, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / 'speech.wav'
        speech_wav(path, rate=16000)
        import soundfile as sf  # noqa: PLC0415 - audio I/O only for this part
        one, rate = sf.read(path, dtype='float32')
    audio = np.tile(one, int(np.ceil(seconds * rate / one.size)))[:int(seconds * rate)]
    pipe = VoicePipeline(bundle, bundle.window_seconds, bundle.hop_seconds)
    pipe.push(0.0, rate, np.zeros(int(bundle.window_seconds * rate) + 1, np.float32))  # warm-up
    pipe = VoicePipeline(bundle, bundle.window_seconds, bundle.hop_seconds)
    chunk = int(0.1 * rate)
    cpu0, wall0, windows = time.process_time(), time.perf_counter(), 0
    for i in range(0, audio.size, chunk):
        windows += len(pipe.push(100.0 + i / rate, rate, audio[i:i + chunk])[1])
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {'cpu_pct': 100.0 * cpu / seconds, 'wall_pct': 100.0 * wall / seconds,
            'windows': windows, 'seconds': seconds}


def recall(detect, photos_with: dict, photos_without: dict) -> dict:
    hits = sum(min(n, len(detect(img))) for img, n in photos_with.values())
    total = sum(n for _, n in photos_with.values())
    fp = sum(len(detect(img)) for img in photos_without.values())
    named = {k: len(detect(v[0])) for k, v in photos_with.items() if not k.startswith('lfw')}
    lfw = [k for k in photos_with if k.startswith('lfw')]
    lfw_hits = sum(min(1, len(detect(photos_with[k][0]))) for k in lfw)
    return {'recall': hits / total, 'hits': hits, 'total': total, 'false_pos': fp,
            'negatives': len(photos_without), 'named': named, 'lfw': (lfw_hits, len(lfw))}


def frame_ms(detectors: list, frames: list, rounds: int = 2) -> list[tuple[float, float]]:
    """(p50, p95) ms per frame of each detector, calls interleaved so that both see the same
    machine load (the bench machine is shared)."""
    for d in detectors:
        d(frames[0])
    ts: list = [[] for _ in detectors]
    for _ in range(rounds):
        for f in frames:
            for i, d in enumerate(detectors):
                t = time.perf_counter()
                d(f)
                ts[i].append((time.perf_counter() - t) * 1e3)
    return [(float(np.percentile(t, 50)), float(np.percentile(t, 95))) for t in ts]


def mtcnn_detector():
    try:
        import torch  # noqa: PLC0415 - optional (--mtcnn)
        try:
            import torchvision  # noqa: F401, PLC0415 - optional (--mtcnn)
        except ImportError:
            from emotion_training.mtcnn_onnx import torchvision_stub  # noqa: PLC0415 - torch, --mtcnn only
            torchvision_stub()
        from facenet_pytorch import MTCNN  # noqa: PLC0415 - optional (--mtcnn)
    except ImportError as exc:
        print(f'MTCNN skipped: {exc}')
        return None
    torch.set_num_threads(1)
    mtcnn = MTCNN(keep_all=True, min_face_size=40, device='cpu')

    def detect(bgr: np.ndarray) -> list:
        boxes, probs = mtcnn.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        return [] if boxes is None else [b for b, p in zip(boxes, probs) if p >= 0.9]
    return detect


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--frames', type=int, default=300, help='vision frames to time')
    ap.add_argument('--audio-seconds', type=float, default=30.0, help='audio to process')
    ap.add_argument('--mtcnn', action='store_true', help='also measure facenet-pytorch MTCNN')
    ap.add_argument('--detector', choices=('mtcnn', 'yunet', 'mtcnn_yunet', 'haar'),
                    default='mtcnn',
                    help="face_node's face_detector for the main figures (default mtcnn, its "
                         'default); the other one is measured too (mtcnn, or haar when this is '
                         'mtcnn)')
    ap.add_argument('--full-scan-every', type=int, default=5,
                    help="face_node's full_scan_every for the main figures (default 5, its default)")
    ap.add_argument('--max-encode-rate-hz', type=float, default=None,
                    help="face_node's max_encode_rate_hz for the main figures (default: its "
                         'default, 0 = every frame); 15 Hz, or every frame when this is set, '
                         'is measured too')
    args = ap.parse_args()
    cv2.setNumThreads(1)
    bundle, which = load_bundle()
    print(f'bundle: {which}; labels {bundle.labels}')
    print(f'machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} '
          '(other work on the machine inflates the timings)')
    vis = bench_vision(bundle, args.frames, args.full_scan_every, True, args.detector,
                       args.max_encode_rate_hz)
    rate = (args.max_encode_rate_hz if args.max_encode_rate_hz is not None else
            defaults(FACE_PARAMS)['max_encode_rate_hz'])
    other_rate = 0.0 if rate > 0 else 15.0
    other_enc = bench_vision(bundle, args.frames, args.full_scan_every, True, args.detector,
                             other_rate)
    in_line = bench_vision(bundle, args.frames, args.full_scan_every, False, args.detector)
    whole = bench_vision(bundle, args.frames, 1, False, args.detector)
    other = 'haar' if args.detector == 'mtcnn' else 'mtcnn'
    vis_other = bench_vision(bundle, args.frames, args.full_scan_every, True, other)
    whole_other = bench_vision(bundle, args.frames, 1, False, other)
    voc = bench_voice(bundle, args.audio_seconds)
    photos_with, photos_without = detection_photos()
    haar = HaarFaceDetector()
    rec = recall(haar.detect, photos_with, photos_without)
    frames = moving_face_frames(20)
    det = mtcnn_detector() if args.mtcnn else None
    timed = frame_ms([haar.detect] + ([det] if det else []), frames)
    haar_ms = timed[0]
    rows = [
        (f'vision path p50 (detect+track+crop+encode), {args.detector}, whole-frame scan every '
         f'{args.full_scan_every} in the background', f'{vis["p50"]:.1f} ms/frame', '-'),
        ('vision path p95', f'{vis["p95"]:.1f} ms/frame', '<= 25 ms (30 fps)'),
        ('  mean / CPU per frame / whole-frame scans', f'{vis["mean"]:.1f} ms / '
         f'{vis["cpu"]:.1f} ms / {vis["full"]:.0%} of frames', '-'),
        ('  detect / track / encode p50', ' / '.join(f'{vis["stages"][k]:.2f}' for k in
                                                     ('detect', 'track', 'encode')) + ' ms', '-'),
        ('  keeps up at 30 fps (p95 <= 33.3 ms)', 'yes' if vis['p95'] <= 33.3 else 'no', 'yes'),
        ('  face found / ids', f'{vis["hit_rate"]:.0%} of frames / {vis["ids"]}', '100% / [f1]'),
        (f'  faces encoded (max_encode_rate_hz {rate:g}) / encode mean',
         f'{vis["encoded"]} of {args.frames} / {vis["encode_mean"]:.2f} ms', '-'),
        (f'vision path, max_encode_rate_hz {other_rate:g} p50/p95/mean/CPU',
         f'{other_enc["p50"]:.1f} / {other_enc["p95"]:.1f} / {other_enc["mean"]:.1f} / '
         f'{other_enc["cpu"]:.1f} ms', '-'),
        ('  faces encoded', f'{other_enc["encoded"]} of {args.frames}', '-'),
        ('vision path, whole-frame scans in line p50/p95/mean/CPU',
         f'{in_line["p50"]:.1f} / {in_line["p95"]:.1f} / {in_line["mean"]:.1f} / '
         f'{in_line["cpu"]:.1f} ms', '-'),
        ('  face found', f'{in_line["hit_rate"]:.0%} of frames', '-'),
        ('vision path, whole frame every frame p50/p95/mean/CPU',
         f'{whole["p50"]:.1f} / {whole["p95"]:.1f} / {whole["mean"]:.1f} / '
         f'{whole["cpu"]:.1f} ms', '-'),
        ('  face found', f'{whole["hit_rate"]:.0%} of frames', '-'),
        (f'vision path, {other}, whole-frame scan every {args.full_scan_every} in the '
         'background p50/p95/CPU', f'{vis_other["p50"]:.1f} / {vis_other["p95"]:.1f} / '
         f'{vis_other["cpu"]:.1f} ms', '<= 25 ms p95'),
        ('  face found', f'{vis_other["hit_rate"]:.0%} of frames', '-'),
        (f'vision path, {other}, whole frame every frame p50/p95/CPU',
         f'{whole_other["p50"]:.1f} / {whole_other["p95"]:.1f} / {whole_other["cpu"]:.1f} ms', '-'),
        ('  face found', f'{whole_other["hit_rate"]:.0%} of frames', '-'),
        ('vocal path CPU (1 core, real time)', f'{voc["cpu_pct"]:.1f} %', '<= 10 %'),
        ('  windows in audio', f'{voc["windows"]} in {voc["seconds"]:.0f} s', '-'),
        ('Haar recall, real photos', f'{rec["recall"]:.1%} ({rec["hits"]}/{rec["total"]})', '-'),
        ('  astronaut / camera / LFW faces', f'{rec["named"]["astronaut"]} / '
         f'{rec["named"]["camera"]} / {rec["lfw"][0]}/{rec["lfw"][1]}', '1 / 1 / 100'),
        ('Haar false positives', f'{rec["false_pos"]} in {rec["negatives"]} face-free images', '0'),
        ('Haar ms per 640x480 frame p50/p95', f'{haar_ms[0]:.1f} / {haar_ms[1]:.1f}', '-'),
    ]
    if det is not None:
        if True:
            mrec = recall(det, photos_with, photos_without)
            mms = timed[1]
            rows += [('MTCNN recall, real photos', f'{mrec["recall"]:.1%} ({mrec["hits"]}/'
                      f'{mrec["total"]})', '-'),
                     ('  astronaut / camera / LFW faces', f'{mrec["named"]["astronaut"]} / '
                      f'{mrec["named"]["camera"]} / {mrec["lfw"][0]}/{mrec["lfw"][1]}', '-'),
                     ('MTCNN false positives', f'{mrec["false_pos"]} in {mrec["negatives"]}', '0'),
                     ('MTCNN ms per 640x480 frame p50/p95', f'{mms[0]:.1f} / {mms[1]:.1f}', '-')]
    w = max(len(r[0]) for r in rows)
    print(f'\n{"stage".ljust(w)} | {"measured".ljust(30)} | target')
    print('-' * (w + 50))
    for stage, measured, target in rows:
        print(f'{stage.ljust(w)} | {measured.ljust(30)} | {target}')


if __name__ == '__main__':
    main()
