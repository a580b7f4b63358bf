"""``emotion-train vision-head``: a new label head for a bundle's vision encoder, fitted on its
frozen embedding.

The exported vision graph's logits are a linear map of its ``embedding`` output (each ensemble
member's head is linear; members and mirror views are averaged), so a softmax-regression head
fitted on that embedding is the same model family as the encoders' own heads.  It is how a
bundle's face model gets a new label list (six labels to seven: surprise) without retraining
the convolutional encoders, which needs hours of GPU time: the encoders stay byte for byte, int8
and all, and ``emotion-export --from-bundle B --vision-head OUT/head.npz`` grafts the head into
the graph (``export.graft_vision_head``).

Faces go through the robot's own path (``ModelBundle.encode_faces``: ``preprocess.face_to_input``
and the bundle's ONNX graph).  The head is fitted on faces the encoders never trained on: the
vision stage's holdout (``--holdout``, drawn by ``--holdout-seed`` as that stage draws it; the
shipped encoders used seed 0) and every training face of a label the bundle does not have yet.
On the encoders' own training faces the embedding is cleaner than on anything a robot sees: a
head fitted there scored holdout UAR 0.652 against 0.669 (5-fold, seven labels).  ``--select``
of those faces picks the step; the head is then scored on ``--faces-val`` (FER2013 PublicTest)
when given.  Writes ``head.npz`` (weight [C,E],
bias [C], labels), ``result.json`` and ``command.txt``.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import sys
from typing import Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from emotion_runtime.model_bundle import BundleError, ModelBundle

from .config import default_data_root
from .datasets.common import Sample, UnreadableImageError, read_face
from .datasets.folders import load_image_folders
from .face_data import stratified_holdout
from .labels import parse_labels
from .metrics import summarise


def embed_faces(bundle: ModelBundle, samples: Sequence[Sample], labels: Sequence[str],
                batch: int = 256, desc: str = 'faces') -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [N,E], y [N]) of ``samples`` through the bundle's vision graph; unreadable
    images are skipped with a message naming them."""
    idx = {k: i for i, k in enumerate(labels)}
    embs, ys, skipped = [], [], []
    for i in tqdm(range(0, len(samples), batch), desc=desc, file=sys.stderr, leave=False,
                  mininterval=2):
        crops, y = [], []
        for s in samples[i:i + batch]:
            try:
                crops.append(read_face(s.path))
            except UnreadableImageError as exc:
                skipped.append(f'{s.path}: {exc}')
                continue
            y.append(idx[s.label])
        if crops:
            embs.append(bundle.encode_faces(crops)[0])
            ys.append(np.array(y, np.int64))
    for msg in skipped:
        print(f'vision-head: skipped {msg}', file=sys.stderr)
    if not embs:
        raise ValueError('no readable faces')
    return np.concatenate(embs), np.concatenate(ys)


