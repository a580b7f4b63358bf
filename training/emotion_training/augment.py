"""Training-time augmentation on already preprocessed tensors (faces and log-mel windows).

Applied after ``emotion_runtime.preprocess`` so the deterministic part of the pipeline stays
identical to the robot's; only random perturbations are added here.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment_faces(x: torch.Tensor, gen: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Random flip, rotation (+-10 deg), scale (+-10 %), shift (+-10 %), contrast/brightness and
    random erasing on a normalised batch [N,1,H,W].  Mimics face-detector jitter and lighting."""
    n = x.shape[0]
    r = lambda: torch.rand(n, generator=gen) * 2 - 1  # noqa: E731
    ang = r() * math.radians(10) * strength
    scale = 1 + r() * 0.1 * strength
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    tx, ty = r() * 0.1 * strength, r() * 0.1 * strength
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1),
                         torch.stack([sin * flip, cos, ty], 1)], 1).to(x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)
    contrast = (1 + r().view(n, 1, 1, 1) * 0.25 * strength).to(x.device)
    bright = (r().view(n, 1, 1, 1) * 0.25 * strength).to(x.device)
    x = x * contrast + bright
    # random erasing (occlusion by hands, glasses, hair)
    h, w = x.shape[-2:]
    erase = torch.rand(n, generator=gen) < 0.3 * strength
    for i in torch.nonzero(erase).flatten().tolist():
        eh = int(h * (0.15 + 0.2 * torch.rand(1, generator=gen).item()))
        ew = int(w * (0.15 + 0.2 * torch.rand(1, generator=gen).item()))
        y0 = int(torch.randint(0, h - eh + 1, (1,), generator=gen))
        x0 = int(torch.randint(0, w - ew + 1, (1,), generator=gen))
        x[i, :, y0:y0 + eh, x0:x0 + ew] = 0.0
    return x


def augment_logmel(x: torch.Tensor, gen: torch.Generator, strength: float = 1.0,
                   gain_std: float = 0.3) -> torch.Tensor:
    """SpecAugment-style masks (2 freq bands, 2 time spans), a random gain (constant offset in the
    normalised log domain: microphone distance) and small Gaussian noise on [N,1,M,T]."""
    n, _, m, t = x.shape
    x = x.clone()
    # random numbers come from the CPU generator ``gen`` (seeded runs repeat on any device)
    x = x + (torch.randn(n, 1, 1, 1, generator=gen) * gain_std * strength).to(x.device)
    x = x + (torch.randn(x.shape, generator=gen) * 0.05 * strength).to(x.device)
    fill = x.mean()
    for i in range(n):
        for _ in range(2):
            fw = int(torch.randint(0, max(1, int(m * 0.15 * strength)) + 1, (1,), generator=gen))
            f0 = int(torch.randint(0, m - fw + 1, (1,), generator=gen))
            x[i, :, f0:f0 + fw, :] = fill
            tw = int(torch.randint(0, max(1, int(t * 0.12 * strength)) + 1, (1,), generator=gen))
            t0 = int(torch.randint(0, t - tw + 1, (1,), generator=gen))
            x[i, :, :, t0:t0 + tw] = fill
    return x
