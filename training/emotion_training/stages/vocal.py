"""Vocal stage: train the log-mel CNN on speech (EmoDB layout by default, speaker-independent).

Validation is always by whole speakers (``--val-speakers``); ``--cv`` runs leave-speakers-out
cross-validation (``--cv-folds`` groups of speakers, fixed epochs, no early stopping on the test
fold) and reports pooled per-file metrics with the node's windowing and aggregation.

Several corpora: ``--speech emodb,ravdess`` (names under ``--data``, or paths) pools them.  Speaker
ids are then namespaced by corpus (``emodb:03``, ``ravdess:03`` are two people), and every clip is
trained with the label mask of its corpus (``labels.label_mask``, ``masked_cross_entropy``): an
EmoDB clip, which cannot be surprised, says nothing about the surprise logit.  The held-out
speakers' figures (``heldout`` in ``result.json``, and the CV report) are given per corpus and
pooled, each with the speaker calibration and without it (the population statistics).
"""
from __future__ import annotations

import argparse
import json
import pathlib
from typing import Sequence

import numpy as np
import torch

from emotion_runtime.preprocess import DEFAULT_LOG_FLOOR
from emotion_runtime.speaker_calibration import SpeakerCalibration, speaker_section
from emotion_training.models.vocal_encoder import VocalEncoder

from ..augment import augment_logmel, mel_band_hz, warp_logmel
from ..config import VOCAL_PREPROCESS
from ..datasets import Sample, load_audio_folders, load_cremad, load_csv_manifest, load_emodb, load_ravdess
from ..datasets.ravdess import CALM_CHOICES, parse_ravdess_name
from ..engine import FitConfig, fit, load_checkpoint
from ..labels import label_mask
from ..metrics import summarise
from ..splits import check_speech_split, speech_split
from ..train import make_optimizer
from ..voice_data import (
    add_noise_arguments,
    file_windows,
    normalise_windows,
    raw_vocal_section,
    with_noisy_copies,
)
from .common import EncoderStage, class_weights, predict, recalibrate_bn

TRAIN_HOP_S = 0.2


