"""The training loop shared by all stages: epochs, early stopping on validation UAR, checkpoints,
per-epoch CSV (and TensorBoard when importable), tqdm progress and collapse diagnostics."""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import pathlib
import random
import sys
import time
import warnings
from typing import Any, Callable, Iterable, Optional, Protocol

import numpy as np
import torch
from tqdm import tqdm

from .curves import plot_curves
from .diagnostics import DEFAULT_THRESHOLD, FeatureCollapseError, check_collapse, format_stats
from .metrics import summarise


class Stage(Protocol):
    """What a training stage provides to ``fit``."""

    name: str
    labels: list[str]
    model: torch.nn.Module

    def train_batches(self, epoch: int) -> Iterable[Any]: ...
    def loss(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...
    def evaluate(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]: ...
    def checkpoint_extra(self) -> dict: ...


@dataclasses.dataclass
class FitConfig:
    epochs: int
    out_dir: pathlib.Path
    patience: int = 8
    collapse_threshold: float = DEFAULT_THRESHOLD
    stop_on_collapse: bool = False
    resume: Optional[pathlib.Path] = None
    max_batches: Optional[int] = None
    quiet: bool = False
    steps_per_epoch: int = 0
    bf16: bool = False          # bfloat16 autocast of the training forward pass and loss


def _tensorboard(out_dir: pathlib.Path):
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - tensorboard is optional
        return SummaryWriter(str(out_dir / 'tb'))
    except Exception:  # noqa: BLE001 - tensorboard not installed: CSV only
        return None


def save_checkpoint(path: pathlib.Path, payload: dict) -> None:
    """Atomic save (write temp then rename) so an interrupted run never leaves a torn file."""
    tmp = path.with_suffix('.tmp')
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | pathlib.Path) -> dict:
    """Load a checkpoint with ``weights_only=True`` (tensors and plain containers only; no pickled
    code from outside files is ever executed)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise RuntimeError(f'cannot load checkpoint {path} (weights_only): {exc}') from exc


#: stage attributes holding the generator a stage shuffles, augments and samples with
_STAGE_GENERATORS = ('gen', 'rng')


def rng_state(stage: Any) -> dict:
    """Every random state a training epoch draws from: python's, numpy's and torch's global
    generators (dropout draws from torch's), CUDA's when in use, and the stage's own generators
    (``_STAGE_GENERATORS``), as values that ``load_checkpoint`` (weights_only) reads back."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        'python': random.getstate(),
        'numpy': {'keys': torch.from_numpy(np.asarray(keys, np.int64)), 'pos': int(pos),
                  'has_gauss': int(has_gauss), 'cached_gaussian': float(gauss)},
        'torch': torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    for name in _STAGE_GENERATORS:
        gen = getattr(stage, name, None)
        if isinstance(gen, torch.Generator):
            state[f'stage.{name}'] = gen.get_state()
        elif isinstance(gen, np.random.Generator):
            state[f'stage.{name}'] = gen.bit_generator.state
    return state


def restore_rng_state(stage: Any, state: dict) -> None:
    """Put back what ``rng_state`` saved, so a resumed run draws what an uninterrupted one
    would have."""
    random.setstate(state['python'])
    npst = state['numpy']
    np.random.set_state(('MT19937', npst['keys'].numpy().astype(np.uint32), npst['pos'],
                         npst['has_gauss'], npst['cached_gaussian']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])
    for name in _STAGE_GENERATORS:
        gen, saved = getattr(stage, name, None), state.get(f'stage.{name}')
        if saved is None:
            continue
        if isinstance(gen, torch.Generator):
            gen.set_state(saved)
        elif isinstance(gen, np.random.Generator):
            gen.bit_generator.state = saved


def _draw_curves(csv_path: pathlib.Path, cfg: FitConfig, name: str, log) -> None:
    """``curves.png`` beside ``metrics.csv`` -- also when a run stops on a collapse alarm or is
    interrupted, when the picture matters most.  A plotting failure never fails the run."""
    try:
        png = plot_curves(csv_path, csv_path.with_name('curves.png'), cfg.collapse_threshold,
                          title=f'{name}: {csv_path.parent}')
        log(f'[{name}] training curves: {png}')
    except Exception as exc:  # noqa: BLE001 - e.g. no epoch finished, or no matplotlib
        log(f'[{name}] no training curves drawn ({exc})')


def fit(stage: Stage, optimizer: torch.optim.Optimizer, scheduler: Optional[Any],
        cfg: FitConfig, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)
        ) -> dict:
    """Train ``stage`` and return the best validation summary (by UAR).

    Checkpoints: ``last.pt`` every epoch (resumable: optimizer, schedule and the random state of
    ``rng_state``) and ``best.pt`` at each new best UAR.
    Early stopping after ``patience`` epochs without improvement.
    """
    out = pathlib.Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start_epoch, best_uar, best_epoch, best_summary = 0, -1.0, -1, None
    if cfg.resume:
        ck = load_checkpoint(cfg.resume)
        stage.model.load_state_dict(ck['model'])
        if 'optimizer' in ck:
            optimizer.load_state_dict(ck['optimizer'])
        start_epoch = int(ck['epoch']) + 1
        sched_state = ck.get('scheduler')
        if scheduler is not None and sched_state:
            if sched_state.get('total_steps', None) == getattr(scheduler, 'total_steps', None):
                scheduler.load_state_dict(sched_state)
            else:
                # --epochs changed since the checkpoint: follow the new schedule from here
                log(f'[{stage.name}] --epochs differs from the checkpoint run: learning-rate '
                    f'schedule re-planned and fast-forwarded to epoch {start_epoch}')
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')
                    for _ in range(start_epoch * cfg.steps_per_epoch):
                        scheduler.step()
        best_uar = float(ck.get('best_uar', -1.0))
        best_epoch = int(ck.get('best_epoch', -1))
        best_summary = ck.get('best_summary')
        if 'rng' in ck:
            restore_rng_state(stage, ck['rng'])
            how = 'random state restored'
        else:       # a checkpoint written before the random state was saved
            how = 'no random state in the checkpoint: batches differ from an uninterrupted run'
        log(f'[{stage.name}] resumed from {cfg.resume} at epoch {start_epoch} ({how})')
    device_type = getattr(stage, 'device', torch.device('cpu')).type
    autocast = ((lambda: torch.autocast(device_type, dtype=torch.bfloat16)) if cfg.bf16
                else contextlib.nullcontext)
    csv_path = out / 'metrics.csv'
    fields = ['epoch', 'train_loss', 'train_acc', 'val_accuracy', 'val_uar', 'val_macro_f1',
              'lr', 'seconds'] + [f'var_{k}' for k in ('embedding', 'fusion_input')]
    new_csv = not csv_path.exists() or start_epoch == 0
    writer = _tensorboard(out)
    try:
        with open(csv_path, 'w' if new_csv else 'a', newline='') as fcsv:
            w = csv.DictWriter(fcsv, fieldnames=fields, extrasaction='ignore')
            if new_csv:
                w.writeheader()
            for epoch in range(start_epoch, cfg.epochs):
                t0 = time.time()
                stage.model.train()
                total, losses, hits = 0, [], []
                bar = tqdm(stage.train_batches(epoch), desc=f'{stage.name} epoch {epoch}',
                           file=sys.stderr, leave=False, disable=cfg.quiet, mininterval=5)
                for i, batch in enumerate(bar):
                    if cfg.max_batches is not None and i >= cfg.max_batches:
                        break
                    with autocast():
                        loss, logits, y = stage.loss(batch)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(stage.model.parameters(), 5.0)
                    optimizer.step()
                    if scheduler is not None:
                        scheduler.step()
                    n = int(y.numel())
                    total += n
                    # kept on the device: reading them every step would make a GPU wait
                    losses.append(loss.detach().float() * n)
                    hits.append((logits.argmax(-1) == y).sum())
                    if not cfg.quiet and i % 25 == 0:
                        bar.set_postfix(loss=f'{float(sum(losses)) / total:.3f}',
                                        acc=f'{int(sum(hits)) / total:.3f}')
                loss_sum = float(torch.stack(losses).sum()) if losses else 0.0
                correct = int(torch.stack(hits).sum()) if hits else 0
                y_true, y_pred, feats = stage.evaluate()
                summary = summarise(y_true, y_pred, stage.labels)
                row = {'epoch': epoch, 'train_loss': loss_sum / max(total, 1),
                       'train_acc': correct / max(total, 1), 'val_accuracy': summary['accuracy'],
                       'val_uar': summary['uar'], 'val_macro_f1': summary['macro_f1'],
                       'lr': optimizer.param_groups[0]['lr'], 'seconds': time.time() - t0}
                diag, collapsed = [], []
                for name, f in feats.items():
                    if name == 'logits':   # logits are not features; near-constant early is normal
                        continue
                    st = check_collapse(f'{stage.name}.{name}', f, cfg.collapse_threshold)
                    diag.append(format_stats(st))
                    row[f'var_{name}'] = st['rel_var']
                    if st['collapsed']:
                        collapsed.append(f'{stage.name}.{name} (relative variance '
                                         f'{st["rel_var"]:.3g} < {cfg.collapse_threshold:g})')
                w.writerow(row)
                fcsv.flush()
                if collapsed and cfg.stop_on_collapse:   # after the row: the curves show it
                    raise FeatureCollapseError(f'epoch {epoch}: feature collapse in '
                                               f'{", ".join(collapsed)}; --stop-on-collapse')
                if writer is not None:
                    for k, v in row.items():
                        if k != 'epoch' and isinstance(v, float):
                            writer.add_scalar(f'{stage.name}/{k}', v, epoch)
                improved = summary['uar'] > best_uar
                if improved:
                    best_uar, best_epoch, best_summary = summary['uar'], epoch, summary
                payload = {'stage': stage.name, 'model': stage.model.state_dict(),
                           'labels': list(stage.labels), 'epoch': epoch, 'best_uar': best_uar,
                           'best_epoch': best_epoch, 'best_summary': best_summary,
                           'optimizer': optimizer.state_dict(),
                           'scheduler': scheduler.state_dict() if scheduler is not None else None,
                           'rng': rng_state(stage), **stage.checkpoint_extra()}
                save_checkpoint(out / 'last.pt', payload)
                if improved:
                    save_checkpoint(out / 'best.pt', payload)
                log(f'[{stage.name}] epoch {epoch}: loss {row["train_loss"]:.3f} train_acc '
                    f'{row["train_acc"]:.3f} | val acc {summary["accuracy"]:.3f} '
                    f'uar {summary["uar"]:.3f}'
                    f' f1 {summary["macro_f1"]:.3f} | {row["seconds"]:.0f}s | ' + ' | '.join(diag)
                    + (' *' if improved else ''))
                if epoch - best_epoch >= cfg.patience:
                    log(f'[{stage.name}] early stop: no UAR gain for {cfg.patience} epochs '
                        f'(best {best_uar:.3f} at epoch {best_epoch})')
                    break
    finally:
        if writer is not None:
            writer.close()
        _draw_curves(csv_path, cfg, stage.name, log)
    result = {'best_uar': best_uar, 'best_epoch': best_epoch, 'best': best_summary}
    (out / 'best_summary.json').write_text(json.dumps(result, indent=1))
    return result
