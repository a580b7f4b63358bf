"""Fusion head: an LSTM over time on the per-step concatenation of face and voice embeddings.

Why this shape: faces arrive at camera rate and voice windows only while someone speaks, so at any
step either modality may be missing.  Each step's input is ``[LN(vision)*vp, vp, LN(voice)*ap, ap]``
(LN = per-modality LayerNorm so neither encoder dominates by scale; vp/ap = presence flags in
{0, 1}); the LSTM carries evidence across steps when a modality drops out.  With
``prior_heads`` (the stream-trained head, stream_fusion.py) the encoders' own linear heads are
frozen inside the model and added to the LSTM's logits with a learnt gain and offset per class
and present modality, so the LSTM learns a correction to what the encoders already know rather
than relearning faces from a few hundred examples.  With ``head_inputs`` the LSTM reads the
encoders' opinions instead of their embeddings: each step's input is ``[log_softmax(vision
head(vision))*vp, vp, log_softmax(voice head(voice))*ap, ap]`` through the same frozen linear
heads, so the few faces and voices of the training streams cannot be memorised from 256 values
and the head learns only how far to trust and how to accumulate each encoder.  With
``vision_head_input`` only the vision part is read that way (``[log_softmax(vision
head(vision))*vp, vp, LN(voice)*ap, ap]``): for a vision ensemble whose logits are linear in its
embedding (the mean of its members' heads) and a vocal graph whose decision is not (a decision of
several encoders over the first one's embedding).  Valence/arousal is
``probabilities @ VA`` with the documented circumplex table (a fixed buffer, exported inside the
ONNX graph), so it is always consistent with the class probabilities.

This module needs torch (training/export only); the robot runs the exported ``fusion_step.onnx``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

FUSION_INPUTS = ['vision_embedding', 'vision_present', 'voice_embedding', 'voice_present', 'h', 'c']
FUSION_OUTPUTS = ['probabilities', 'valence_arousal', 'h_out', 'c_out']


class FusionModel(nn.Module):
    """Presence-masked LSTM fusion of vision and voice embeddings."""

    def __init__(self, vision_dim: int, voice_dim: int, num_classes: int,
                 va_table: Sequence[Sequence[float]], hidden_size: int = 64, num_layers: int = 1,
                 dropout: float = 0.2, prior_heads: bool = False,
                 head_inputs: bool = False, vision_head_input: bool = False) -> None:
        super().__init__()
        self.config = dict(vision_dim=vision_dim, voice_dim=voice_dim, num_classes=num_classes,
                           va_table=[list(map(float, r)) for r in va_table],
                           hidden_size=hidden_size, num_layers=num_layers, dropout=dropout,
                           prior_heads=bool(prior_heads), head_inputs=bool(head_inputs),
                           vision_head_input=bool(vision_head_input))
        if head_inputs and vision_head_input:
            raise ValueError('head_inputs already reads the vision head: give one of '
                             'head_inputs and vision_head_input')
        self.vision_norm = nn.LayerNorm(vision_dim)
        self.voice_norm = nn.LayerNorm(voice_dim)
        step_dim = (2 * num_classes + 2 if head_inputs else
                    num_classes + voice_dim + 2 if vision_head_input else
                    vision_dim + voice_dim + 2)
        self.proj = nn.Sequential(nn.Linear(step_dim, hidden_size), nn.ReLU(),
                                  nn.Dropout(dropout))
        self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)
        va = torch.tensor(va_table, dtype=torch.float32)
        if va.shape != (num_classes, 2):
            raise ValueError(f'va_table must be [{num_classes}, 2], got {tuple(va.shape)}')
        self.register_buffer('va', va)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.prior_heads = bool(prior_heads)
        self.head_inputs = bool(head_inputs)
        self.vision_head_input = bool(vision_head_input)
        if self.prior_heads or self.head_inputs or self.vision_head_input:
            # The encoders' own linear heads (embedding -> logits), frozen (set_prior_heads)
            self.register_buffer('prior_vision_w', torch.zeros(num_classes, vision_dim))
            self.register_buffer('prior_vision_b', torch.zeros(num_classes))
            self.register_buffer('prior_voice_w', torch.zeros(num_classes, voice_dim))
            self.register_buffer('prior_voice_b', torch.zeros(num_classes))
        if self.prior_heads:
            # the LSTM learns a correction on top of "vision head + voice head" with a learnt
            # gain and offset per class and modality, so it starts from what each encoder knows
            self.prior_gain = nn.Parameter(torch.ones(2, num_classes))
            self.prior_bias = nn.Parameter(torch.zeros(2, num_classes))
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def set_prior_heads(self, vision_w, vision_b, voice_w, voice_b) -> None:
        """The encoders' heads: logits = w @ embedding + b, per modality (prior_heads or
        head_inputs / vision_head_input only)."""
        if not (self.prior_heads or self.head_inputs or self.vision_head_input):
            raise ValueError('this FusionModel was built without prior_heads, head_inputs or '
                             'vision_head_input')
        for name, v in (('prior_vision_w', vision_w), ('prior_vision_b', vision_b),
                        ('prior_voice_w', voice_w), ('prior_voice_b', voice_b)):
            buf = getattr(self, name)
            t = torch.as_tensor(v, dtype=torch.float32)
            if t.shape != buf.shape:
                raise ValueError(f'{name}: expected {tuple(buf.shape)}, got {tuple(t.shape)}')
            buf.copy_(t)

    def step_input(self, ve: torch.Tensor, vp: torch.Tensor, ae: torch.Tensor,
                   ap: torch.Tensor) -> torch.Tensor:
        """The per-step fusion input (also what the collapse diagnostics measure)."""
        vp = vp.unsqueeze(-1).to(ve.dtype)
        ap = ap.unsqueeze(-1).to(ae.dtype)
        if self.head_inputs or self.vision_head_input:
            pv = torch.log_softmax(ve @ self.prior_vision_w.T + self.prior_vision_b, dim=-1)
            pa = (torch.log_softmax(ae @ self.prior_voice_w.T + self.prior_voice_b, dim=-1)
                  if self.head_inputs else self.voice_norm(ae))
            return torch.cat([pv * vp, vp, pa * ap, ap], dim=-1)
        return torch.cat([self.vision_norm(ve) * vp, vp, self.voice_norm(ae) * ap, ap], dim=-1)

    def forward(self, ve: torch.Tensor, vp: torch.Tensor, ae: torch.Tensor, ap: torch.Tensor,
                state: Optional[tuple[torch.Tensor, torch.Tensor]] = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Sequences: ve [N,T,Ev], vp [N,T], ae [N,T,Ea], ap [N,T] -> (logits [N,T,C], (h, c))."""
        x = self.proj(self.step_input(ve, vp, ae, ap))
        out, state = self.lstm(x, state)
        logits = self.head(out)
        if self.prior_heads:
            pv = ve @ self.prior_vision_w.T + self.prior_vision_b
            pa = ae @ self.prior_voice_w.T + self.prior_voice_b
            logits = (logits
                      + vp.unsqueeze(-1).to(ve.dtype) * (self.prior_gain[0] * pv + self.prior_bias[0])
                      + ap.unsqueeze(-1).to(ae.dtype) * (self.prior_gain[1] * pa + self.prior_bias[1]))
        return logits, state

    def step(self, ve: torch.Tensor, vp: torch.Tensor, ae: torch.Tensor, ap: torch.Tensor,
             h: torch.Tensor, c: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step for N tracks: ve [N,Ev], vp [N] ... h, c [L,N,H] -> (probs, va, h, c)."""
        logits, (h2, c2) = self.forward(ve.unsqueeze(1), vp.unsqueeze(1), ae.unsqueeze(1),
                                        ap.unsqueeze(1), (h, c))
        probs = torch.softmax(logits[:, 0], dim=-1)
        return probs, probs @ self.va, h2, c2


class FusionStep(nn.Module):
    """Wrapper whose forward is one step, for ONNX export with state in/out."""

    def __init__(self, model: FusionModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, ve, vp, ae, ap, h, c):  # noqa: D102 - see FusionModel.step
        return self.model.step(ve, vp, ae, ap, h, c)
