"""Fusion and end2end stages.

``fusion``: both encoders frozen (by default); their embeddings are computed once and the LSTM head
is trained on pseudo-pair sequences (see ``pairing``) -- seconds per epoch.
``end2end``: the same sequences, but faces and log-mel windows go through the encoders with
gradients (use ``--unfreeze vision,vocal`` and a small ``--lr``); slow, for fine-tuning.
"""
from __future__ import annotations

import argparse
import pathlib
from typing import Iterable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emotion_training.models.fusion_model import FusionModel
from emotion_training.models.vision_encoder import VisionEncoder, VisionEnsemble
from emotion_training.models.vocal_encoder import VocalEncoder, VocalEnsemble

from ..augment import augment_faces, augment_logmel
from ..datasets import load_cremad, load_csv_manifest, load_image_folders, load_semaine
from ..datasets.cremad import split_actors
from ..datasets.semaine import is_semaine_root
from ..encoder_checkpoint import load_vision, load_vocal
from ..engine import load_checkpoint
from ..face_data import faces_to_arrays, stratified_holdout
from ..labels import VALENCE_AROUSAL
from ..pairing import PseudoPairs, observed_mask
from ..real_pairs import MixedPairs, RealPairs, load_real_sequences, semaine_segments
from ..splits import check_face_split, check_speech_split, face_split, holdout_seed
from ..voice_data import file_windows
from .common import apply_frozen_eval, predict
from .vocal import load_speech

TRAIN_HOP_S = 0.25


class FusionSystem(nn.Module):
    """vision + vocal encoders + fusion head (state_dict prefixes vision./vocal./fusion.)."""

    def __init__(self, vision: VisionEncoder | VisionEnsemble, vocal: VocalEncoder | VocalEnsemble,
                 fusion: FusionModel) -> None:
        super().__init__()
        self.vision, self.vocal, self.fusion = vision, vocal, fusion
        self.config = fusion.config


