"""Training curves: ``OUT/curves.png`` drawn from ``OUT/metrics.csv`` after every run.

Why a picture: over-fitting (training accuracy climbing while validation UAR stalls), the best
epoch and, above all, a collapsing encoder (the seed project lost a week to an embedding whose
variance had quietly fallen to nothing) are seen at a glance in three panels, and are easy to miss
in a column of numbers.
"""
from __future__ import annotations

import csv
import math
import pathlib
from typing import Optional


def _read(csv_path: pathlib.Path) -> dict[str, list[float]]:
    cols: dict[str, list[float]] = {}
    with open(csv_path, newline='') as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                try:
                    cols.setdefault(k, []).append(float(v))
                except (TypeError, ValueError):
                    cols.setdefault(k, []).append(math.nan)
    return cols


def plot_curves(csv_path: str | pathlib.Path, png_path: str | pathlib.Path,
                collapse_threshold: Optional[float] = None, title: str = '') -> pathlib.Path:
    """Draw loss, accuracy/UAR and feature variance per epoch; returns the PNG path.

    Raises ``ValueError`` naming the file when it holds no epoch rows.
    """
    csv_path, png_path = pathlib.Path(csv_path), pathlib.Path(png_path)
    cols = _read(csv_path)
    epochs = cols.get('epoch', [])
    if not epochs:
        raise ValueError(f'{csv_path}: no epoch rows to plot')
    import matplotlib  # noqa: PLC0415 - matplotlib: only when curves are drawn
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # noqa: PLC0415 - after use('Agg')

    fig, (ax_loss, ax_acc, ax_var) = plt.subplots(1, 3, figsize=(13, 3.8))
    ax_loss.plot(epochs, cols['train_loss'], 'o-', ms=3, label='train loss')
    ax_loss.set_xlabel('epoch')
    ax_loss.set_title('training loss')
    for key, style, name in (('train_acc', 'o--', 'train accuracy'),
                             ('val_accuracy', 'o-', 'validation accuracy'),
                             ('val_uar', 's-', 'validation UAR')):
        if key in cols:
            ax_acc.plot(epochs, cols[key], style, ms=3, label=name)
    uar = cols.get('val_uar', [])
    finite = [(u, e) for u, e in zip(uar, epochs) if not math.isnan(u)]
    if finite:
        best_uar, best_epoch = max(finite)
        ax_acc.axvline(best_epoch, color='grey', lw=0.8, ls=':')
        ax_acc.annotate(f'best UAR {best_uar:.3f}\nepoch {int(best_epoch)}',
                        (best_epoch, best_uar), textcoords='offset points', xytext=(4, -28),
                        fontsize=8)
    ax_acc.set_ylim(0, 1)
    ax_acc.set_xlabel('epoch')
    ax_acc.set_title('accuracy / UAR')
    ax_acc.legend(fontsize=8, loc='lower right')
    drawn = False
    for key, name in (('var_embedding', 'encoder embedding'),
                      ('var_fusion_input', 'fusion input')):
        vals = [v if v > 0 else math.nan for v in cols.get(key, [])]
        if any(not math.isnan(v) for v in vals):
            ax_var.semilogy(epochs, vals, 'o-', ms=3, label=name)
            drawn = True
    if collapse_threshold:
        ax_var.axhline(collapse_threshold, color='red', ls='--', lw=1,
                       label=f'collapse alarm ({collapse_threshold:g})')
        drawn = True
    ax_var.set_xlabel('epoch')
    ax_var.set_title('relative across-batch variance')
    if drawn:
        ax_var.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
    return png_path
