#!/usr/bin/env python3
"""Speed figures of the emotion models (printed, never asserted).

    python bench/bench_models.py [--bundle DIR] [--threads 1]

* vision encoder: ms per face at batch 1, onnxruntime, one thread (target <= 2 ms)
* vocal encoder: ms per 1 s window, onnxruntime, one thread (target <= 5 ms), the voiceprint
  member's graph where the bundle has one, and the whole voice decision with its preprocessing
* fusion step: ms per step for one track
* training: seconds per epoch of the vision and vocal stages, measured on a small synthetic
  subset and extrapolated to the full set sizes (FER2013 train 6 labels minus holdout; EmoDB
  6 speakers' windows); one figure per member where the bundle's encoder is an ensemble

Without ``--bundle`` it uses the shipped bundle, or (if none) exports the default architectures
with random weights to a temporary folder (speed does not depend on the weights, but the
fallback's vision graph is float32, not int8).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np

from emotion_runtime.model_bundle import ModelBundle, default_bundle_path


def _ms(fn, n: int, warm: int = 5) -> float:
    for _ in range(warm):
        fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1000


def default_bundle(tmp: pathlib.Path) -> pathlib.Path:
    p = default_bundle_path()
    if (p / 'manifest.json').is_file():
        return p
    from emotion_training.config import VISION_PREPROCESS, VOCAL_PREPROCESS  # noqa: PLC0415 - torch, fallback bundle only
    from emotion_training.export import export_bundle  # noqa: PLC0415 - torch, fallback bundle only
    from emotion_training.labels import DEFAULT_LABELS, VALENCE_AROUSAL  # noqa: PLC0415 - torch, fallback bundle only
    from emotion_training.models.fusion_model import FusionModel  # noqa: PLC0415 - torch, fallback bundle only
    from emotion_training.models.vision_encoder import VisionEnsemble  # noqa: PLC0415 - torch, fallback bundle only
    from emotion_training.models.vocal_encoder import VocalEnsemble  # noqa: PLC0415 - torch, fallback bundle only
    labels = list(DEFAULT_LABELS)
    return export_bundle(tmp / 'b', labels,
                         VisionEnsemble(SHIPPED_VISION_MEMBERS, flip_tta=True),
                         dict(VISION_PREPROCESS),
                         VocalEnsemble(SHIPPED_VOCAL_MEMBERS), dict(VOCAL_PREPROCESS),
                         FusionModel(256, 384, 6, [VALENCE_AROUSAL[k] for k in labels]))


#: the shipped (0.6.0) ensembles' members, for the random-weight fallback bundle (float32: the
#: shipped vision graph is int8, which needs real faces to calibrate, and is ~3x faster)
SHIPPED_VISION_MEMBERS = [
    dict(num_classes=6, layers=[2, 2, 2, 2], widths=[32, 64, 128, 256], stem_stride=2),
    dict(num_classes=6, layers=[2, 2, 2, 2], widths=[16, 32, 64, 128], stem_stride=1)]
SHIPPED_VOCAL_MEMBERS = [dict(num_classes=6, widths=[12, 24, 48, 96])] * 3


def ensemble_members(module) -> list:
    """The encoders inside ``module`` (itself where it is not an ensemble)."""
    from emotion_training.models.ensemble import EncoderEnsemble  # noqa: PLC0415 - torch, training figures only
    return list(module.members) if isinstance(module, EncoderEnsemble) else [module]


def train_epoch_seconds(stage: str, n_full: int, threads: int, m) -> tuple[float, int]:
    """Seconds per epoch of the encoder ``m`` (one ensemble member), extrapolated from a few
    batches on synthetic data."""
    import torch  # noqa: PLC0415 - torch, training figures only
    import torch.nn.functional as F  # noqa: PLC0415 - torch, training figures only

    from emotion_training.augment import augment_faces, augment_logmel  # noqa: PLC0415 - torch, training figures only
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    m.train()
    if stage == 'vision':
        x, bs, aug = torch.randn(128, 1, 48, 48), 128, augment_faces
    else:
        x, bs, aug = torch.randn(64, 1, 64, 101), 64, augment_logmel
    y = torch.randint(0, 6, (bs,))
    opt = torch.optim.AdamW(m.parameters(), 1e-3)

    def step():
        _, lg = m(aug(x, g))
        loss = F.cross_entropy(lg, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    ms = _ms(step, 3, warm=1)
    return ms / 1000 * (n_full / bs), n_full


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--bundle', default=None)
    p.add_argument('--threads', type=int, default=1, help='onnxruntime threads (robot: 1)')
    p.add_argument('--train-threads', type=int, default=2)
    p.add_argument('--skip-training', action='store_true')
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(args.bundle) if args.bundle else default_bundle(pathlib.Path(tmp))
        b = ModelBundle.load(path, threads=args.threads)
        print(f'bundle: {b.path}', file=sys.stderr)
        rng = np.random.default_rng(0)
        face = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
        x = np.stack([np.zeros((1, b.face_input_size, b.face_input_size), np.float32)])
        vs = b.session('vision')
        rows = []
        rows.append(('vision encoder', 'ms/face, batch 1, ORT 1 thread', '<= 2',
                     _ms(lambda: vs.run(None, {'image': x}), 200)))
        rows.append(('vision incl. preprocess', 'ms/face (BGR 96x96 crop)', '-',
                     _ms(lambda: b.encode_faces([face]), 200)))
        w = (0.1 * rng.standard_normal(b.window_samples)).astype(np.float32)
        lm = b.voice_input(w, b.sample_rate)[None]
        asess = b.session('vocal')
        rows.append(('vocal encoder', f'ms/{b.window_seconds:g} s window, ORT 1 thread', '<= 5',
                     _ms(lambda: asess.run(None, {'logmel': lm}), 200)))
        if b.voiceprint is not None:
            mel = b.voiceprint.mel(w)[None]
            vsess = b.voiceprint.session()
            rows.append(('voiceprint member', f'ms/{b.window_seconds:g} s window, ORT 1 thread',
                         '-', _ms(lambda: vsess.run(None, {'mel': mel}), 100)))
        rows.append(('vocal incl. log-mel', f'ms/{b.window_seconds:g} s window'
                     + (', both members' if b.voiceprint is not None else ''), '-',
                     _ms(lambda: b.encode_voice_window(w, b.sample_rate), 100)))
        h, c = b.initial_state(1)
        ve = np.zeros((1, b.vision_embedding_size), np.float32)
        ae = np.zeros((1, b.voice_embedding_size), np.float32)
        rows.append(('fusion step', 'ms/step, 1 track', '-',
                     _ms(lambda: b.fusion_step(ve, [1], ae, [1], h, c), 500)))
    if not args.skip_training:
        from emotion_training.models.vision_encoder import build_vision_encoder  # noqa: PLC0415 - torch, training figures only
        from emotion_training.models.vocal_encoder import build_vocal_encoder  # noqa: PLC0415 - torch, training figures only
        for stage, build, n_full, unit in (('vision', build_vision_encoder, 22983, 'faces'),
                                           ('vocal', build_vocal_encoder, 1450, 'windows')):
            members = ensemble_members(build(b.manifest[stage]['architecture']))
            for i, member in enumerate(members, 1):
                s, n = train_epoch_seconds(stage, n_full, args.train_threads, member)
                name = f'train {stage}' + (f' member {i}' if len(members) > 1 else '')
                rows.append((name, f's/epoch ({n} {unit}, {args.train_threads} threads)', '-', s))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f'{"stage":<{w0}}  {"figure":<{w1}}  {"target":>7}  {"measured":>9}')
    for st, fig, tgt, val in rows:
        print(f'{st:<{w0}}  {fig:<{w1}}  {tgt:>7}  {val:>9.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
