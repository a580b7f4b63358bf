"""``emotion-train``: train the vision encoder, the vocal encoder, the fusion head, or all end to end.

Examples::

    emotion-train vision --epochs 30 --out runs/vision
    emotion-train vocal --val-speakers 14,15 --out runs/vocal
    emotion-train vocal --cv --out runs/vocal_cv           # leave-speakers-out CV report
    emotion-train fusion --init-vision runs/vision/best.pt --init-vocal runs/vocal/best.pt
    emotion-train end2end --init-fusion runs/fusion/best.pt --unfreeze vision --lr 1e-4
    emotion-train vision --seed 1 --holdout-seed 0 --out runs/vision_b   # 2nd ensemble member
    emotion-train fusion --init-vision runs/vision/best.pt,runs/vision_b/best.pt ...
    emotion-train fusion --init-vocal runs/vocal/best.pt,runs/vocal_b/best.pt ...   # idem
    emotion-train vision --teacher runs/wide/best.pt --distill-weight 0.5 --out runs/student
    emotion-train fusion --pairs SEMAINE_ROOT ...   # real pairs with valence/arousal traces
    emotion-train stream-fusion --out runs/stream_fusion   # the head, on replayed streams
                                                           # (emotion-train stream-fusion --help)
    emotion-train vision-head --out runs/vision_head      # a new label head on a bundle's frozen
                                                           # vision embedding (... vision-head --help)

Every run writes ``OUT/metrics.csv`` (one row per epoch), ``OUT/curves.png`` (loss, accuracy/UAR
and feature variance per epoch), ``OUT/last.pt`` (resume with ``--resume OUT/last.pt``:
optimizer, schedule and random state continue as if never stopped),
``OUT/best.pt`` (best validation UAR), ``OUT/command.txt``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pathlib
import shlex
import sys
import time

import torch

from .config import default_data_root
from .diagnostics import DEFAULT_THRESHOLD
from .engine import FitConfig, fit, load_checkpoint
from .labels import parse_labels
from .seeding import seed_everything
from .stages.common import reinit, set_trainable

STAGES = ('vision', 'vocal', 'fusion', 'end2end')


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='emotion-train', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('stage', choices=STAGES,
                   help='what to train (also stream-fusion and vision-head: see '
                   'emotion-train stream-fusion --help, emotion-train vision-head --help)')
    p.add_argument('--data', default=str(default_data_root()),
                   help='data root (default $EMOTION_DATA or ../shared/data) [%(default)s]')
    p.add_argument('--labels', default=None, help='comma-separated label set (aliases ok); '
                   'default the seven angry,disgust,fear,happy,neutral,sad,surprise (a corpus '
                   'without some of them trains with its label mask: labels.CORPUS_LABELS)')
    p.add_argument('--out', default='runs/STAGE', help='output folder [%(default)s]')
    p.add_argument('--epochs', type=int, default=30)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--lr', type=float, default=0.05, help='peak learning rate (one-cycle)')
    p.add_argument('--optimizer', choices=('sgd', 'adamw'), default='sgd')
    p.add_argument('--weight-decay', type=float, default=5e-4)
    p.add_argument('--patience', type=int, default=8, help='early stopping on validation UAR')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    p.add_argument('--device', default='auto', help='vision/vocal stages: cpu, cuda, cuda:N or '
                   'auto (= cuda where torch sees a GPU, else cpu); fusion/end2end run on the CPU')
    p.add_argument('--bf16', action='store_true',
                   help='bfloat16 autocast for the training forward pass and loss (weights, '
                        'optimizer and validation stay float32): ~2x faster on a GPU with bf16 '
                        'tensor cores (Ampere or later); slower on most CPUs')
    p.add_argument('--balance', choices=('weights', 'sampling', 'none'), default='weights',
                   help='class balancing: weighted loss or balanced sampling')
    p.add_argument('--balance-power', type=float, default=0.5,
                   help='loss weight = (mean count / class count) ** power')
    p.add_argument('--label-smoothing', type=float, default=0.1)
    p.add_argument('--augment', type=float, default=1.0, help='augmentation strength (0 = off)')
    p.add_argument('--mixup', type=float, default=0.0, help='vision/vocal: mixup Beta(alpha, '
                   'alpha) on inputs and labels; 0 = off, 0.2-0.4 typical')
    p.add_argument('--resume', help='resume from a last.pt of the same stage')
    p.add_argument('--init-vision', help='start the vision encoder from this checkpoint '
                   '(fusion/end2end: several joined by commas form an ensemble)')
    p.add_argument('--init-vocal', help='start the vocal encoder from this checkpoint '
                   '(fusion/end2end: several joined by commas form an ensemble)')
    p.add_argument('--init-fusion', help='start the fusion head (end2end) from this checkpoint')
    p.add_argument('--freeze', default='', help='comma list of vision,vocal,fusion to freeze')
    p.add_argument('--unfreeze', default='', help='comma list to train even where the stage '
                   'freezes by default (fusion freezes both encoders)')
    p.add_argument('--reinit', default='', help='comma list of parts to re-initialise after '
                   'loading (fresh backbone)')
    p.add_argument('--collapse-threshold', type=float, default=DEFAULT_THRESHOLD,
                   help='warn when across-batch variance of an output falls below this')
    p.add_argument('--stop-on-collapse', action='store_true',
                   help='abort training when the collapse alarm fires')
    p.add_argument('--max-batches', type=int, default=None, help='batches per epoch cap (smoke)')
    p.add_argument('--quiet', action='store_true', help='no progress bars')
    for mod in ('vision', 'vocal', 'fusion'):
        importlib.import_module(f'.stages.{mod}', __package__).add_args(p)
    return p


def _parts(text: str) -> set[str]:
    parts = {t.strip() for t in text.split(',') if t.strip()}
    bad = parts - {'vision', 'vocal', 'fusion'}
    if bad:
        raise SystemExit(f'unknown part(s) {sorted(bad)}: use vision, vocal, fusion')
    return parts


def resolve_device(name: str) -> torch.device:
    """``--device`` as a torch.device; a clear error where the GPU asked for is not there."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise SystemExit(f'--device {name!r}: {exc}') from exc
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit(f'--device {name}: torch {torch.__version__} sees no CUDA GPU here '
                         '(use --device cpu)')
    return dev