def fit_head(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray,
             labels: Sequence[str], balance_power: float = 0.75, weight_decay: float = 1e-4,
             steps: int = 600, lr: float = 0.01, seed: int = 0,
             log=lambda m: None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Class-weighted softmax regression (full batch, Adam) on standardised embeddings; the
    step with the best holdout UAR is kept.  Returns (weight [C,E], bias [C], best) in the
    units of the raw embedding (the standardisation is folded into the weights)."""
    n_cls = len(labels)
    counts = np.bincount(y, minlength=n_cls).astype(np.float64)
    missing = [lab for lab, c in zip(labels, counts) if c == 0]
    if missing:
        raise ValueError(f'no training faces of {missing}')
    mu, sd = x.mean(0), x.std(0) + 1e-6
    torch.manual_seed(seed)
    xt = torch.from_numpy((x - mu) / sd).float()
    xvt = torch.from_numpy((xv - mu) / sd).float()
    yt = torch.from_numpy(y)
    cw = torch.tensor((counts.mean() / counts) ** balance_power, dtype=torch.float32)
    lin = torch.nn.Linear(x.shape[1], n_cls)
    opt = torch.optim.Adam(lin.parameters(), lr=lr, weight_decay=weight_decay)
    best: dict = {'uar': -1.0}
    state = None
    for step in range(1, steps + 1):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(xt), yt, weight=cw)
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == steps:
            with torch.no_grad():
                pred = lin(xvt).argmax(1).numpy()
            s = summarise(yv, pred, labels)
            if s['uar'] > best['uar']:
                best = {'step': step, 'loss': loss.item(), **s}
                state = (lin.weight.detach().clone(), lin.bias.detach().clone())
            if step % 100 == 0:
                log(f'step {step}: loss {loss.item():.3f} selection acc {s["accuracy"]:.3f} '
                    f'uar {s["uar"]:.3f}')
    w, b = (t.numpy().astype(np.float64) for t in state)
    weight = w / sd                     # logits = ((e - mu) / sd) @ w.T + b
    bias = b - weight @ mu
    return weight.astype(np.float32), bias.astype(np.float32), best


def _brief(s: dict) -> dict:
    return {k: s[k] for k in ('n', 'accuracy', 'uar', 'macro_f1', 'per_class_recall') if k in s}


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    bundle = ModelBundle.load(args.bundle)
    labels = parse_labels(args.labels)
    data = pathlib.Path(args.data)
    faces = pathlib.Path(args.faces or data / 'fer2013' / 'train')
    samples = load_image_folders(faces, labels)
    if not samples:
        raise FileNotFoundError(f'--faces {faces}: no face images of {labels}')
    train, hold = stratified_holdout(samples, args.holdout, args.holdout_seed)
    # The encoders learnt their training faces, so their embedding of those is cleaner than of
    # any face the robot will see, and a head fitted on it trusts the wrong things.  The head is
    # fitted on faces the encoders never trained on: the holdout, plus the training faces of
    # labels the bundle does not have yet (its encoders never saw those classes at all).
    new_labels = [lab for lab in labels if lab not in bundle.labels]
    fit_set = hold + [s for s in train if s.label in new_labels]
    fit, sel = stratified_holdout(fit_set, args.select, args.seed)
    log = lambda m: print(f'[vision-head] {m}', file=sys.stderr, flush=True)  # noqa: E731
    log(f'bundle {bundle.manifest["version"]} at {bundle.path}; labels {labels} (new: '
        f'{new_labels or "none"}); fitting on {len(fit)} faces the encoders never trained on '
        f'(the holdout of seed {args.holdout_seed} and the training faces of new labels), '
        f'selecting on {len(sel)}')
    x, y = embed_faces(bundle, fit, labels, desc='fitting faces')
    xv, yv = embed_faces(bundle, sel, labels, desc='selection faces')
    w, b, best = fit_head(x, y, xv, yv, labels, args.balance_power, args.weight_decay,
                          args.steps, args.lr, args.seed, log)
    log(f'best selection step {best["step"]}: accuracy {best["accuracy"]:.4f} '
        f'UAR {best["uar"]:.4f}')
    result = {'bundle': str(bundle.path), 'bundle_version': bundle.manifest['version'],
              'labels': labels, 'selection': _brief(best), 'best_step': best['step']}
    if args.faces_val:
        vs = load_image_folders(args.faces_val, labels)
        xe, ye = embed_faces(bundle, vs, labels, desc='validation faces')
        s = summarise(ye, (xe @ w.T + b).argmax(1), labels)
        result['validation'] = {'faces': str(args.faces_val), **_brief(s)}
        log(f'{args.faces_val}: accuracy {s["accuracy"]:.4f} UAR {s["uar"]:.4f}')
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = 'emotion-train vision-head ' + ' '.join(shlex.quote(a) for a in args.argv)
    result['command'] = command
    (out / 'command.txt').write_text(command + '\n')
    result['data'] = (f'vision head: softmax regression on the frozen embedding of bundle '
                      f'{bundle.manifest["version"]}, fitted on {len(fit)} faces of {faces} '
                      f'that its encoders never trained on (holdout {args.holdout:g} of seed '
                      f'{args.holdout_seed}; every face of {new_labels or "no new label"}), '
                      f'selected on {len(sel)} more')
    np.savez(out / 'head.npz', weight=w, bias=b, labels=np.array(labels),
             training=json.dumps(result))
    (out / 'result.json').write_text(json.dumps(result, indent=1) + '\n')
    return result


def load_head(path: str | pathlib.Path) -> dict:
    """``head.npz`` -> ``{'weight', 'bias', 'labels', 'training'}`` (``export.replace_in_bundle``)."""
    with np.load(path, allow_pickle=False) as z:
        return {'weight': z['weight'], 'bias': z['bias'], 'labels': [str(v) for v in z['labels']],
                'training': json.loads(str(z['training']))}


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument('--bundle', default=None, help='bundle whose vision encoder is kept '
                   '(default: the shipped one)')
    p.add_argument('--data', default=str(default_data_root()),
                   help='data root (default $EMOTION_DATA or ../shared/data) [%(default)s]')
    p.add_argument('--faces', default=None,
                   help='training faces, class folders (default DATA/fer2013/train)')
    p.add_argument('--faces-val', default=None,
                   help='faces to score the head on once it is chosen (e.g. '
                        'DATA/fer2013/validation); never used for selection')
    p.add_argument('--labels', default=None,
                   help='comma list (default the seven angry,...,surprise)')
    p.add_argument('--holdout', type=float, default=0.1,
                   help='the vision stage\'s holdout share: those faces (never trained on) fit '
                        'the head [%(default)s]')
    p.add_argument('--holdout-seed', type=int, default=0,
                   help='draws the holdout as the vision stage does; give the seed the bundle\'s '
                        'encoders were trained with [%(default)s]')
    p.add_argument('--select', type=float, default=0.2,
                   help='share of the fitting faces kept apart to pick the step [%(default)s]')
    p.add_argument('--balance-power', type=float, default=0.75,
                   help='class weight = (mean count / class count) ** power [%(default)s]')
    p.add_argument('--weight-decay', type=float, default=1e-4)
    p.add_argument('--steps', type=int, default=600, help='full-batch Adam steps [%(default)s]')
    p.add_argument('--lr', type=float, default=0.01)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    p.add_argument('--out', default='runs/vision_head', help='output folder [%(default)s]')


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog='emotion-train vision-head', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_args(p)
    argv = sys.argv[2:] if argv is None else argv
    args = p.parse_args(argv)
    args.argv = list(argv)
    try:
        res = run(args)
    except (BundleError, FileNotFoundError, ValueError) as exc:
        print(f'emotion-train vision-head: {exc}', file=sys.stderr)
        return 2
    print(json.dumps({k: res[k] for k in ('selection', 'validation') if k in res}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