class VocalStage(EncoderStage):
    """Log-mel windows in memory; per-file validation (mean of window logits)."""

    name = 'vocal'

    def __init__(self, model: VocalEncoder, labels: list[str], x: np.ndarray, y: np.ndarray,
                 xv: np.ndarray, yv_win: np.ndarray, fv: np.ndarray, gen: torch.Generator,
                 vocal: dict, batch_size: int = 64, balance: str = 'weights',
                 balance_power: float = 1.0, smoothing: float = 0.1, augment: float = 1.0,
                 split: dict | None = None, mixup: float = 0.0,
                 label_masks: np.ndarray | None = None, xv_none: np.ndarray | None = None,
                 val_corpus: Sequence[str] | None = None) -> None:
        """``label_masks`` [N, C]: per training window, the labels its corpus has (None: all);
        ``xv_none``: the validation windows normalised without speaker calibration (None: the
        normalisation has no calibration); ``val_corpus``: the corpus of each validation file."""
        self.model, self.labels, self.vocal = model, labels, vocal
        self.label_masks = None if label_masks is None or label_masks.all() else label_masks
        self.xv_none = None if xv_none is None else torch.from_numpy(xv_none)
        self.val_corpus = list(val_corpus) if val_corpus is not None else None
        self.val_is_train = False     # set when there are no held-out speakers
        self.room_noise: dict | None = None   # the noisy copies' settings (--noise-copies)
        # --vocal-warp / --vocal-stretch: largest frequency and time scaling (0 = off)
        self.perturbation = {'warp': 0.0, 'stretch': 0.0}
        self._band_hz = mel_band_hz(int(vocal['n_mels']), float(vocal['fmin']),
                                    float(vocal['fmax']))
        self.mixup = mixup
        self.split = split or {}
        self.x, self.y = torch.from_numpy(x), y
        self.xv, self.yv_win, self.fv = torch.from_numpy(xv), yv_win, fv
        self.gen, self.batch_size, self.balance = gen, batch_size, balance
        self.smoothing, self.augment = smoothing, augment
        self.weights = class_weights(y, len(labels), balance_power) if balance == 'weights' else None

    def augment_batch(self, x: torch.Tensor, gen: torch.Generator,
                      strength: float) -> torch.Tensor:
        """Vocal-tract-length and rate perturbation (``perturbation``, scaled by the augment
        strength), then ``augment_logmel``'s gain, noise and masks."""
        w, s = (self.perturbation['warp'] * strength, self.perturbation['stretch'] * strength)
        if w > 0 or s > 0:
            x = warp_logmel(x, gen, self._band_hz, w, s)
        return augment_logmel(x, gen, strength)

    def recalibrate(self) -> None:
        """BatchNorm statistics from clean training windows (see ``recalibrate_bn``)."""
        g = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(self.x), generator=g)[:2048]
        recalibrate_bn(self.model, self.x[idx])

    def _window_outputs(self) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, logits) of every validation window."""
        self.model.eval()
        with torch.no_grad():
            emb, logits = self.model(self.xv)
        return emb.cpu().numpy(), logits.cpu().numpy()

    def file_predictions(self, outputs: tuple[np.ndarray, np.ndarray] | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-file (y_true, y_pred, mean logits, mean embedding) with the node's aggregation,
        from ``outputs`` of ``_window_outputs`` when the caller already has them."""
        emb, logits = outputs if outputs is not None else self._window_outputs()
        files = np.unique(self.fv)
        lg = np.stack([logits[self.fv == f].mean(0) for f in files])
        em = np.stack([emb[self.fv == f].mean(0) for f in files])
        yt = np.array([self.yv_win[self.fv == f][0] for f in files])
        return yt, lg.argmax(1), lg, em

    def evaluate(self):
        self.recalibrate()   # before scoring and before the checkpoint is written
        outputs = self._window_outputs()
        yt, yp, _, _ = self.file_predictions(outputs)
        return yt, yp, {'embedding': outputs[0][:512]}

    def steps_per_epoch(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def to(self, device: torch.device) -> 'VocalStage':
        super().to(device)
        if self.xv_none is not None:
            self.xv_none = self.xv_none.to(self.device)
        return self

    def heldout_predictions(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per-file (y_true, y_pred, corpus) of the validation files with the current weights,
        for 'speaker' (each held-out speaker calibrated on its own unlabelled windows, as in
        training) and 'none' (the training population's statistics); only 'speaker' where the
        normalisation has no calibration (then both would be the same)."""
        self.recalibrate()
        files = np.unique(self.fv)
        corpus = np.array([(self.val_corpus[f] if self.val_corpus else '') or 'speech'
                           for f in files])
        out = {}
        for mode, x in (('speaker', self.xv), ('none', self.xv_none)):
            if x is None:
                continue
            yt, yp, _, _ = self.file_predictions(predict(self.model, x))
            out[mode] = (yt, yp, corpus)
        return out

    def heldout_report(self) -> dict:
        """Per-corpus and pooled figures on the validation speakers, with and without
        calibration (``heldout_predictions``)."""
        report = heldout_summary(self.heldout_predictions(), self.labels)
        return dict(report, speakers='TRAINING (no --val-speakers)' if self.val_is_train
                    else 'validation')

    def checkpoint_extra(self) -> dict:
        extra = {'model_config': self.model.config, 'preprocess': self.vocal, 'split': self.split}
        if self.room_noise:
            extra['room_noise'] = self.room_noise
        if any(self.perturbation.values()):
            extra['perturbation'] = dict(self.perturbation)
        return extra


_BRIEF = ('n', 'accuracy', 'uar', 'macro_f1', 'per_class_recall')
CALIBRATION_NAMES = {'speaker': 'per held-out speaker, from its own unlabelled windows',
                     'none': 'none (training population statistics)'}


def heldout_summary(preds: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                    labels: Sequence[str]) -> dict:
    """{calibration mode: {'pooled': metrics, '<corpus>': metrics, ...}} from
    ``heldout_predictions`` (UAR over the classes present in each part)."""
    out = {}
    for mode, (yt, yp, corpus) in preds.items():
        block = {'calibration': CALIBRATION_NAMES[mode],
                 'pooled': {k: v for k, v in summarise(yt, yp, labels).items() if k in _BRIEF}}
        for c in sorted(set(corpus.tolist())):
            m = corpus == c
            block[c] = {k: v for k, v in summarise(yt[m], yp[m], labels).items() if k in _BRIEF}
        out[mode] = block
    return out


def add_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group('vocal stage')
    g.add_argument('--speech', default=None, help='speech data: an EmoDB folder (default '
                   'DATA/emodb), a RAVDESS folder (has Actor_AA/), a CREMA-D root (has '
                   'AudioWAV/), a class-folder dir or a CSV; several joined by commas are pooled '
                   '(names emodb, ravdess, cremad = that folder under --data), with speaker ids '
                   'namespaced by corpus (emodb:03, ravdess:01) and per-corpus label masks')
    g.add_argument('--ravdess-calm', choices=CALM_CHOICES, default='exclude',
                   help='RAVDESS calm clips: exclude (default: calm is not neutral) or merge '
                   'into neutral')
    g.add_argument('--val-speakers', default='', help='comma list of speakers held out for '
                   'validation/early stopping (e.g. 14,15; with several corpora namespaced: '
                   'emodb:14,ravdess:01); empty = train on all, fixed epochs')
    g.add_argument('--train-speakers', default='', help='restrict training to these speakers')
    g.add_argument('--cv', action='store_true', help='leave-speakers-out cross-validation report')
    g.add_argument('--cv-folds', type=int, default=4, help='speaker groups for --cv')
    g.add_argument('--vocal-widths', default='16,32,64,128')
    g.add_argument('--vocal-embedding', type=int, default=128)
    g.add_argument('--vocal-normalisation', choices=('global', 'per_window', 'speaker'),
                   default='global',
                   help='log-mel normalisation written to the bundle: global training-set '
                   'mean/std (keeps loudness), per window (gain-invariant) or speaker (per mel '
                   'band by each speaker\'s own statistics; the node calibrates online)')
    g.add_argument('--speaker-prior-seconds', type=float, default=10.0,
                   help='speaker normalisation: weight of the training population\'s statistics, '
                   'in seconds of speech, before a speaker\'s own take over')
    g.add_argument('--n-mels', type=int, default=VOCAL_PREPROCESS['n_mels'], help='mel bands')
    g.add_argument('--n-fft', type=int, default=VOCAL_PREPROCESS['n_fft'], help='FFT size')
    g.add_argument('--win-length', type=int, default=VOCAL_PREPROCESS['win_length'],
                   help='STFT window in samples (400 = 25 ms at 16 kHz; longer resolves the '
                   'pitch harmonics of low voices)')
    g.add_argument('--log-floor', type=float, default=DEFAULT_LOG_FLOOR,
                   help='mel power added before the log (the manifest\'s vocal.log_floor): '
                        'digital silence stays finite; a higher floor hides a quiet room\'s '
                        'noise (white noise at -60 dBFS gives about 5e-6 per band) [%(default)g]')
    g.add_argument('--window-seconds', type=float, default=VOCAL_PREPROCESS['window_seconds'])
    g.add_argument('--hop-seconds', type=float, default=VOCAL_PREPROCESS['hop_seconds'])
    g.add_argument('--train-hop', type=float, default=TRAIN_HOP_S,
                   help='hop between training windows (denser than the node hop = more data)')
    g.add_argument('--vocal-warp', type=float, default=0.0,
                   help='vocal-tract-length perturbation: each training window\'s frequencies '
                   'scaled by a factor drawn in [1 - W, 1 + W] (augment.warp_logmel; 0 = off) '
                   '[%(default)s]')
    g.add_argument('--vocal-stretch', type=float, default=0.0,
                   help='speaking-rate perturbation: each training window\'s time axis scaled '
                   'by a factor drawn in [1 - S, 1 + S] (0 = off) [%(default)s]')
    add_noise_arguments(g, '; validation stays clean')


#: corpus names that ``--speech`` resolves to a folder under ``--data``
CORPUS_FOLDERS = ('emodb', 'ravdess', 'cremad')


def _is_ravdess(src: pathlib.Path) -> bool:
    return any(src.glob('Actor_*')) or any(parse_ravdess_name(f.name) for f in src.glob('*.*'))


def load_source(src: pathlib.Path, labels: Sequence[str], calm: str = 'exclude'
                ) -> tuple[str, list[Sample]]:
    """(corpus name, samples) of one speech source; every sample's ``extra['corpus']`` is set
    ('' for class folders and CSV manifests: a source that may have every label)."""
    if src.suffix.lower() == '.csv':
        kind, samples = '', load_csv_manifest(src, labels)
    elif not src.is_dir():
        raise SystemExit(f'speech source {src} does not exist')
    elif (src / 'AudioWAV').is_dir():
        kind, samples = 'cremad', load_cremad(src, labels)
    elif _is_ravdess(src):
        kind, samples = 'ravdess', load_ravdess(src, labels, calm=calm)
    elif (src / 'wav').is_dir() or any(src.glob('*.wav')):
        kind, samples = 'emodb', load_emodb(src, labels)
    else:
        kind, samples = '', load_audio_folders(src, labels)
    for s in samples:
        s.extra['corpus'] = kind
    return kind, samples


def load_speech(args, labels: Sequence[str]) -> list[Sample]:
    """The ``--speech`` sources (default DATA/emodb).  With several, each sample's speaker is
    namespaced by its corpus (``ravdess:01``) so that two corpora's speaker 03 stay two people."""
    specs = [t.strip() for t in (args.speech or 'emodb').split(',') if t.strip()]
    srcs = [pathlib.Path(args.data) / t if t in CORPUS_FOLDERS else pathlib.Path(t)
            for t in specs]
    calm = getattr(args, 'ravdess_calm', 'exclude')
    loaded = [load_source(src, labels, calm) for src in srcs]
    if len(loaded) > 1:
        names = [kind or src.stem for (kind, _), src in zip(loaded, srcs)]
        if len(set(names)) != len(names):
            raise SystemExit(f'--speech {args.speech}: two sources of one corpus ({names})')
        for name, (_, samples) in zip(names, loaded):
            for s in samples:
                s.speaker = f'{name}:{s.speaker}'
                s.extra['corpus'] = s.extra['corpus'] or name
    return [s for _, samples in loaded for s in samples]


def _split(samples: list[Sample], val_speakers: set[str], train_speakers: set[str]):
    """(train, validation) by whole speakers; unknown speaker ids are refused (a typo, or a bare
    id where the corpora are pooled and ids are namespaced, would silently validate on none)."""
    known = {s.speaker for s in samples}
    unknown = sorted((val_speakers | train_speakers) - known)
    if unknown:
        raise SystemExit(f'unknown speaker(s) {unknown}; the speakers are {sorted(known)}')
    train = [s for s in samples if s.speaker not in val_speakers and
             (not train_speakers or s.speaker in train_speakers)]
    val = [s for s in samples if s.speaker in val_speakers]
    return train, val


def _normalisation(x: np.ndarray, vocal: dict, kind: str, prior_seconds: float) -> dict:
    """The manifest normalisation section for ``kind`` from the raw training windows ``x``:
    'global' keeps their mean/std, 'speaker' their per-band mean/std as the prior for speakers
    not yet heard (``speaker_calibration.speaker_section``)."""
    if kind == 'per_window':
        return {'type': 'per_window'}
    if kind == 'speaker':
        return speaker_section(x, prior_seconds, int(vocal['hop_length']),
                               int(vocal['sample_rate']))
    return {'type': 'global', 'mean': round(float(x.mean()), 5),
            'std': round(float(x.std() + 1e-6), 5)}


def build_stage(args, labels: list[str], gen: torch.Generator, train: list[Sample],
                val: list[Sample], log) -> VocalStage:
    if args.win_length > args.n_fft:
        raise SystemExit(f'--win-length {args.win_length} is longer than --n-fft {args.n_fft}')
    if not args.log_floor > 0:
        raise SystemExit(f'--log-floor must be > 0, got {args.log_floor:g}')
    vocal = dict(VOCAL_PREPROCESS, window_seconds=args.window_seconds,
                 hop_seconds=args.hop_seconds, n_mels=args.n_mels, n_fft=args.n_fft,
                 win_length=args.win_length, log_floor=args.log_floor)
    raw = raw_vocal_section(vocal)
    files, room = with_noisy_copies(train, args, args.seed)
    if room:
        copies, (lo, hi) = room['copies'], room['dbfs']
        log(f'[vocal] {copies} noisy cop{"y" if copies == 1 else "ies"} of the training files: '
            f'{room["kinds"]} noise at {lo:g} to {hi:g} dBFS, one room per speaker and copy')
    x, y, f = file_windows(files, labels, raw, args.train_hop, 'train windows')
    norm = _normalisation(x, vocal, args.vocal_normalisation, args.speaker_prior_seconds)
    vocal = dict(vocal, normalisation=norm)
    x = normalise_windows(x, [files[i].speaker for i in f], norm)
    masks = np.array([label_mask(files[i].extra.get('corpus'), labels) for i in f], bool)
    if not masks.all():
        log('[vocal] label masks: ' + ', '.join(sorted(
            {f'{files[i].extra.get("corpus")} without '
             f'{[lab for lab, m in zip(labels, masks[j]) if not m]}'
             for j, i in enumerate(f) if not masks[j].all()})))
    if not val:  # no held-out speakers: monitor training files (fixed-epoch run; say so in logs)
        log('[vocal] no --val-speakers: validation metrics below are on TRAINING speakers')
    # Validation windows at the node's hop; 'speaker' calibrates to each held-out speaker from
    # its own (unlabelled) windows, as emotion-eval speech does; xv_none uses the population
    # statistics only (the figures without calibration).
    vset = val or train
    xr, yv, fv = file_windows(vset, labels, raw, float(vocal['hop_seconds']), 'val windows')
    xv = normalise_windows(xr, [vset[i].speaker for i in fv], norm)
    xv_none = (SpeakerCalibration.from_manifest(norm).normalise(xr)
               if norm.get('type') == 'speaker' else None)
    log(f'[vocal] {len(train)} train files -> {len(y)} windows; {len(set(fv.tolist()))} val files; '
        f'counts {dict(zip(labels, np.bincount(y, minlength=len(labels)).tolist()))}')
    model = VocalEncoder(len(labels), embedding_size=args.vocal_embedding,
                         widths=[int(v) for v in args.vocal_widths.split(',')])
    stage = VocalStage(model, labels, x, y, xv, yv, fv, gen, vocal,
                       batch_size=args.batch_size, balance=args.balance,
                       balance_power=args.balance_power, smoothing=args.label_smoothing,
                       augment=args.augment, split=speech_split(s.speaker for s in train),
                       mixup=args.mixup, label_masks=masks, xv_none=xv_none,
                       val_corpus=[s.extra.get('corpus', '') for s in vset])
    stage.val_is_train = not val
    stage.room_noise = room
    stage.perturbation = {'warp': float(args.vocal_warp), 'stretch': float(args.vocal_stretch)}
    if args.vocal_warp > 0 or args.vocal_stretch > 0:
        log(f'[vocal] perturbation per training window: frequencies scaled by up to '
            f'+-{args.vocal_warp:.0%} (vocal tract length), time by up to '
            f'+-{args.vocal_stretch:.0%} (speaking rate)')
    return stage


def make_stage(args, labels: list[str], gen: torch.Generator, log) -> VocalStage:
    samples = load_speech(args, labels)
    if not samples:
        raise SystemExit('no speech files found for the label set')
    vs = {s for s in args.val_speakers.split(',') if s}
    ts = {s for s in args.train_speakers.split(',') if s}
    train, val = _split(samples, vs, ts)
    log(f'[vocal] speakers train {sorted({s.speaker for s in train})} '
        f'val {sorted({s.speaker for s in val})}')
    if args.init_vocal and 'vocal' not in args.reinit.split(','):
        check_speech_split(load_checkpoint(args.init_vocal), vs, args.init_vocal,
                           lambda m: log(f'[vocal] {m}'))
    return build_stage(args, labels, gen, train, val, log)


def speaker_folds(speakers: Sequence[str], k: int) -> list[list[str]]:
    """Deterministic speaker groups (sorted speakers dealt round-robin)."""
    sp = sorted(speakers)
    k = max(2, min(k, len(sp)))
    return [sp[i::k] for i in range(k)]


def cross_validate(args, labels: list[str], gen: torch.Generator, log) -> dict:
    """Leave-speakers-out CV with a fixed number of epochs; pooled per-file metrics."""
    samples = load_speech(args, labels)
    speakers = sorted({s.speaker for s in samples})
    folds = speaker_folds(speakers, args.cv_folds)
    out = pathlib.Path(args.out)
    y_true, y_pred, per_fold = [], [], []
    heldout: dict[str, list] = {}
    for i, test_sp in enumerate(folds):
        train = [s for s in samples if s.speaker not in test_sp]
        test = [s for s in samples if s.speaker in test_sp]
        log(f'[vocal cv] fold {i}: test speakers {test_sp}')
        stage = build_stage(args, labels, gen, train, test, log).to(args.torch_device)
        steps = stage.steps_per_epoch()
        opt, sched = make_optimizer(args, stage.model, steps)
        cfg = FitConfig(epochs=args.epochs, out_dir=out / f'fold{i}', patience=10 ** 6,
                        collapse_threshold=args.collapse_threshold,
                        stop_on_collapse=args.stop_on_collapse, quiet=args.quiet,
                        bf16=args.bf16)
        fit(stage, opt, sched, cfg, log)  # fixed epochs; we score the LAST epoch, not the best
        yt, yp, _, _ = stage.file_predictions()
        for mode, pred in stage.heldout_predictions().items():
            heldout.setdefault(mode, []).append(pred)
        per_fold.append({'test_speakers': test_sp, **{k: v for k, v in summarise(
            yt, yp, labels).items() if k in ('n', 'accuracy', 'uar', 'macro_f1')}})
        log(f'[vocal cv] fold {i}: {per_fold[-1]}')
        y_true += yt.tolist()
        y_pred += yp.tolist()
    pooled = summarise(y_true, y_pred, labels)
    result = {'cv': 'leave-speakers-out', 'folds': per_fold, 'pooled': pooled,
              'best_uar': pooled['uar'], 'epochs_per_fold': args.epochs,
              'heldout': heldout_summary({m: tuple(np.concatenate(parts) for parts in zip(*p))
                                          for m, p in heldout.items()}, labels)}
    (out / 'cv_result.json').write_text(json.dumps(result, indent=1))
    print(json.dumps({k: pooled[k] for k in ('n', 'accuracy', 'uar', 'macro_f1')}))
    return result