def make_optimizer(args, model: torch.nn.Module, steps_per_epoch: int):
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SystemExit('nothing to train: every part is frozen')
    if args.optimizer == 'sgd':
        opt = torch.optim.SGD(params, lr=args.lr, momentum=0.9, nesterov=True,
                              weight_decay=args.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    # OneCycleLR divides by zero when its warm-up ends on step 0 (0.2 * total == 1, a 5-step
    # smoke run); plan at least 10 steps: a shorter run then simply stops before the annealing ends.
    total = max(10, args.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total,
                                                pct_start=0.2)
    return opt, sched


def configure_parts(args, parts: dict[str, torch.nn.Module], default_frozen: set[str],
                    load: bool = True) -> None:
    """Apply --init-* (when ``load``), --reinit, --freeze/--unfreeze to the named parts."""
    for name, module in parts.items():
        init = getattr(args, f'init_{name}', None)
        if load and init and name not in _parts(args.reinit):
            ck = load_checkpoint(init)
            module.load_state_dict(ck['model'])
            log(f'[{args.stage}] {name} initialised from {init} (epoch {ck.get("epoch")})')
        if name in _parts(args.reinit):
            reinit(module)
            log(f'[{args.stage}] {name} re-initialised')
    frozen = (default_frozen | _parts(args.freeze)) - _parts(args.unfreeze)
    for name, module in parts.items():
        set_trainable(module, name not in frozen)
    log(f'[{args.stage}] frozen: {sorted(frozen & set(parts)) or "none"}')


#: what ensemble members of an encoder stage must share (the ``--init-*`` refusal says it)
_MEMBER_SPLIT = {'vision': 'one --holdout-seed', 'vocal': 'the same speakers'}


def refuse_ensemble_init(args) -> None:
    """An encoder stage trains one encoder: comma-joined ``--init-vision``/``--init-vocal`` (an
    ensemble, fine for fusion and export) is refused before any data is loaded."""
    init = getattr(args, f'init_{args.stage}', None) if args.stage in _MEMBER_SPLIT else None
    if init and ',' in init:
        raise SystemExit(f'the {args.stage} stage trains one encoder: train ensemble members one '
                         f'by one (different --seed, {_MEMBER_SPLIT[args.stage]}) and join them '
                         f'with commas in fusion --init-{args.stage} and emotion-export '
                         f'--{args.stage}')


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['stream-fusion']:      # its own options: stream_fusion.py
        from .stream_fusion import main as stream_fusion_main  # noqa: PLC0415 - bag tools
        return stream_fusion_main(argv[1:])
    if argv[:1] == ['voiceprint']:         # its own options: voiceprint.py
        from .voiceprint import main as voiceprint_main  # noqa: PLC0415
        return voiceprint_main(argv[1:])
    if argv[:1] == ['vision-head']:        # its own options: vision_head.py
        from .vision_head import main as vision_head_main  # noqa: PLC0415
        return vision_head_main(argv[1:])
    args = build_parser().parse_args(argv)
    refuse_ensemble_init(args)
    args.labels_list = parse_labels(args.labels)
    torch.set_num_threads(args.threads)
    gen = seed_everything(args.seed)
    out = pathlib.Path(args.out.replace('STAGE', args.stage))
    out.mkdir(parents=True, exist_ok=True)
    args.out = str(out)
    command = 'emotion-train ' + ' '.join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    (out / 'command.txt').write_text(command + '\n')
    stage_mod = importlib.import_module(
        f'.stages.{"fusion" if args.stage == "end2end" else args.stage}', __package__)
    args.torch_device = resolve_device(args.device)
    if args.stage in ('fusion', 'end2end'):
        args.torch_device = torch.device('cpu')
    if args.torch_device.type == 'cuda':
        torch.backends.cudnn.benchmark = True     # fixed input shapes: pick the fastest kernels
    log(f'[{args.stage}] device {args.torch_device}{", bf16 autocast" if args.bf16 else ""}')
    t0 = time.time()
    if args.stage == 'vocal' and getattr(args, 'cv', False):
        result = stage_mod.cross_validate(args, args.labels_list, gen, log)
    else:
        stage = stage_mod.make_stage(args, args.labels_list, gen, log)
        if hasattr(stage, 'parts'):
            configure_parts(args, stage.parts(), stage.default_frozen(), load=False)
        elif args.stage == 'vision':
            configure_parts(args, {'vision': stage.model}, set())
            stage.to(args.torch_device)
        elif args.stage == 'vocal':
            configure_parts(args, {'vocal': stage.model}, set())
            stage.to(args.torch_device)
        steps = stage.steps_per_epoch() if hasattr(stage, 'steps_per_epoch') else \
            -(-len(stage.y) // args.batch_size)
        if args.max_batches:
            steps = min(steps, args.max_batches)
        opt, sched = make_optimizer(args, stage.model, steps)
        cfg = FitConfig(epochs=args.epochs, out_dir=out, patience=args.patience,
                        collapse_threshold=args.collapse_threshold,
                        stop_on_collapse=args.stop_on_collapse,
                        resume=pathlib.Path(args.resume) if args.resume else None,
                        max_batches=args.max_batches, quiet=args.quiet,
                        steps_per_epoch=steps, bf16=args.bf16)
        result = fit(stage, opt, sched, cfg, log)
        if hasattr(stage, 'heldout_report'):
            # the final weights (last epoch run) on the validation speakers: per corpus and
            # pooled, with and without speaker calibration (vocal stage)
            result['heldout'] = dict(stage.heldout_report(), weights='last epoch')
            log(f'[{args.stage}] held-out UAR (last epoch): ' + '; '.join(
                f'{mode}: ' + ', '.join(f'{k} {v["uar"]:.3f}' for k, v in block.items()
                                        if isinstance(v, dict))
                for mode, block in result['heldout'].items() if isinstance(block, dict)))
    result['command'] = command
    result['wall_seconds'] = round(time.time() - t0, 1)
    (out / 'result.json').write_text(json.dumps(result, indent=1))
    log(f'[{args.stage}] done in {result["wall_seconds"]}s: best UAR {result.get("best_uar")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