class FusionStage:
    name = 'fusion'

    def __init__(self, system: FusionSystem, labels: list[str], pools: dict, pairs_train,
                 pairs_val, gen: torch.Generator, end2end: bool, batch_size: int,
                 steps_per_epoch: int, augment: float, seed: int, va_weight: float = 1.0,
                 log=None) -> None:
        self.system, self.labels, self.pools = system, labels, pools
        self.model = system
        self.pairs_train, self.pairs_val = pairs_train, pairs_val
        self.gen, self.end2end, self.batch_size = gen, end2end, batch_size
        self._steps, self.augment = steps_per_epoch, augment
        self.rng = np.random.default_rng(seed)
        self.val_batch = pairs_val.sample(600, np.random.default_rng(seed + 1))
        self.va_weight, self.log = va_weight, log or (lambda m: None)
        if end2end:
            self.name = 'end2end'

    # parts for --freeze/--unfreeze/--reinit
    def parts(self) -> dict[str, nn.Module]:
        return {'vision': self.system.vision, 'vocal': self.system.vocal,
                'fusion': self.system.fusion}

    def default_frozen(self) -> set[str]:
        return set() if self.end2end else {'vision', 'vocal'}

    def steps_per_epoch(self) -> int:
        return self._steps

    def _embed(self, split: str, kind: str, idx: np.ndarray, train: bool) -> torch.Tensor:
        """Embeddings for pool indices [N,T] -> [N,T,E] (precomputed, or encoded in end2end)."""
        pool = self.pools[split][kind]
        flat = idx.reshape(-1)
        if not self.end2end:
            return torch.from_numpy(pool['emb'][flat]).view(*idx.shape, -1)
        uniq, inv = np.unique(flat, return_inverse=True)   # encode each item once
        x = torch.from_numpy(pool['x'][uniq])
        if train and self.augment > 0:
            x = (augment_faces if kind == 'face' else augment_logmel)(x, self.gen, self.augment)
        enc = self.system.vision if kind == 'face' else self.system.vocal
        emb, _ = enc(x)
        return emb[torch.from_numpy(inv.reshape(-1))].view(*idx.shape, -1)

    def _va_loss(self, logits: torch.Tensor, b, mask: torch.Tensor) -> Optional[torch.Tensor]:
        """Mean squared error of the head's valence/arousal (softmax @ table) on the observed
        steps that have targets; None where the batch has none."""
        target = torch.from_numpy(b.va_targets())
        has = torch.isfinite(target).all(-1) & mask
        if not bool(has.any()):
            return None
        va = torch.softmax(logits, -1) @ self.system.fusion.va
        return ((va - torch.nan_to_num(target)) ** 2).sum(-1)[has].mean()

    def _forward(self, b, split: str, train: bool) -> torch.Tensor:
        ve = self._embed(split, 'face', b.face_idx, train)
        ae = self._embed(split, 'voice', b.voice_idx, train)
        logits, _ = self.system.fusion(ve, torch.from_numpy(b.face_present), ae,
                                       torch.from_numpy(b.voice_present))
        return logits

    def train_batches(self, epoch: int) -> Iterable:
        apply_frozen_eval(self.system)
        for _ in range(self._steps):
            yield self.pairs_train.sample(self.batch_size, self.rng)

    def loss(self, b):
        apply_frozen_eval(self.system)
        logits = self._forward(b, 'train', True)
        y = torch.from_numpy(b.labels)
        mask = torch.from_numpy(observed_mask(b.face_present, b.voice_present))
        labelled = y >= 0                     # SEMAINE sequences have only valence/arousal
        T = logits.shape[1]
        per = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                              y.clamp_min(0).repeat_interleave(T),
                              reduction='none', label_smoothing=0.05).view(-1, T)
        # later steps have seen more evidence: weight them more (the last step counts most)
        w = (mask & labelled[:, None]).float() * torch.linspace(0.5, 1.5, T)
        loss = (per * w).sum() / w.sum().clamp_min(1)
        va_loss = self._va_loss(logits, b, mask)
        if va_loss is not None and self.va_weight > 0:
            loss = loss + self.va_weight * va_loss
        return loss, logits[labelled, -1], y[labelled]

    def evaluate(self):
        self.system.eval()
        b = self.val_batch
        with torch.no_grad():
            logits = self._forward(b, 'val', False)
            ve = self._embed('val', 'face', b.face_idx, False)
            ae = self._embed('val', 'voice', b.voice_idx, False)
            fin = self.system.fusion.step_input(ve, torch.from_numpy(b.face_present), ae,
                                                torch.from_numpy(b.voice_present))
            va_loss = self._va_loss(logits, b, torch.from_numpy(
                observed_mask(b.face_present, b.voice_present)))
        if va_loss is not None:
            n = int(np.isfinite(b.va_targets()).all(-1).any(-1).sum())
            self.log(f'[{self.name}] val valence/arousal error (RMS of the 2-D distance) '
                     f'{float(va_loss) ** 0.5:.3f} on {n} sequences with traces')
        labelled = b.labels >= 0              # UAR over sequences with a categorical label
        return (b.labels[labelled], logits[:, -1].argmax(-1).numpy()[labelled],
                {'fusion_input': fin.reshape(-1, fin.shape[-1]).numpy()[:2000]})

    def checkpoint_extra(self) -> dict:
        return {'model_config': self.system.fusion.config}


def add_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group('fusion / end2end stages')
    g.add_argument('--seq-steps', type=int, default=6, help='time steps per training sequence')
    g.add_argument('--p-present', type=float, default=0.75,
                   help='per-step probability that a modality is present (modality dropout)')
    g.add_argument('--p-absent', type=float, default=0.15,
                   help='probability that a modality is missing for a whole sequence')
    g.add_argument('--fusion-hidden', type=int, default=64)
    g.add_argument('--fusion-layers', type=int, default=1)
    g.add_argument('--steps-per-epoch', type=int, default=100)
    g.add_argument('--fusion-faces', default=None, help='faces for pseudo-pairs '
                   '(default DATA/fer2013/train; the vision stage holdout is used for validation)')
    g.add_argument('--fusion-max-faces', type=int, default=8000,
                   help='faces embedded for the training pool')
    g.add_argument('--face-noise', type=float, default=0.0,
                   help='training pseudo-pairs: probability a face comes from another label '
                   '(simulates unseen-data error rate; see pairing.PseudoPairs)')
    g.add_argument('--voice-noise', type=float, default=0.0,
                   help='training pseudo-pairs: probability an utterance comes from another label')
    g.add_argument('--vision-tta', action='store_true',
                   help='embed faces with mirror test-time augmentation (as the exported bundle '
                   'with emotion-export --vision-tta flip will)')
    g.add_argument('--pairs', default=None, help='REAL audio-visual pairs: a CREMA-D root '
                   '(AudioWAV/ + VideoFlash/), a SEMAINE root (Sessions/<id>/ with user video, '
                   'audio and FeelTrace valence/arousal traces) or a CSV manifest with audio and '
                   'video columns')
    g.add_argument('--va-weight', type=float, default=1.0,
                   help='weight of the valence/arousal loss (mean squared error of the head\'s '
                   'valence/arousal output) on real pairs with continuous traces (SEMAINE)')
    g.add_argument('--pairs-fraction', type=float, default=0.5,
                   help='fraction of each batch drawn from real pairs (rest pseudo-pairs)')
    g.add_argument('--pairs-val-fraction', type=float, default=0.2,
                   help='fraction of actors held out for validation (actor-independent)')
    g.add_argument('--face-fallback', choices=('center', 'absent'), default='center',
                   help='when no face is detected in a frame: centre crop, or face absent')


