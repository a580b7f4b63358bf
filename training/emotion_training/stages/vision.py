"""Vision stage: train the ResNet face encoder on class-folder faces (FER2013 layout)."""
from __future__ import annotations

import argparse
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emotion_training.models.vision_encoder import VisionEncoder

from ..augment import augment_faces
from ..config import VISION_PREPROCESS
from ..datasets import load_image_folders
from ..encoder_checkpoint import load_vision
from ..engine import load_checkpoint
from ..face_data import faces_to_arrays, stratified_holdout
from ..splits import check_face_split, face_split, holdout_seed
from .common import EncoderStage, class_weights, predict


class VisionStage(EncoderStage):
    """Faces in memory, weighted CE with label smoothing, batch augmentation."""

    name = 'vision'
    augment_batch = staticmethod(augment_faces)

    def __init__(self, model: VisionEncoder, labels: list[str], x: np.ndarray, y: np.ndarray,
                 xv: np.ndarray, yv: np.ndarray, gen: torch.Generator, batch_size: int = 128,
                 balance: str = 'weights', balance_power: float = 0.5, smoothing: float = 0.1,
                 augment: float = 1.0, vision: dict | None = None,
                 split: dict | None = None, mixup: float = 0.0) -> None:
        self.model, self.labels = model, labels
        self.mixup = mixup
        self.x, self.y = torch.from_numpy(x), y
        self.xv, self.yv = torch.from_numpy(xv), yv
        self.gen, self.batch_size, self.balance = gen, batch_size, balance
        self.augment, self.smoothing = augment, smoothing
        self.weights = (class_weights(y, len(labels), balance_power) if balance == 'weights'
                        else None)
        self.vision = dict(vision or VISION_PREPROCESS)
        self.split = split or {}

    #: a frozen teacher (VisionEncoder or VisionEnsemble, mirror TTA on) for distillation; None
    #: = off.  Why: a wider or ensembled teacher that is too slow for the robot can pass on its
    #: softer, more informative targets to an encoder that fits the 2 ms budget.
    teacher: nn.Module | None = None
    distill_weight: float = 0.5
    distill_temperature: float = 2.0

    def set_teacher(self, teacher: nn.Module, weight: float, temperature: float) -> None:
        if not 0.0 <= weight <= 1.0 or temperature <= 0:
            raise SystemExit(f'--distill-weight must be in [0, 1] and --distill-temperature > 0 '
                             f'(got {weight}, {temperature})')
        teacher.eval()
        teacher.set_flip_tta(True)
        for q in teacher.parameters():
            q.requires_grad_(False)
        self.teacher = teacher.to(self.device)
        self.distill_weight, self.distill_temperature = weight, temperature

    def to(self, device: torch.device) -> 'VisionStage':
        super().to(device)
        if self.teacher is not None:
            self.teacher.to(self.device)
        return self

    def loss(self, batch):
        """Cross-entropy (EncoderStage), blended with the teacher's temperature-softened
        distribution (Hinton et al. 2015: KL * T^2) where a teacher is set."""
        ce, logits, yb = super().loss(batch)
        if self.teacher is None or self.distill_weight == 0:
            return ce, logits, yb
        T = self.distill_temperature
        with torch.no_grad():
            _, target = self.teacher(batch[0])
        kd = F.kl_div(F.log_softmax(logits / T, -1), F.softmax(target / T, -1),
                      reduction='batchmean') * T * T
        return (1 - self.distill_weight) * ce + self.distill_weight * kd, logits, yb

    def evaluate(self):
        emb, logits = predict(self.model, self.xv)
        return self.yv, logits.argmax(1), {'embedding': emb, 'logits': logits}

    def checkpoint_extra(self) -> dict:
        return {'model_config': self.model.config, 'preprocess': self.vision, 'split': self.split}


