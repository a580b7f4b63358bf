"""Rebuild a vision encoder, or an ensemble of them, from ``vision`` stage checkpoints.

``--init-vision`` (fusion, end2end) and ``emotion-export --vision`` take one checkpoint or
several joined by commas.  Several become a ``VisionEnsemble``: one ONNX graph whose logits are
the members' mean and whose embedding is their concatenation.  Members must agree on labels,
preprocessing and face split, or the ensemble would be scored on faces a member trained on.
"""
from __future__ import annotations

import sys

from emotion_perception.models.vision_encoder import (VisionEncoder, VisionEnsemble,
                                                     build_vision_encoder)

from .engine import load_checkpoint

_SUMMARY = ('epoch', 'best_uar', 'best_epoch')


def vision_paths(spec: str) -> list[str]:
    """The checkpoint paths in a comma-separated ``--vision``/``--init-vision`` value."""
    paths = [p.strip() for p in str(spec).split(',') if p.strip()]
    if not paths:
        raise SystemExit('no vision checkpoint given')
    return paths


def load_vision(spec: str) -> tuple[VisionEncoder | VisionEnsemble, dict]:
    """The module (weights loaded) and a checkpoint-like dict: labels, preprocess, split,
    model_config, and ``summary`` (epoch/best_uar/best_epoch, per member for an ensemble)."""
    paths = vision_paths(spec)
    cks = [load_checkpoint(p) for p in paths]
    first = cks[0]
    if len(cks) == 1:
        model = build_vision_encoder(first['model_config'])
        model.load_state_dict(first['model'])
        meta = {k: first.get(k) for k in ('labels', 'preprocess', 'split', 'model_config')}
        meta['summary'] = {k: first.get(k) for k in _SUMMARY}
        return model, meta
    for path, ck in zip(paths[1:], cks[1:]):
        if ck.get('stage', 'vision') != 'vision' or 'members' in ck.get('model_config', {}):
            raise SystemExit(f'vision ensemble: {path} is not a single vision-stage checkpoint')
        for key in ('labels', 'preprocess'):
            if ck.get(key) != first.get(key):
                raise SystemExit(f'vision ensemble: {path} has {key} {ck.get(key)}, but '
                                 f'{paths[0]} has {first.get(key)}')
        if ck.get('split') != first.get('split'):
            # Not fatal (old checkpoints recorded none), but the holdout is then not clean.
            print(f'WARNING: vision ensemble: {path} was trained on face split {ck.get("split")},'
                  f' {paths[0]} on {first.get("split")}; a holdout of one may hold training '
                  f'faces of the other (train members with one --holdout-seed)', file=sys.stderr)
    model = VisionEnsemble([ck['model_config'] for ck in cks])
    for member, ck in zip(model.members, cks):
        member.load_state_dict(ck['model'])
    meta = {k: first.get(k) for k in ('labels', 'preprocess', 'split')}
    meta['model_config'] = model.config
    meta['summary'] = {'members': [dict({'checkpoint': p}, **{k: ck.get(k) for k in _SUMMARY})
                                   for p, ck in zip(paths, cks)]}
    return model, meta
