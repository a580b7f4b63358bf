"""The voiceprint member of the voice decision: a pretrained speaker encoder read by a linear head.

Why: the vocal CNNs learnt emotion from 8 German and 9 English speakers.  A speaker encoder
trained on thousands of voices (Resemblyzer's GE2E LSTM, Apache-2.0; see the bundle's model card
for source and hashes) describes a voice in ways those few speakers cannot teach.  Its features,
calibrated to the person talking like the CNN's log-mel (``speaker_calibration``: running mean
and spread per feature, shrunk toward the training population), carry emotion: a linear head on
them, mixed into the CNNs' decision, reads held-out English actors better than either alone
(MODEL_CARD.md, EXPERIMENTS.md).

The manifest's ``vocal.voiceprint`` section says everything the runtime needs:

* ``file``: ONNX graph, input ``mel`` [N, T, n_mels] (mel *power*, not log) -> ``features`` [N, F];
* ``n_fft``, ``win_length``, ``hop_length``, ``n_mels``, ``fmin``, ``fmax``: its mel spectrogram
  (at the vocal section's ``sample_rate``), computed by ``preprocess`` as for the CNN;
* ``gain_dbfs``: a window quieter than this RMS level is raised to it first (never lowered),
  as the encoder was trained on level-normalised speech;
* ``normalisation``: ``speaker_calibration`` statistics of the F features, counted per window;
* ``head``: ``weight`` [C, F] and ``bias`` [C] over the calibrated features, in label order;
* ``weight``: w in ``(1 - w) * log_softmax(CNN logits) + w * log_softmax(head logits)``, the
  voice decision the bundle publishes.

Only numpy and onnxruntime (no torch, no rclpy).
"""
from __future__ import annotations

import pathlib
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import onnxruntime as ort

from . import preprocess
from .speaker_calibration import SpeakerCalibration

__all__ = ['Voiceprint', 'check_section', 'combine', 'log_softmax', 'open_session']

_MEL_KEYS = ('n_fft', 'win_length', 'hop_length', 'n_mels', 'fmin', 'fmax')