def add_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group('vision stage')
    g.add_argument('--faces-train', help='class-folder faces for training '
                   '(default DATA/fer2013/train)')
    g.add_argument('--faces-val', help='class-folder faces for early stopping; default: a '
                   'stratified --holdout fraction of the training folder (the FER2013 validation '
                   'split then stays unseen for the reported test)')
    g.add_argument('--holdout', type=float, default=0.1)
    g.add_argument('--holdout-seed', type=int, default=None,
                   help='seed that draws the --holdout faces (default: --seed). Give ensemble '
                   'members different --seed and one --holdout-seed, so that all of them are '
                   'selected and compared on faces none of them trained on')
    g.add_argument('--input-size', type=int, default=VISION_PREPROCESS['input_size'])
    g.add_argument('--vision-layers', default='2,2,2,2', help='BasicBlocks per stage')
    g.add_argument('--vision-widths', default='32,64,128,256')
    g.add_argument('--vision-stem-stride', type=int, default=2)
    g.add_argument('--vision-embedding', type=int, default=128)
    g.add_argument('--teacher', default=None,
                   help='distil from this vision checkpoint (several joined by commas: their '
                   'ensemble), run frozen with mirror TTA on every training batch')
    g.add_argument('--distill-weight', type=float, default=0.5,
                   help='share of the distillation term in the loss (rest: cross-entropy)')
    g.add_argument('--distill-temperature', type=float, default=2.0,
                   help='softmax temperature of teacher and student in the distillation term')
    g.add_argument('--max-faces', type=int, default=None, help='cap on training faces (smoke runs)')


def build_model(args, n_classes: int) -> VisionEncoder:
    return VisionEncoder(n_classes, embedding_size=args.vision_embedding,
                         layers=[int(v) for v in args.vision_layers.split(',')],
                         widths=[int(v) for v in args.vision_widths.split(',')],
                         stem_stride=args.vision_stem_stride)


def make_stage(args, labels: list[str], gen: torch.Generator, log) -> VisionStage:
    data = pathlib.Path(args.data)
    train_dir = pathlib.Path(args.faces_train) if args.faces_train else data / 'fer2013' / 'train'
    vision = dict(VISION_PREPROCESS, input_size=args.input_size)
    samples = load_image_folders(train_dir, labels)
    if not samples:
        raise SystemExit(f'no face images for labels {labels} under {train_dir}')
    if args.faces_val:
        train, val = samples, load_image_folders(args.faces_val, labels)
    else:
        train, val = stratified_holdout(samples, args.holdout, holdout_seed(args))
    if args.max_faces and len(train) > args.max_faces:
        rng = np.random.default_rng(args.seed)
        train = [train[i] for i in rng.choice(len(train), args.max_faces, replace=False)]
        n_val = max(args.max_faces // 5, 2 * len(labels))
        if len(val) > n_val:
            val = [val[i] for i in rng.choice(len(val), n_val, replace=False)]
    log(f'[vision] {len(train)} training faces from {train_dir}, {len(val)} validation faces')
    split = face_split(train_dir, args.faces_val, args.holdout, holdout_seed(args))
    if args.init_vision and 'vision' not in args.reinit.split(','):
        check_face_split(load_checkpoint(args.init_vision), split, args.init_vision,
                         lambda m: log(f'[vision] {m}'))
    x, y = faces_to_arrays(train, labels, vision, 'load train faces')
    xv, yv = faces_to_arrays(val, labels, vision, 'load val faces')
    log(f'[vision] class counts {dict(zip(labels, np.bincount(y, minlength=len(labels)).tolist()))}')
    model = build_model(args, len(labels))
    stage = VisionStage(model, labels, x, y, xv, yv, gen, batch_size=args.batch_size,
                       balance=args.balance, balance_power=args.balance_power,
                       smoothing=args.label_smoothing, augment=args.augment, vision=vision,
                       split=split, mixup=args.mixup)
    if args.teacher:
        teacher, meta = load_vision(args.teacher)
        if list(meta['labels']) != list(labels):
            raise SystemExit(f'--teacher labels {meta["labels"]} differ from {labels}')
        if meta['preprocess'] != vision:
            raise SystemExit(f'--teacher preprocessing {meta["preprocess"]} differs from this '
                             f'run\'s {vision}')
        check_face_split(meta, split, args.teacher, lambda m: log(f'[vision] teacher: {m}'))
        stage.set_teacher(teacher, args.distill_weight, args.distill_temperature)
        log(f'[vision] distilling from {args.teacher} (weight {args.distill_weight}, '
            f'temperature {args.distill_temperature})')
    return stage
