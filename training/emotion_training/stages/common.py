"""Helpers shared by stages: class weights, batching, backbone freezing."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def class_weights(y: np.ndarray, n_classes: int, power: float) -> torch.Tensor:
    """Loss weights (count_mean / count_c) ** power; power 1 = fully balanced, 0 = none.

    Why: disgust is ~1.5 % of FER2013; without weighting the model never predicts it and UAR
    suffers.  Weights are normalised so the average sample weight stays 1.
    """
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    counts = np.maximum(counts, 1)
    w = (counts.mean() / counts) ** power
    w = w / (w * counts).sum() * counts.sum()
    return torch.tensor(w, dtype=torch.float32)


def balanced_indices(y: np.ndarray, n: int, gen: torch.Generator) -> np.ndarray:
    """Class-balanced sampling with replacement (each class equally likely)."""
    classes = np.unique(y)
    cls = classes[torch.randint(0, len(classes), (n,), generator=gen).numpy()]
    out = np.empty(n, np.int64)
    for c in classes:
        pos = np.nonzero(y == c)[0]
        m = cls == c
        out[m] = pos[torch.randint(0, len(pos), (int(m.sum()),), generator=gen).numpy()]
    return out


def batches(n: int, batch_size: int, gen: torch.Generator, shuffle: bool = True,
            order: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Index batches over range(n) (or over ``order``)."""
    idx = order if order is not None else (
        torch.randperm(n, generator=gen).numpy() if shuffle else np.arange(n))
    for i in range(0, len(idx), batch_size):
        yield idx[i:i + batch_size]


def set_trainable(module: nn.Module, trainable: bool) -> None:
    """Freeze/unfreeze a module; a frozen module's BatchNorm is kept in eval mode by ``FrozenBN``."""
    for p in module.parameters():
        p.requires_grad_(trainable)
    module._frozen = not trainable  # type: ignore[attr-defined]


def apply_frozen_eval(model: nn.Module) -> None:
    """Put frozen submodules in eval mode (call after model.train()) so BN stats do not drift."""
    for m in model.modules():
        if getattr(m, '_frozen', False):
            m.eval()


def reinit(module: nn.Module) -> None:
    """Re-initialise every layer of ``module`` that has reset_parameters (fresh backbone)."""
    for m in module.modules():
        if hasattr(m, 'reset_parameters') and m is not module:
            m.reset_parameters()


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512
            ) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, logits) of an encoder over a tensor, in eval mode without grad."""
    model.eval()
    embs, logits = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            e, lg = model(x[i:i + batch_size])
            embs.append(e.cpu().numpy())
            logits.append(lg.cpu().numpy())
    return np.concatenate(embs), np.concatenate(logits)


def parse_layers(text: str) -> list[int]:
    return [int(v) for v in text.split(',') if v.strip()]


def sequence_of(values: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> None:
    """Re-estimate BatchNorm running statistics on clean (un-augmented) inputs.

    Why: augmentation (random gain, SpecAugment masks) shifts the activation statistics that
    BatchNorm accumulates during training; evaluated with those running statistics the vocal
    encoder lost ~30 points of accuracy on its own training files.  Recomputing the statistics
    on clean inputs (cumulative average, no gradient) removes the mismatch.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or len(x) == 0:
        return
    saved = [(m.momentum, getattr(m, '_frozen', False)) for m in bns]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size])
    for m, (mom, _) in zip(bns, saved):
        m.momentum = mom
    model.train(was_training)


class EncoderStage:
    """What the vision and vocal stages share: mini-batches of their in-memory inputs ``x``/``y``
    (class-balanced order with ``balance == 'sampling'``), each passed through the subclass's
    ``augment_batch`` when ``augment`` > 0, optionally mixed up (``mixup`` = Beta alpha > 0), and
    class-weighted, label-smoothed cross-entropy on the encoder's logits."""

    augment_batch: Callable[[torch.Tensor, torch.Generator, float], torch.Tensor]
    #: mixup Beta(alpha, alpha) parameter; 0 = off.  Why: both sets are small for their models
    #: (EmoDB: 6 speakers per fold), and convex mixes of inputs and labels regularise.
    mixup: float = 0.0
    device: torch.device = torch.device('cpu')

    def to(self, device: torch.device) -> 'EncoderStage':
        """Move the model, its in-memory inputs and the loss weights to ``device`` (a GPU holds
        all of FER2013 at 48x48 in ~0.25 GB, so batches never cross the bus).  Labels, indices and
        random draws stay on the CPU, so a seeded run draws the same batches on any device."""
        self.device = torch.device(device)
        self.model.to(self.device)
        self.x, self.xv = self.x.to(self.device), self.xv.to(self.device)
        if self.weights is not None:
            self.weights = self.weights.to(self.device)
        return self

    def train_batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, ...]]:
        order = (balanced_indices(self.y, len(self.y), self.gen) if self.balance == 'sampling'
                 else None)
        for idx in batches(len(self.y), self.batch_size, self.gen, order=order):
            xb = self.x[idx]
            if self.augment > 0:
                xb = self.augment_batch(xb, self.gen, self.augment)
            yb = torch.from_numpy(self.y[idx]).to(self.device)
            if self.mixup > 0 and len(idx) > 1:
                yield mix_batch(xb, yb, self.mixup, self.gen)
            else:
                yield xb, yb

    def loss(self, batch):
        xb, yb = batch[0], batch[1]
        _, logits = self.model(xb)
        ce = F.cross_entropy(logits, yb, weight=self.weights, label_smoothing=self.smoothing)
        if len(batch) == 4:   # mixed: (x, y_a, y_b, lam)
            ce = batch[3] * ce + (1 - batch[3]) * F.cross_entropy(
                logits, batch[2], weight=self.weights, label_smoothing=self.smoothing)
        return ce, logits, yb


def mix_batch(x: torch.Tensor, y: torch.Tensor, alpha: float, gen: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al. 2018): lam * x + (1 - lam) * x[perm] with lam ~ Beta(alpha, alpha),
    drawn from ``gen`` so seeded runs repeat.  Returns (x_mixed, y, y[perm], lam)."""
    seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=gen))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(len(y), generator=gen)
    return lam * x + (1 - lam) * x[perm], y, y[perm], lam
