"""Vocal encoder: a compact 2-D CNN on log-mel windows.

Why a CNN on log-mel: emotional prosody (pitch contour, energy, spectral tilt) shows as local
time-frequency patterns; a few conv blocks with pooling capture them with a few hundred thousand
parameters, fast enough for one window every hop on the robot CPU.  Global mean+max pooling over
time makes the embedding independent of small changes in window length.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .ensemble import EncoderEnsemble


def _block(cin: int, cout: int, pool: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.MaxPool2d(pool))


class VocalEncoder(nn.Module):
    """Log-mel window [N,1,n_mels,frames] -> (embedding [N,E], logits [N,C])."""

    def __init__(self, num_classes: int, embedding_size: int = 128,
                 widths: Sequence[int] = (16, 32, 64, 128), dropout: float = 0.3) -> None:
        super().__init__()
        self.config = dict(num_classes=num_classes, embedding_size=embedding_size,
                           widths=list(widths), dropout=dropout)
        blocks, cin = [], 1
        for w in widths:
            blocks.append(_block(cin, w, (2, 2)))
            cin = w
        self.backbone = nn.Sequential(*blocks)
        self.embed = nn.Sequential(nn.Linear(2 * cin, embedding_size), nn.ReLU())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embedding_size, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.backbone(x)            # [N, C, F', T']
        f = f.mean(dim=2)               # pool frequency
        pooled = torch.cat([f.mean(dim=2), f.amax(dim=2)], dim=1)
        emb = self.embed(pooled)
        return emb, self.head(self.dropout(emb))


class VocalEnsemble(EncoderEnsemble):
    """VocalEncoders trained with different seeds on the same speakers (see ensemble.py).

    Why for speech: EmoDB has 535 utterances from 10 actors, and one seed's leave-speakers-out
    UAR moves by two points from seed to seed; three seeds averaged are both higher and steadier.
    Members share the speaker-normalisation prior, which depends on the training speakers only.
    """

    def __init__(self, members: Sequence[dict]) -> None:
        super().__init__(members, VocalEncoder)


def build_vocal_encoder(config: dict) -> VocalEncoder | VocalEnsemble:
    """The vocal module a checkpoint's or manifest's ``model_config`` describes."""
    if 'members' in config:
        return VocalEnsemble(config['members'])
    return VocalEncoder(**config)
