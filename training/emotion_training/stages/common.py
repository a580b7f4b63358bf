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

    #: per training sample, which labels its corpus can express ([N, C] bool numpy), or None
    #: (every label everywhere: plain cross-entropy).  Set by the vocal stage when corpora with
    #: different label sets are pooled (EmoDB has no surprise); see ``masked_cross_entropy``.
    label_masks: np.ndarray | None = None

    def train_batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, ...]]:
        """(x, y) or, mixed up, (x, y_a, y_b, lam); with ``label_masks`` the batch's masks
        follow as one more element (mixed: the union of the two clips' masks)."""
        order = (balanced_indices(self.y, len(self.y), self.gen) if self.balance == 'sampling'
                 else None)
        masks = self.label_masks
        for idx in batches(len(self.y), self.batch_size, self.gen, order=order):
            xb = self.x[idx]
            if self.augment > 0:
                xb = self.augment_batch(xb, self.gen, self.augment)
            yb = torch.from_numpy(self.y[idx]).to(self.device)
            mb = None if masks is None else torch.from_numpy(masks[idx]).to(self.device)
            if self.mixup > 0 and len(idx) > 1:
                yield mix_batch(xb, yb, self.mixup, self.gen, mb)
            else:
                yield (xb, yb) if mb is None else (xb, yb, mb)

    def loss(self, batch):
        xb, yb = batch[0], batch[1]
        mixed = len(batch) in (4, 5)          # (x, y_a, y_b, lam[, mask])
        mask = batch[-1] if len(batch) in (3, 5) else None
        _, logits = self.model(xb)
        ce = masked_cross_entropy(logits, yb, mask, self.weights, self.smoothing)
        if mixed:
            ce = batch[3] * ce + (1 - batch[3]) * masked_cross_entropy(
                logits, batch[2], mask, self.weights, self.smoothing)
        return ce, logits, yb


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                         mask: torch.Tensor | None = None, weight: torch.Tensor | None = None,
                         smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy over the labels each sample's corpus can express.

    ``mask`` [N, C] bool (True = the sample's corpus has that label; the target's own label must
    be True).  The softmax runs over the allowed labels only, so a label the corpus lacks (EmoDB:
    surprise) gets no gradient from that sample at all -- neither pushed down as a wrong class nor
    given label-smoothing mass, which is spread over the allowed labels.  ``weight`` = per-class
    loss weights (mean weighted by the targets' weights, as torch's weighted mean).  Without a
    mask, or with an all-True one, this is ``F.cross_entropy`` itself (bit-identical runs).
    """
    if mask is None or bool(mask.all()):
        return F.cross_entropy(logits, target, weight=weight, label_smoothing=smoothing)
    mask = mask.to(torch.bool)
    logp = F.log_softmax(logits.float().masked_fill(~mask, float('-inf')), dim=-1)
    logp = logp.masked_fill(~mask, 0.0)          # 0 * -inf would be NaN
    allowed = mask.float()
    q = smoothing * allowed / allowed.sum(-1, keepdim=True).clamp(min=1)
    q = q + (1 - smoothing) * F.one_hot(target, logits.shape[-1]).float()
    per_sample = -(q * logp).sum(-1)
    w = weight[target] if weight is not None else torch.ones_like(per_sample)
    return (w * per_sample).sum() / w.sum().clamp(min=1e-12)


def mix_batch(x: torch.Tensor, y: torch.Tensor, alpha: float, gen: torch.Generator,
              mask: torch.Tensor | None = None) -> tuple:
    """Mixup (Zhang et al. 2018): lam * x + (1 - lam) * x[perm] with lam ~ Beta(alpha, alpha),
    drawn from ``gen`` so seeded runs repeat.  Returns (x_mixed, y, y[perm], lam), and with
    label ``mask`` [N, C] also mask | mask[perm] (a mix can have either clip's labels)."""
    seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=gen))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(len(y), generator=gen)
    mixed = (lam * x + (1 - lam) * x[perm], y, y[perm], lam)
    return mixed if mask is None else (*mixed, mask | mask[perm.to(mask.device)])
