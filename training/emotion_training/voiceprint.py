"""``emotion-train voiceprint``: add a voiceprint member to a bundle's voice decision.

A pretrained speaker encoder (Resemblyzer 0.1.4's GE2E LSTM, ``pretrained.pt`` in its PyPI wheel,
Apache-2.0) is exported to ONNX; its features of every training window, calibrated per speaker
as the runtime calibrates them (``emotion_runtime.voiceprint``), train a linear head
(multinomial logistic regression, classes balanced); the new bundle's voice decision mixes that
head's log-probabilities into the vocal graph's with ``--weight``.  The vocal embedding, and so
the fusion head, are unchanged.

    emotion-train voiceprint --data DATA --bundle B --weights resemblyzer/pretrained.pt \\
        --speech emodb,ravdess --train-speakers ... --out DIR [--weight 0.25] [--C 0.03]

Windows and features come from the runtime's own code (``ModelBundle.voice_features`` after
``utterance_windows``), so the head sees exactly what vocal_node computes.  torch is needed
for the export only, scikit-learn for the head; neither at run time.
"""
from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import shutil
import sys
import warnings
from typing import Optional, Sequence

import numpy as np
from tqdm import tqdm

from emotion_runtime.model_bundle import MANIFEST, ModelBundle, sha256_of
from emotion_runtime.speaker_calibration import SpeakerCalibration, speaker_section
from emotion_runtime.voice_windows import utterance_windows
from emotion_runtime.voiceprint import Voiceprint

from .audio_io import AudioReadError
from .datasets.common import Sample
from .voice_data import add_noise_arguments, read_sample, with_noisy_copies

VOICEPRINT_FILE = 'voiceprint.onnx'
#: Resemblyzer's mel spectrogram (hparams.py: 25 ms / 10 ms at 16 kHz, 40 bands) and level
MEL = {'n_fft': 400, 'win_length': 400, 'hop_length': 160, 'n_mels': 40, 'fmin': 0.0,
       'fmax': 8000.0}
GAIN_DBFS = -30.0
#: the prior's weight in windows: a new speaker's own statistics count half after 10 windows
PRIOR_WINDOWS = 10.0
_NOTE = '; the published voice decision mixes in '
SOURCE = {
    'model': 'Resemblyzer 0.1.4 voice encoder (GE2E, 3-layer LSTM 256 + linear 256)',
    'wheel': 'https://pypi.org/project/Resemblyzer/0.1.4/ '
             'Resemblyzer-0.1.4-py3-none-any.whl sha256 '
             '8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f',
    'licence': 'Apache-2.0 (https://github.com/resemble-ai/Resemblyzer)',
    'features': 'concatenation of the linear layer before its ReLU at the last frame (256) and '
                'the last LSTM layer\'s output averaged over frames (256)',
}


