"""Training-time augmentation on already preprocessed tensors (faces and log-mel windows).

Applied after ``emotion_runtime.preprocess`` so the deterministic part of the pipeline stays
identical to the robot's; only random perturbations are added here.
"""
from __future__ import annotations

import math

import numpy as np
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


def mel_band_hz(n_mels: int, fmin: float, fmax: float) -> torch.Tensor:
    """Centre frequency [Hz] of each mel band of ``emotion_runtime.preprocess.mel_filterbank``
    (Slaney mel scale, band edges equally spaced in mel)."""
    from emotion_runtime.preprocess import mel_band_edges  # noqa: PLC0415
    return torch.as_tensor(mel_band_edges(fmin, fmax, n_mels)[1:-1], dtype=torch.float32)


def warp_logmel(x: torch.Tensor, gen: torch.Generator, band_hz: torch.Tensor,
                max_warp: float = 0.1, max_stretch: float = 0.1) -> torch.Tensor:
    """Vocal-tract-length and speaking-rate perturbation of log-mel windows [N,1,M,T].

    Why: the voice model learns from 14 speakers, and a new speaker's formants sit elsewhere
    (vocal tract length) and their syllables come at another rate.  Per window, one frequency
    factor is drawn uniformly in [1 - max_warp, 1 + max_warp] and one time factor in
    [1 - max_stretch, 1 + max_stretch] (``scale_logmel``).  Either 0 = that one off."""
    n = x.shape[0]
    if n == 0 or (max_warp <= 0 and max_stretch <= 0):
        return x
    warp = 1 + (torch.rand(n, generator=gen) * 2 - 1) * max(max_warp, 0.0)
    stretch = 1 + (torch.rand(n, generator=gen) * 2 - 1) * max(max_stretch, 0.0)
    return scale_logmel(x, band_hz, warp, stretch)


def scale_logmel(x: torch.Tensor, band_hz: torch.Tensor, warp: torch.Tensor,
                 stretch: torch.Tensor) -> torch.Tensor:
    """Log-mel windows [N,1,M,T] with window i's frequencies scaled by ``warp[i]`` (the band at f
    reads what the window had at f / warp: formants move up for warp > 1; ``band_hz``: each
    band's centre, ``mel_band_hz``) and its time by ``stretch[i]`` about the window's centre
    (an event at frame c + d moves to c + d * stretch); linear interpolation, edges repeated."""
    from emotion_runtime.preprocess import _hz_to_mel  # noqa: PLC0415
    n, _, m, t = x.shape
    mel = np.asarray(_hz_to_mel(band_hz.double().numpy()), np.float64)
    src_hz = band_hz.double().numpy()[None, :] / warp.double().numpy()[:, None]   # [N, M]
    # fractional band index of each source frequency (band centres equally spaced in mel)
    step = (mel[-1] - mel[0]) / max(m - 1, 1)
    fy = torch.as_tensor((_hz_to_mel(src_hz) - mel[0]) / step, dtype=torch.float32)
    tc = (t - 1) / 2.0
    fx = (torch.arange(t, dtype=torch.float32)[None, :] - tc) / stretch.float()[:, None] + tc
    gy = (2 * fy / max(m - 1, 1) - 1)[:, :, None].expand(n, m, t)
    gx = (2 * fx / max(t - 1, 1) - 1)[:, None, :].expand(n, m, t)
    grid = torch.stack([gx, gy], -1).to(x.device, x.dtype)
    return F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=True)


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
