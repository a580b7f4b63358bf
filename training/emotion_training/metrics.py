"""Classification metrics (accuracy, unweighted average recall, macro F1, confusion) in numpy."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Confusion matrix [true, predicted]."""
    cm = np.zeros((n_classes, n_classes), np.int64)
    for t, p in zip(y_true, y_pred):
        cm[int(t), int(p)] += 1
    return cm


def summarise(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """n, accuracy, UAR (mean recall over classes present), macro F1, per-class recall, confusion.

    UAR averages recall over the classes that occur in ``y_true`` so that a test set lacking a
    class (e.g. no disgust) is not penalised with a zero for it.
    """
    c = len(labels)
    cm = confusion(y_true, y_pred, c)
    n = int(cm.sum())
    support = cm.sum(1)
    predicted = cm.sum(0)
    tp = np.diag(cm).astype(float)
    present = support > 0
    recall = np.where(present, tp / np.maximum(support, 1), np.nan)
    precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
    f1 = np.where(present, 2 * precision * np.nan_to_num(recall) /
                  np.maximum(precision + np.nan_to_num(recall), 1e-12), np.nan)
    return {
        'n': n,
        'accuracy': float(tp.sum() / n) if n else 0.0,
        'uar': float(np.nanmean(recall)) if present.any() else 0.0,
        'macro_f1': float(np.nanmean(f1)) if present.any() else 0.0,
        'per_class_recall': {lab: (None if np.isnan(r) else round(float(r), 4))
                             for lab, r in zip(labels, recall)},
        'labels': list(labels),
        'confusion': cm.tolist(),
    }
