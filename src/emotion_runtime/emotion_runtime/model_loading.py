"""Load the model bundle for a node, turning every failure into a logged message.

Why: both perception nodes must keep running without a model (the face node still tracks faces)
and report the reason on /diagnostics; the try/except and the '' -> default-path rule are the
same for both.
"""
from __future__ import annotations

from typing import Any, Callable

__all__ = ['load_bundle_or_error', 'warm_up']


def load_bundle_or_error(path: str, threads: int,
                         log_error: Callable[[str], None]) -> tuple[Any, str]:
    """(bundle, '') on success, (None, reason) on failure; '' means default_bundle_path()."""
    try:
        from .model_bundle import ModelBundle, default_bundle_path
        where = path or str(default_bundle_path())
        return ModelBundle.load(where, threads=threads), ''
    except Exception as exc:  # noqa: BLE001 - BundleError, ImportError, onnxruntime errors
        reason = f'{type(exc).__name__}: {exc}'
        log_error(f'model bundle not loaded ({reason}); running without the encoder')
        return None, reason


def warm_up(bundle: Any, vision: bool = False, voice: bool = False) -> None:
    """Run the encoders once on dummy input before subscribing.

    Why: the first call creates the onnxruntime session and (voice) compiles librosa's numba mel
    code, which takes from hundreds of ms to ~20 s; done inside the first callback it stalls the
    subscription and best-effort input is lost meanwhile.
    """
    import numpy as np
    if vision:
        bundle.encode_faces([np.zeros((64, 64), np.uint8)])
    if voice:
        bundle.encode_voice_window(np.zeros(bundle.window_samples, np.float32),
                                   bundle.sample_rate)