def _pools(args, labels, vision: VisionEncoder | VisionEnsemble, vpre: dict,
           vocal: VocalEncoder | VocalEnsemble, apre: dict,
           end2end: bool, gen: torch.Generator, log) -> dict:
    faces_dir = _faces_dir(args)
    samples = load_image_folders(faces_dir, labels)
    # the same holdout as the vision stage, so the vision encoder never trained on val faces
    train_f, val_f = stratified_holdout(samples, args.holdout, holdout_seed(args))
    rng = np.random.default_rng(args.seed)
    if len(train_f) > args.fusion_max_faces:
        train_f = [train_f[i] for i in rng.choice(len(train_f), args.fusion_max_faces, False)]
    xf, yf = faces_to_arrays(train_f, labels, vpre, 'fusion train faces')
    xfv, yfv = faces_to_arrays(val_f, labels, vpre, 'fusion val faces')
    speech = load_speech(args, labels)
    vs = {s for s in args.val_speakers.split(',') if s}
    tr_s = [s for s in speech if s.speaker not in vs]
    va_s = [s for s in speech if s.speaker in vs] or tr_s
    if not vs:
        log('[fusion] no --val-speakers: fusion validation uses training speakers')
    xa, ya, fa = file_windows(tr_s, labels, apre, TRAIN_HOP_S, 'fusion train windows')
    xav, yav, fav = file_windows(va_s, labels, apre, float(apre['hop_seconds']), 'fusion val windows')
    pools = {'train': {'face': {'x': xf, 'y': yf}, 'voice': {'x': xa, 'y': ya, 'f': fa}},
             'val': {'face': {'x': xfv, 'y': yfv}, 'voice': {'x': xav, 'y': yav, 'f': fav}}}
    if getattr(args, 'pairs', None):
        _add_real_pairs(args, labels, vpre, apre, pools, log)
    if not end2end:
        # Frozen encoders: embed once.  Training faces/windows are embedded with augmentation so
        # their embeddings are about as noisy as those of unseen data.
        for split in ('train', 'val'):
            for kind, enc in (('face', vision), ('voice', vocal)):
                x = torch.from_numpy(pools[split][kind]['x'])
                if split == 'train' and args.augment > 0:
                    aug = augment_faces if kind == 'face' else augment_logmel
                    x = torch.cat([aug(x[i:i + 512], gen, args.augment)
                                   for i in range(0, len(x), 512)])
                pools[split][kind]['emb'] = predict(enc, x)[0]
    log(f'[fusion] pools: train faces {len(yf)} windows {len(ya)}; val faces {len(yfv)} '
        f'windows {len(yav)}')
    return pools


