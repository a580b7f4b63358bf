"""Several independently trained encoders of one modality, run as one module (one ONNX graph).

Why: FER2013 faces and EmoDB utterances are few and noisy, and single networks over-fit them
(train accuracy far above held-out accuracy).  Members trained from different seeds make
different mistakes, so the mean of their logits is more accurate than any one of them.  The
embedding is the concatenation of the members' embeddings (averaging two unrelated feature spaces
would mix unrelated units), so the fusion head sees every member's features.

``VisionEnsemble`` and ``VocalEnsemble`` (in the encoders' modules) are this class with their
member type; their ``config`` is what checkpoints and bundle manifests record.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn


class EncoderEnsemble(nn.Module):
    """Members built by ``member`` from their configs; (embedding, logits) like one encoder."""

    def __init__(self, members: Sequence[dict], member: Callable[..., nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError('an ensemble needs at least two member configs')
        classes = {int(c['num_classes']) for c in members}
        if len(classes) != 1:
            raise ValueError(f'ensemble members disagree on the class count: {sorted(classes)}')
        self.members = nn.ModuleList(member(**dict(c)) for c in members)

    @property
    def config(self) -> dict:
        """Checkpoint/manifest description; the modality's ``build_*_encoder`` rebuilds it."""
        return dict(members=[dict(m.config) for m in self.members],
                    num_classes=self.members[0].config['num_classes'],
                    embedding_size=sum(m.config['embedding_size'] for m in self.members))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [m(x) for m in self.members]
        emb = torch.cat([e for e, _ in outs], dim=1)
        logits = torch.stack([lg for _, lg in outs]).mean(0)
        return emb, logits
