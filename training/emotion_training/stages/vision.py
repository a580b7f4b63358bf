"""Vision stage: train the ResNet face encoder on class-folder faces (FER2013 layout)."""
from __future__ import annotations

import argparse
import pathlib

import numpy as np
import torch

from emotion_perception.models.vision_encoder import VisionEncoder

from ..augment import augment_faces
from ..config import VISION_PREPROCESS
from ..datasets import load_image_folders
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
    if args.init_vision and ',' in args.init_vision:
        raise SystemExit('the vision stage trains one encoder: train ensemble members one by one '
                         '(different --seed, one --holdout-seed) and join them with commas in '
                         'fusion --init-vision and emotion-export --vision')
    if args.init_vision and 'vision' not in args.reinit.split(','):
        check_face_split(load_checkpoint(args.init_vision), split, args.init_vision,
                         lambda m: log(f'[vision] {m}'))
    x, y = faces_to_arrays(train, labels, vision, 'load train faces')
    xv, yv = faces_to_arrays(val, labels, vision, 'load val faces')
    log(f'[vision] class counts {dict(zip(labels, np.bincount(y, minlength=len(labels)).tolist()))}')
    model = build_model(args, len(labels))
    return VisionStage(model, labels, x, y, xv, yv, gen, batch_size=args.batch_size,
                       balance=args.balance, balance_power=args.balance_power,
                       smoothing=args.label_smoothing, augment=args.augment, vision=vision,
                       split=split, mixup=args.mixup)