def _add_real_pairs(args, labels, vpre: dict, apre: dict, pools: dict, log) -> None:
    """Append real-pair clips (actor-independent train/val split) to the pools."""
    src = pathlib.Path(args.pairs)
    if src.suffix.lower() == '.csv':
        samples = load_csv_manifest(src, labels)
    elif is_semaine_root(src):
        # Session ids play the actors' part in the split; segments carry label '' (none).
        samples = semaine_segments(load_semaine(src), apre, args.seq_steps)
        if args.pairs_fraction >= 1:
            raise SystemExit('--pairs with SEMAINE gives no categorical labels: keep '
                             '--pairs-fraction below 1 so pseudo-pairs train and validate them')
    else:
        samples = load_cremad(src, labels)
    samples = [s for s in samples if s.video is not None]
    if not samples:
        raise SystemExit(f'--pairs {src}: no clips with both audio and video')
    train, val = split_actors(samples, args.pairs_val_fraction, args.seed)
    for split, part in (('train', train), ('val', val)):
        seqs = load_real_sequences(part, labels, vpre, apre, args.seq_steps, args.face_fallback)
        pool = pools[split]
        fo, vo = len(pool['face']['x']), len(pool['voice']['x'])
        if seqs:
            pool['face']['x'] = np.concatenate([pool['face']['x']] +
                                               [q['faces'] for q in seqs]).astype(np.float32)
            pool['voice']['x'] = np.concatenate([pool['voice']['x']] +
                                                [q['voice'] for q in seqs]).astype(np.float32)
        pool['real'] = RealPairs(seqs, fo, vo)
        log(f'[fusion] real pairs {split}: {len(seqs)} clips from {src}')


def _faces_dir(args) -> pathlib.Path:
    return (pathlib.Path(args.fusion_faces) if args.fusion_faces
            else pathlib.Path(args.data) / 'fer2013' / 'train')


def make_stage(args, labels: list[str], gen: torch.Generator, log) -> FusionStage:
    end2end = args.stage == 'end2end'
    if end2end and args.init_fusion:
        ck = load_checkpoint(args.init_fusion)
        sd = ck['model']
        cfg = ck['model_config']
        if not args.init_vision or not args.init_vocal:
            raise SystemExit('end2end needs --init-vision and --init-vocal (encoder configs)')
    if not args.init_vision or not args.init_vocal:
        raise SystemExit(f'{args.stage} needs --init-vision and --init-vocal checkpoints')
    vision, cv = load_vision(args.init_vision)
    vocal, ca = load_vocal(args.init_vocal)
    for name, ck in (('vision', cv), ('vocal', ca)):
        if list(ck['labels']) != labels:
            raise SystemExit(f'{name} checkpoint labels {ck["labels"]} differ from {labels}')
    faces_dir = _faces_dir(args)
    warn = lambda m: log(f'[{args.stage}] {m}')  # noqa: E731
    check_face_split(cv, face_split(faces_dir, None, args.holdout, holdout_seed(args)),
                     args.init_vision, warn)
    check_speech_split(ca, [s for s in args.val_speakers.split(',') if s], args.init_vocal, warn)
    if args.vision_tta:
        vision.set_flip_tta(True)
    hidden, layers = args.fusion_hidden, args.fusion_layers
    if end2end and args.init_fusion:   # the head's shape comes from its checkpoint
        hidden, layers = int(cfg['hidden_size']), int(cfg['num_layers'])
    fusion = FusionModel(vision.config['embedding_size'], vocal.config['embedding_size'],
                         len(labels), [VALENCE_AROUSAL[k] for k in labels],
                         hidden_size=hidden, num_layers=layers)
    system = FusionSystem(vision, vocal, fusion)
    if end2end and args.init_fusion:
        if any(k.startswith('fusion.') for k in sd):
            system.load_state_dict(sd)
        else:
            fusion.load_state_dict(sd)
        log(f'[end2end] fusion head from {args.init_fusion}')
    # configure_parts in train.py must not reload encoders from --init-*: they are loaded here.
    args.init_vision_loaded, args.init_vocal_loaded = args.init_vision, args.init_vocal
    pools = _pools(args, labels, vision, cv['preprocess'], vocal, ca['preprocess'], end2end, gen,
                   log)
    tr, va = pools['train'], pools['val']
    pt = PseudoPairs(tr['face']['y'], tr['voice']['y'], tr['voice']['f'], len(labels),
                     args.seq_steps, args.p_present, args.p_absent, args.face_noise,
                     args.voice_noise)
    pv = PseudoPairs(va['face']['y'], va['voice']['y'], va['voice']['f'], len(labels),
                     args.seq_steps, args.p_present, args.p_absent)
    if 'real' in tr:
        pt = MixedPairs(pt, tr['real'], args.pairs_fraction)
        pv = MixedPairs(pv, va.get('real'), args.pairs_fraction)
    return FusionStage(system, labels, pools, pt, pv, gen, end2end,
                       batch_size=min(args.batch_size, 64 if end2end else 256),
                       steps_per_epoch=args.steps_per_epoch, augment=args.augment, seed=args.seed,
                       va_weight=args.va_weight, log=log)
