"""Load the model bundle for a node, turning every failure into a logged message.

Why: the face and vocal nodes load a bundle the same way in their lifecycle configure step
and turn a failure into the reason that configure reports (log, /diagnostics, exit code 1 when
the node started itself); the try/except and the '' -> default-path rule are the same for both.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from . import preprocess

__all__ = ['load_bundle_or_error', 'warm_up']


def load_bundle_or_error(path: str, threads: int,
                         expected_labels: Optional[Sequence[str]] = None) -> tuple[Any, str]:
    """(bundle, '') on success, (None, reason) on failure; '' means default_bundle_path().
    ``expected_labels``: refuse a bundle whose manifest has other labels or another order."""
    try:
        from .model_bundle import ModelBundle, default_bundle_path  # noqa: PLC0415 - onnxruntime only when a node loads a bundle
        where = path or str(default_bundle_path())
        return ModelBundle.load(where, expected_labels=expected_labels, threads=threads), ''
    except Exception as exc:  # noqa: BLE001 - BundleError, ImportError, onnxruntime errors
        return None, f'{type(exc).__name__}: {exc}'


def warm_up(bundle: Any, vision: bool = False, voice: bool = False) -> None:
    """Run the encoders once on dummy input before subscribing.

    Why: the first call creates the onnxruntime session (and, for voice, the cached STFT window
    and mel filterbank), which takes hundreds of ms; done inside the first callback it stalls the
    subscription and best-effort input is lost meanwhile; the resampler's import (scipy.signal,
    ~1.7 s cold) is paid here too.  (The log-mel is plain numpy since
    librosa's numba code, compiled at the first call for up to ~50 s, left the node path.)
    """
    if vision:
        bundle.encode_faces([np.zeros((64, 64), np.uint8)])
    if voice:
        bundle.encode_voice_window(np.zeros(bundle.window_samples, np.float32),
                                   bundle.sample_rate)
        # a microphone at another rate is resampled: import and run that path now too
        preprocess.resample(np.zeros(480, np.float32), 48000, bundle.sample_rate)