def _modules(weights: pathlib.Path):
    import torch  # noqa: PLC0415 - training only
    state = torch.load(str(weights), map_location='cpu')
    state = state.get('model_state', state)
    lstm = torch.nn.LSTM(MEL['n_mels'], 256, 3, batch_first=True)
    linear = torch.nn.Linear(256, 256)
    try:
        lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith('lstm.')})
        linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith('linear.')})
    except RuntimeError as exc:
        raise SystemExit(f'{weights}: not Resemblyzer voice encoder weights ({exc})') from exc

    class Features(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.linear = lstm, linear

        def forward(self, mel):
            out, (h, _) = self.lstm(mel)
            return torch.cat([self.linear(h[-1]), out.mean(dim=1)], dim=1)

    return Features().eval()


def export_voiceprint(weights: pathlib.Path, path: pathlib.Path) -> float:
    """Resemblyzer weights -> ONNX (``mel`` [N, T, 40] -> ``features`` [N, 512]); returns the
    largest difference from torch on random mel power (raises above 1e-4)."""
    import onnxruntime as ort  # noqa: PLC0415
    import torch  # noqa: PLC0415
    model = _modules(weights)
    x = torch.rand(2, 101, MEL['n_mels'])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(model, (x,), str(path), input_names=['mel'], output_names=['features'],
                          dynamic_axes={'mel': {0: 'n', 1: 't'}, 'features': {0: 'n'}},
                          opset_version=17, dynamo=False, do_constant_folding=True)
    feed = np.random.default_rng(0).random((3, 101, MEL['n_mels'])).astype(np.float32)
    got = ort.InferenceSession(str(path), providers=['CPUExecutionProvider']).run(
        ['features'], {'mel': feed})[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(feed)).numpy()
    diff = float(np.abs(ref - got).max())
    if diff > 1e-4:
        raise RuntimeError(f'{path}: onnxruntime differs from torch by {diff:.3g}')
    return diff


def window_features(bundle: ModelBundle, samples: Sequence[Sample], desc: str = 'voiceprint'
                    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(voiceprint features [W, F], file index per window [W], files kept) with the vocal node's
    windowing (active windows of each file).  A sample whose ``extra['room_noise']`` is (kind,
    dBFS, seed) is read with that room noise added (``voice_data.noisy_copies``)."""
    feats, owner, kept = [], [], []
    for i, s in enumerate(tqdm(samples, desc=desc, file=sys.stderr)):
        try:
            audio, rate = read_sample(s)
        except AudioReadError as exc:
            print(f'skipping: {exc}', file=sys.stderr)
            continue
        wins = utterance_windows(audio, rate, bundle.sample_rate, bundle.window_seconds,
                                 bundle.hop_seconds)
        if not wins:
            continue
        _, vp = bundle.voice_features(wins, bundle.sample_rate)
        feats.append(vp)
        owner += [len(kept)] * len(vp)
        kept.append(i)
    return np.concatenate(feats), np.asarray(owner), kept


def calibrated(features: np.ndarray, owner: np.ndarray, speakers: np.ndarray, norm: dict,
               mode: str) -> np.ndarray:
    """Window features [W, F] calibrated per speaker: 'offline' from all of the speaker's
    windows, 'online' as vocal_node does (``SpeakerCalibration`` with the manifest prior, each
    file's windows learnt before they are read, files in the order given)."""
    x = np.empty_like(features)
    for s in np.unique(speakers):
        m = speakers == s
        if mode == 'offline':
            cal = SpeakerCalibration.from_manifest(norm)
            cal.update(features[m].T)
            x[m] = cal.normalise(features[m].T).T
            continue
        cal = SpeakerCalibration.from_manifest(norm)
        for f in np.unique(owner[m]):
            w = owner == f
            cal.update(features[w].T)
            x[w] = cal.normalise(features[w].T).T
    return x


def fit_head(features: np.ndarray, labels: np.ndarray, owner: np.ndarray, speakers: np.ndarray,
             num_labels: int, C: float, calibration: str = 'both'
             ) -> tuple[dict, np.ndarray, np.ndarray]:
    """(normalisation section, head weight [C, F], bias [C]): a balanced multinomial logistic
    regression on the window features calibrated per speaker (``calibrated``): 'offline',
    'online', or 'both' (one copy of each, so the head reads a speaker early and late in a
    conversation alike).  Labels absent from the data get a bias of -30."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - training only
    norm = speaker_section(features.T[None], PRIOR_WINDOWS, 1, 1)
    modes = ['offline', 'online'] if calibration == 'both' else [calibration]
    x = np.concatenate([calibrated(features, owner, speakers, norm, m) for m in modes])
    labels = np.concatenate([labels] * len(modes))
    clf = LogisticRegression(C=C, max_iter=3000, class_weight='balanced').fit(x, labels)
    weight = np.zeros((num_labels, features.shape[1]), np.float32)
    bias = np.full(num_labels, -30.0, np.float32)
    if len(clf.classes_) == 2:      # one logit: P(second class) = sigmoid(coef . x + intercept)
        weight[clf.classes_[0]], bias[clf.classes_[0]] = 0.0, 0.0
        weight[clf.classes_[1]], bias[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
    else:
        weight[clf.classes_] = clf.coef_
        bias[clf.classes_] = clf.intercept_
    return norm, weight, bias


def build(args: argparse.Namespace) -> pathlib.Path:
    from .stages.vocal import _split, load_speech  # noqa: PLC0415
    base = ModelBundle.load(args.bundle)
    labels = base.labels
    out = pathlib.Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f'--out {out} exists and is not empty')
    shutil.copytree(base.path, out, dirs_exist_ok=True)
    diff = export_voiceprint(pathlib.Path(args.weights), out / VOICEPRINT_FILE)
    print(f'exported {out / VOICEPRINT_FILE} (max |torch - onnxruntime| {diff:.2g})',
          file=sys.stderr)
    manifest = json.loads((out / MANIFEST).read_text())
    section = dict(file=VOICEPRINT_FILE, **MEL, gain_dbfs=GAIN_DBFS, weight=float(args.weight))
    # the features need no head: a provisional one lets the runtime class compute them
    provisional = dict(section, normalisation={'type': 'speaker', 'mean': [0.0] * 512,
                                               'std': [1.0] * 512, 'prior_frames': 0.0},
                       head={'weight': [[0.0] * 512] * len(labels), 'bias': [0.0] * len(labels)})
    base.voiceprint = Voiceprint(out, provisional, base.sample_rate)
    train, _ = _split(load_speech(args, labels), set(),
                      {s for s in args.train_speakers.split(',') if s})
    train, room = with_noisy_copies(train, args, args.seed)
    if room:
        room['seed'] = args.seed
    feats, owner, kept = window_features(base, train)
    y = np.array([labels.index(train[k].label) for k in kept])[owner]
    spk = np.array([train[k].speaker for k in kept])[owner]
    norm, weight, bias = fit_head(feats, y, owner, spk, len(labels), args.C, args.head_calibration)
    section.update(
        normalisation=norm,
        head={'weight': [[round(float(v), 6) for v in row] for row in weight],
              'bias': [round(float(v), 6) for v in bias]},
        source=dict(SOURCE, weights_sha256=sha256_of(pathlib.Path(args.weights))),
        training={'speakers': sorted(set(spk.tolist())), 'windows': int(len(feats)),
                  'files': len(kept), 'C': float(args.C),
                  'calibration': f'{args.head_calibration} per speaker',
                  'classifier': 'sklearn LogisticRegression, class_weight balanced',
                  **({'room_noise': room} if room else {})})
    manifest['vocal']['voiceprint'] = section
    note = manifest['vocal'].get('outputs_note', '').split(_NOTE)[0]
    manifest['vocal']['outputs_note'] = (
        f'{note}{_NOTE}the voiceprint head (vocal.voiceprint, weight {args.weight:g})')
    manifest['version'] = args.version
    manifest['created'] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
    manifest['files'][VOICEPRINT_FILE] = sha256_of(out / VOICEPRINT_FILE)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + '\n')
    ModelBundle.load(out)          # the written bundle must verify
    print(f'wrote {out} (voiceprint head on {len(feats)} windows of {len(kept)} files)',
          file=sys.stderr)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='emotion-train voiceprint',
        description="Add a voiceprint member to a bundle's voice decision.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', required=True, help='data root (emodb/, ravdess/ below it)')
    p.add_argument('--bundle', default=None, help='bundle to extend (default: shipped)')
    p.add_argument('--weights', required=True,
                   help="Resemblyzer's pretrained.pt (from its PyPI wheel; never downloaded here)")
    p.add_argument('--speech', default='emodb,ravdess',
                   help='speech sources, as emotion-train vocal --speech')
    p.add_argument('--train-speakers', required=True,
                   help='speakers whose windows train the head (ravdess:01,emodb:03,...)')
    p.add_argument('--weight', type=float, default=0.25,
                   help="the head's share of the published voice decision, in [0, 1]")
    p.add_argument('--C', type=float, default=0.03, help='inverse L2 strength of the head')
    p.add_argument('--head-calibration', choices=('offline', 'online', 'both'), default='both',
                   help='how the training windows are calibrated to their speaker: from all of '
                   "the speaker's windows, as vocal_node does while it listens (files in name "
                   'order), or one copy of each')
    add_noise_arguments(p, '; each copy is calibrated as that speaker in that room')
    p.add_argument('--seed', type=int, default=0, help='seed of the copies\' rooms [0]')
    p.add_argument('--version', default='0.0.0-voiceprint', help='version of the new bundle')
    p.add_argument('--out', required=True, help='new bundle directory (must be empty)')
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0.0 <= args.weight <= 1.0:
        raise SystemExit(f'--weight {args.weight}: must be in [0, 1]')
    build(args)
    return 0
