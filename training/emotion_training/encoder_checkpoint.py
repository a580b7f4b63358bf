"""Rebuild an encoder, or an ensemble of encoders, from ``vision`` or ``vocal`` stage checkpoints.

``--init-vision`` / ``--init-vocal`` (fusion, end2end) and ``emotion-export --vision`` /
``--vocal`` take one checkpoint or several joined by commas.  Several become one ensemble module
(``VisionEnsemble`` / ``VocalEnsemble``): one ONNX graph whose logits are the members' mean and
whose embedding is their concatenation.  Members must agree on labels and preprocessing (for
speech that includes the speaker-normalisation prior), and should share their data split, or
the ensemble would be scored on faces or speakers a member trained on.
"""
from __future__ import annotations

import sys
from typing import Callable

from torch import nn

from emotion_training.models.vision_encoder import VisionEncoder, VisionEnsemble, build_vision_encoder
from emotion_training.models.vocal_encoder import VocalEncoder, VocalEnsemble, build_vocal_encoder

from .engine import load_checkpoint
from .splits import same_face_split

_SUMMARY = ('epoch', 'best_uar', 'best_epoch')


def checkpoint_paths(spec: str) -> list[str]:
    """The checkpoint paths in a comma-separated ``--vision``/``--vocal``/``--init-*`` value."""
    paths = [p.strip() for p in str(spec).split(',') if p.strip()]
    if not paths:
        raise SystemExit('no encoder checkpoint given')
    return paths


def _load(spec: str, stage: str, build: Callable[[dict], nn.Module],
          ensemble: Callable[[list[dict]], nn.Module]) -> tuple[nn.Module, dict]:
    """The module (weights loaded) and a checkpoint-like dict: labels, preprocess, split,
    model_config, room_noise (vocal, ``--noise-copies``), perturbation (vocal, ``--vocal-warp``
    / ``--vocal-stretch``), and ``summary``
    (epoch/best_uar/best_epoch, per member for an ensemble)."""
    paths = checkpoint_paths(spec)
    cks = [load_checkpoint(p) for p in paths]
    first = cks[0]
    if len(cks) == 1:
        model = build(first['model_config'])
        model.load_state_dict(first['model'])
        meta = {k: first.get(k) for k in ('labels', 'preprocess', 'split', 'model_config',
                                          'room_noise', 'perturbation')}
        meta['summary'] = {k: first.get(k) for k in _SUMMARY}
        return model, meta
    for path, ck in zip(paths, cks):
        if ck.get('stage', stage) != stage or 'members' in ck.get('model_config', {}):
            raise SystemExit(f'{stage} ensemble: {path} is not a single {stage}-stage checkpoint')
    for path, ck in zip(paths[1:], cks[1:]):
        for key in ('labels', 'preprocess'):
            if ck.get(key) != first.get(key):
                raise SystemExit(f'{stage} ensemble: {path} has {key} {ck.get(key)}, but '
                                 f'{paths[0]} has {first.get(key)}')
        same = (same_face_split(ck.get('split'), first.get('split')) if stage == 'vision'
                else ck.get('split') == first.get('split'))
        if not same:
            # Not fatal (old checkpoints recorded none), but the holdout is then not clean.
            print(f'WARNING: {stage} ensemble: {path} was trained on split {ck.get("split")}, '
                  f'{paths[0]} on {first.get("split")}; what one holds out another may have '
                  f'trained on (train members on one split, changing only --seed)',
                  file=sys.stderr)
    model = ensemble([ck['model_config'] for ck in cks])
    for member, ck in zip(model.members, cks):
        member.load_state_dict(ck['model'])
    meta = {k: first.get(k) for k in ('labels', 'preprocess', 'split')}
    # the room noise and perturbation the members trained with, when they all agree
    for key in ('room_noise', 'perturbation'):
        same = all(ck.get(key) == first.get(key) for ck in cks)
        meta[key] = first.get(key) if same else None
    meta['model_config'] = model.config
    meta['summary'] = {'members': [dict({'checkpoint': p}, **{k: ck.get(k) for k in _SUMMARY})
                                   for p, ck in zip(paths, cks)]}
    return model, meta


def load_vision(spec: str) -> tuple[VisionEncoder | VisionEnsemble, dict]:
    """A vision encoder, or a ``VisionEnsemble`` for comma-joined checkpoints (see ``_load``)."""
    return _load(spec, 'vision', build_vision_encoder, VisionEnsemble)


def load_vocal(spec: str) -> tuple[VocalEncoder | VocalEnsemble, dict]:
    """A vocal encoder, or a ``VocalEnsemble`` for comma-joined checkpoints (see ``_load``)."""
    return _load(spec, 'vocal', build_vocal_encoder, VocalEnsemble)