def open_session(path: pathlib.Path, threads: int,
                 model: Optional[bytes] = None) -> ort.InferenceSession:
    """An onnxruntime CPU session of ``path`` with ``threads`` intra-op threads (the bundle's
    graphs all open this way); ``model``: the graph's serialised bytes, when the caller has
    edited it in memory (``path`` then only names it in errors).  RuntimeError naming the file
    when onnxruntime cannot load it."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path) if model is None else model, sess_options=opts,
                                    providers=['CPUExecutionProvider'])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several types
        raise RuntimeError(f'{path}: onnxruntime cannot load it: {exc}') from exc


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=-1, keepdims=True))).astype(np.float32)


def combine(cnn_logits: np.ndarray, head_logits: np.ndarray, weight: float) -> np.ndarray:
    """The published voice decision: ``(1 - w) log_softmax(cnn) + w log_softmax(head)``."""
    return ((1.0 - weight) * log_softmax(cnn_logits)
            + weight * log_softmax(head_logits)).astype(np.float32)


def check_section(vp: Any, num_labels: int, sample_rate: int) -> Optional[str]:
    """What is wrong with a manifest ``vocal.voiceprint`` section, or None when it is usable."""
    if not isinstance(vp, dict):
        return 'must be an object'
    lack = [k for k in ('file', 'gain_dbfs', 'normalisation', 'head', 'weight', *_MEL_KEYS)
            if k not in vp]
    if lack:
        return f'lacks field(s) {lack}'
    for k in ('n_fft', 'win_length', 'hop_length', 'n_mels'):
        if isinstance(vp[k], bool) or not isinstance(vp[k], int) or vp[k] <= 0:
            return f'{k} must be a positive integer, got {vp[k]!r}'
    w = vp['weight']
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= w <= 1.0:
        return f'weight must be in [0, 1], got {w!r}'
    norm = vp['normalisation']
    if not isinstance(norm, dict) or norm.get('type') != 'speaker':
        return 'normalisation must be a "speaker" section'
    try:
        cal = SpeakerCalibration.from_manifest(norm)
        weight = np.asarray(vp['head']['weight'], np.float64)
        bias = np.asarray(vp['head']['bias'], np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        return f'normalisation or head unreadable: {exc}'
    if weight.shape != (num_labels, cal.bands) or bias.shape != (num_labels,):
        return (f'head must be weight [{num_labels}, {cal.bands}] and bias [{num_labels}] '
                f'(labels x features), got {list(weight.shape)} and {list(bias.shape)}')
    if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
        return 'head holds non-finite numbers'
    if float(vp['fmax']) > sample_rate / 2:
        return f'fmax {vp["fmax"]} is above half the sample rate {sample_rate}'
    return None


class Voiceprint:
    """The voiceprint graph, its mel spectrogram and its head (one per ``ModelBundle``)."""

    def __init__(self, bundle_dir: pathlib.Path, section: Mapping[str, Any], sample_rate: int,
                 threads: int = 1) -> None:
        self.section = dict(section)
        self.path = pathlib.Path(bundle_dir) / section['file']
        self.mel_config = dict({k: section[k] for k in _MEL_KEYS}, sample_rate=int(sample_rate))
        self.gain = 10.0 ** (float(section['gain_dbfs']) / 20.0)
        self.weight = float(section['weight'])
        self.head_weight = np.asarray(section['head']['weight'], np.float32)
        self.head_bias = np.asarray(section['head']['bias'], np.float32)
        self.threads = int(threads)
        self._session: Optional[ort.InferenceSession] = None
        self._population: Optional[SpeakerCalibration] = None

    @property
    def feature_size(self) -> int:
        return int(self.head_weight.shape[1])

    def session(self) -> ort.InferenceSession:
        if self._session is None:
            sess = open_session(self.path, self.threads)
            names = ([i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()])
            if names != (['mel'], ['features']):
                raise RuntimeError(f'{self.path}: a voiceprint graph has input "mel" and output '
                                   f'"features", this one {names[0]} and {names[1]}')
            self._session = sess
        return self._session

    def new_calibration(self, half_life_windows: Optional[float] = None) -> SpeakerCalibration:
        """Per-speaker statistics of the features (one 'frame' = one window)."""
        return SpeakerCalibration.from_manifest(self.section['normalisation'], half_life_windows)

    def mel(self, samples: np.ndarray) -> np.ndarray:
        """One window at the bundle's rate -> mel power [T, n_mels] float32 (quiet windows raised
        to ``gain_dbfs`` first)."""
        x = np.nan_to_num(np.asarray(samples, np.float64).reshape(-1))
        rms = float(np.sqrt(np.mean(x ** 2))) if x.size else 0.0
        if 0.0 < rms < self.gain:
            x = x * (self.gain / rms)
        return preprocess.mel_power(x, self.mel_config).T.astype(np.float32)

    def features(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """Windows (already at the bundle's rate and length) -> raw features [N, F]."""
        if len(windows) == 0:
            return np.zeros((0, self.feature_size), np.float32)
        mel = np.stack([self.mel(w) for w in windows])
        (out,) = self.session().run(['features'], {'mel': mel})
        return out.astype(np.float32)

    def head_logits(self, features: np.ndarray,
                    calibration: Optional[SpeakerCalibration] = None) -> np.ndarray:
        """Raw features [N, F] -> head logits [N, C], calibrated by ``calibration`` (None = the
        training population's statistics)."""
        if calibration is None:
            if self._population is None:        # the prior alone: built once, never updated
                self._population = self.new_calibration()
            calibration = self._population
        x = calibration.normalise(np.asarray(features, np.float32).T).T
        return x @ self.head_weight.T + self.head_bias
