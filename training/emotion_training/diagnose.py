"""``emotion-diagnose``: feature-collapse check of a bundle's encoders and fusion input.

Runs each encoder of a bundle (default: the shipped one) on a batch of real inputs -- faces from
``--faces`` (class folders), speech from ``--speech`` -- or, without data, on synthetic inputs
(random-texture faces, noise bursts), and reports the across-batch variance of every output and
of the fusion input.  A collapsed encoder maps everything to (nearly) the same vector; the command
then warns loudly on stderr and, with ``--stop-on-collapse``, exits with status 3.
Prints one JSON line on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

import cv2
import numpy as np

from emotion_runtime.model_bundle import BundleError, ModelBundle
from emotion_runtime.voice_windows import utterance_windows

from .audio_io import read_mono
from .datasets import load_image_folders, read_face
from .diagnostics import DEFAULT_THRESHOLD, check_collapse, format_stats, fusion_input
from .evaluate import speech_samples

EXIT_COLLAPSE = 3


def synthetic_faces(n: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Smooth random grey textures (different per sample) when no face data is given."""
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (6, 6)).astype(np.uint8)
        out.append(cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC))
    return out


def synthetic_windows(n: int, samples: int, rate: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Tones + noise of random pitch/level."""
    t = np.arange(samples) / rate
    return [(rng.uniform(0.05, 0.5) * np.sin(2 * np.pi * rng.uniform(80, 400) * t) +
             rng.normal(0, rng.uniform(0.001, 0.05), samples)).astype(np.float32) for _ in range(n)]


def diagnose(bundle: ModelBundle, faces: Optional[list[np.ndarray]] = None,
             windows: Optional[list[np.ndarray]] = None, threshold: float = DEFAULT_THRESHOLD,
             stop: bool = False, n: int = 64, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    faces = faces if faces else synthetic_faces(n, bundle.face_input_size, rng)
    windows = windows if windows else synthetic_windows(n, bundle.window_samples,
                                                        bundle.sample_rate, rng)
    ve, vl = bundle.encode_faces(faces)
    ae, al = bundle.encode_voice_windows(windows, bundle.sample_rate)
    m = min(len(ve), len(ae))
    fin = fusion_input(ve[:m], np.ones(m), ae[:m], np.ones(m))
    stats = []
    collapsed = []
    for name, f in (('vision.embedding', ve), ('vocal.embedding', ae), ('fusion.input', fin),
                    ('vision.logits', vl), ('vocal.logits', al)):
        st = check_collapse(name, f, threshold, stop=False)
        stats.append(st)
        print(format_stats(st), file=sys.stderr)
        if st['collapsed'] and not name.endswith('logits'):
            collapsed.append(name)
    return {'bundle': str(bundle.path), 'threshold': threshold, 'collapsed': collapsed,
            'stats': {s['name']: {k: s[k] for k in ('rel_var', 'mean_var', 'dead_fraction',
                                                    'collapsed', 'n')} for s in stats}}


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog='emotion-diagnose', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--bundle', default=None, help='bundle directory (default: shipped)')
    p.add_argument('--faces', default=None, help='class-folder faces to use as the batch')
    p.add_argument('--speech', default=None, help='EmoDB/class-folder WAVs to use as the batch')
    p.add_argument('-n', type=int, default=64, help='batch size')
    p.add_argument('--threshold', type=float, default=DEFAULT_THRESHOLD,
                   help='alarm when relative across-batch variance falls below this')
    p.add_argument('--stop-on-collapse', action='store_true', help=f'exit {EXIT_COLLAPSE} on alarm')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    try:
        bundle = ModelBundle.load(args.bundle)
    except BundleError as exc:
        raise SystemExit(f'emotion-diagnose: {exc}') from exc
    rng = np.random.default_rng(args.seed)
    faces = windows = None
    if args.faces:
        s = load_image_folders(args.faces, bundle.labels)
        pick = rng.choice(len(s), min(args.n, len(s)), replace=False)
        faces = [read_face(s[i].path) for i in pick]
    if args.speech:
        s = speech_samples(args.speech, bundle.labels)
        windows = []
        for i in rng.choice(len(s), min(args.n, len(s)), replace=False):
            a, r = read_mono(s[i].path)
            windows += utterance_windows(a, r, bundle.sample_rate, bundle.window_seconds,
                                         bundle.hop_seconds)[:1]
    result = diagnose(bundle, faces, windows, args.threshold, n=args.n, seed=args.seed)
    print(json.dumps(result))
    if result['collapsed']:
        print(f'!!! emotion-diagnose: COLLAPSE in {result["collapsed"]}', file=sys.stderr)
        if args.stop_on_collapse:
            return EXIT_COLLAPSE
    return 0


if __name__ == '__main__':
    sys.exit(main())
