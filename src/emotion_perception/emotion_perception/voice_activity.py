"""Voice-activity detection: the Silero VAD model (default) and an energy detector (fallback).

``SileroVad`` runs Silero VAD v6.2 (``silero_vad.onnx`` from the silero-vad 6.2.3 wheel, MIT,
shipped in ``emotion_runtime/models/vad/``) with onnxruntime, one 512-sample frame (32 ms at
16 kHz) at a time with the model's recurrent state and its 64-sample context carried across
calls, so a stream fed in any chunk sizes gives the same flags as the whole signal at once.
Other stream rates are resampled to 16 kHz (``emotion_runtime.preprocess.resample``) in fixed
blocks with a margin wider than the filter, so the result does not depend on the chunking either.
It tells speech from fan hum and babble-like noise far better than energy (bench/bench_vad.py).

``EnergyVad`` costs microseconds per frame and has no weights: it stays as the fallback when the
model file is missing or unusable, or by choice (vocal_node ``vad: energy``).
The noise floor is a low percentile of recent frame levels (so it follows a fan switching on,
yet ignores the speech itself); a frame is speech when it is ``margin_db`` above that floor AND
above ``min_level_db``; ``hangover`` keeps short pauses between words inside the speech segment.

Both give one speech flag per frame of ``frame`` samples at the stream's rate (``process``) and
restart with ``reset``; no rclpy here.
"""
from __future__ import annotations

import math
import os
import pathlib
from collections import deque
from typing import Optional

import numpy as np
import onnxruntime as ort

from emotion_runtime.model_bundle import sha256_of
from emotion_runtime.preprocess import resample

__all__ = ['EnergyVad', 'SileroModel', 'SileroVad', 'VadModelError', 'SILERO_FILE',
           'SILERO_SHA256', 'default_silero_path']

SILERO_FILE = 'silero_vad.onnx'
#: sha256 of the shipped file (= the silero-vad 6.2.3 wheel's RECORD entry for
#: silero_vad/data/silero_vad.onnx), checked when the shipped file is loaded.
SILERO_SHA256 = '1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3'
SILERO_RATE, SILERO_FRAME, SILERO_CONTEXT = 16000, 512, 64


class EnergyVad:
    """Streaming VAD: feed samples in any chunk size, get one speech flag per completed frame."""

    def __init__(self, sample_rate: int, frame_seconds: float = 0.02, margin_db: float = 10.0,
                 min_level_db: float = -50.0, hangover_seconds: float = 0.3,
                 noise_window_seconds: float = 5.0, noise_percentile: float = 10.0) -> None:
        if sample_rate <= 0:
            raise ValueError(f'sample_rate must be > 0, got {sample_rate}')
        if not 0.005 <= frame_seconds <= 0.1:
            raise ValueError(f'frame_seconds must be in [0.005, 0.1], got {frame_seconds}')
        if margin_db < 0 or hangover_seconds < 0 or noise_window_seconds <= 0:
            raise ValueError('margin_db and hangover_seconds must be >= 0, '
                             'noise_window_seconds > 0')
        if not 0 <= noise_percentile <= 50:
            raise ValueError(f'noise_percentile must be in [0, 50], got {noise_percentile}')
        self.sample_rate = int(sample_rate)
        self.frame = max(1, int(round(frame_seconds * sample_rate)))
        frame_s = self.frame / self.sample_rate
        self.margin_db, self.min_level_db = float(margin_db), float(min_level_db)
        self.hangover_frames = int(round(hangover_seconds / frame_s))
        self.noise_percentile = float(noise_percentile)
        self._levels: deque = deque(maxlen=max(2, int(round(noise_window_seconds / frame_s))))
        self._rest = np.zeros(0, np.float32)
        self._hang = 0
        self.noise_floor_db = float('nan')
        self.last_level_db = float('nan')

    def reset(self) -> None:
        """Forget the partial frame and the hangover (after a stream reset); keep the floor."""
        self._rest = np.zeros(0, np.float32)
        self._hang = 0

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Flags (bool, one per frame of ``self.frame`` samples) for the frames completed now."""
        x = np.concatenate([self._rest, np.asarray(samples, np.float32).reshape(-1)])
        n = x.size // self.frame
        self._rest = x[n * self.frame:].copy()
        if n == 0:
            return np.zeros(0, bool)
        frames = x[:n * self.frame].reshape(n, self.frame)
        levels = 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
        flags = np.zeros(n, bool)
        for i, level in enumerate(levels):
            self._levels.append(level)
            floor = float(np.percentile(self._levels, self.noise_percentile))
            self.noise_floor_db, self.last_level_db = floor, float(level)
            if level > self.min_level_db and level > floor + self.margin_db:
                self._hang = self.hangover_frames
                flags[i] = True
            elif self._hang > 0:
                self._hang -= 1
                flags[i] = True
        return flags


class VadModelError(RuntimeError):
    """The VAD model file is missing, altered or not the expected Silero graph."""


def default_silero_path() -> tuple[pathlib.Path, bool]:
    """(path, shipped): $EMOTION_VAD_MODEL (taken as it is), else the shipped file in the
    emotion_runtime share directory, else in the source tree (tests before ``colcon build``).
    Only the shipped file is checked against ``SILERO_SHA256``."""
    env = os.environ.get('EMOTION_VAD_MODEL')
    if env:
        return pathlib.Path(env), False
    try:
        from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415 - optional: absent before colcon build
        share = pathlib.Path(get_package_share_directory('emotion_runtime')) / 'models' / 'vad'
        if (share / SILERO_FILE).is_file():
            return share / SILERO_FILE, True
    except Exception:  # noqa: BLE001 - ament not installed, package not built: fall through
        pass
    src = pathlib.Path(__file__).resolve().parents[2] / 'emotion_runtime' / 'models' / 'vad'
    return src / SILERO_FILE, True


class SileroModel:
    """The Silero VAD graph (v6.2; v5 and v6 have the same inputs and outputs) in onnxruntime (1
    thread by default), shared by the streams.

    Inputs: ``input`` [1, 64 + 512] float32 (the previous frame's last 64 samples, then the
    frame), ``state`` [2, 1, 128] float32, ``sr`` int64 scalar; outputs: ``output`` [1, 1] (the
    speech probability) and ``stateN`` (the next state).
    """

    def __init__(self, session: ort.InferenceSession, path: pathlib.Path) -> None:
        self.session, self.path = session, path
        names_in = {i.name for i in session.get_inputs()}
        names_out = [o.name for o in session.get_outputs()]
        if names_in != {'input', 'state', 'sr'} or names_out[:2] != ['output', 'stateN']:
            raise VadModelError(f'{path}: not a Silero VAD v5/v6 graph (inputs {sorted(names_in)}, '
                                f'outputs {names_out})')
        self._sr = np.array(SILERO_RATE, np.int64)

    @classmethod
    def load(cls, path: Optional[os.PathLike | str] = None, threads: int = 1) -> 'SileroModel':
        """Load ``path`` (default: ``default_silero_path()``); VadModelError names the file when
        it is missing, altered (shipped file, sha256) or not loadable."""
        if path is None:
            path, shipped = default_silero_path()
        else:
            path, shipped = pathlib.Path(path), False
        if not path.is_file():
            raise VadModelError(f'VAD model file {path} is missing')
        if shipped:
            digest = sha256_of(path)
            if digest != SILERO_SHA256:
                raise VadModelError(f'VAD model file {path} has sha256 {digest}, expected '
                                    f'{SILERO_SHA256}')
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            session = ort.InferenceSession(str(path), opts, providers=['CPUExecutionProvider'])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise VadModelError(f'VAD model file {path} cannot be loaded: {exc}') from exc
        return cls(session, path)

    def new_state(self) -> np.ndarray:
        return np.zeros((2, 1, 128), np.float32)

    def step(self, x: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        """Speech probability of one frame ``x`` (context + frame, 576 samples) and the new
        state."""
        out, new_state = self.session.run(
            None, {'input': x.reshape(1, -1), 'state': state, 'sr': self._sr})[:2]
        return float(out.reshape(-1)[0]), new_state


class _BlockResampler:
    """Streaming resampling to 16 kHz that does not depend on how the input is chunked.

    Output is made in fixed blocks of ``block`` samples; each block resamples (with
    ``preprocess.resample``, the training resampler) an input segment that starts on a sample
    where input and output grids meet and reaches ``margin`` samples beyond the block on both
    sides, wider than resample_poly's filter (10 * max(up, down) taps at the upsampled rate), so
    every output sample equals the one-shot resampling of the whole stream.
    """

    def __init__(self, from_rate: int, to_rate: int = SILERO_RATE, block: int = 2048) -> None:
        g = math.gcd(int(from_rate), int(to_rate))
        self.from_rate, self.to_rate = int(from_rate), int(to_rate)
        self.up, self.down = self.to_rate // g, self.from_rate // g
        self.margin = math.ceil(10 * max(self.up, self.down) / self.up) + 2
        self.block = int(block)
        self.reset()

    def reset(self) -> None:
        self._x = np.zeros(0, np.float32)
        self._x0 = 0          # absolute input index of self._x[0]
        self._n_in = 0        # input samples received
        self._out = 0         # next output index

    def _seg_start(self, j0: int) -> int:
        s = max(0, j0 * self.down // self.up - self.margin)
        return (s // self.down) * self.down     # input and output grids meet here

    def push(self, x: np.ndarray) -> np.ndarray:
        self._x = np.concatenate([self._x, x])
        self._n_in += x.size
        outs = []
        while True:
            j0, j1 = self._out, self._out + self.block
            end = -(-j1 * self.down // self.up) + self.margin
            if self._n_in < end:
                break
            s = self._seg_start(j0)
            y = resample(self._x[s - self._x0:end - self._x0], self.from_rate, self.to_rate)
            o0 = s // self.down * self.up
            outs.append(y[j0 - o0:j1 - o0])
            self._out = j1
            keep = self._seg_start(j1)
            self._x = self._x[keep - self._x0:]
            self._x0 = keep
        return np.concatenate(outs) if outs else np.zeros(0, np.float32)


class SileroVad:
    """Streaming Silero VAD with the EnergyVad interface: one flag per ``frame`` stream samples.

    The model decides per 512-sample frame at 16 kHz: speech starts at probability >=
    ``threshold``, continues while it stays >= ``threshold - 0.15`` (Silero's own hysteresis)
    and is held ``hangover_seconds`` longer.  A stream frame takes the decision of the model frame
    that holds its middle, so the flags of a frame come out once that model frame has run (up to
    32 ms later at 16 kHz; other rates add the resampling block, 128 ms).  ``preroll_seconds``
    marks that much audio before each detected onset as speech too (the model's probability
    rises some frames after a word starts); the flags then come out that much later.
    """

    def __init__(self, sample_rate: int, model: SileroModel, threshold: float = 0.5,
                 frame_seconds: float = 0.02, hangover_seconds: float = 0.1,
                 preroll_seconds: float = 0.0) -> None:
        if sample_rate <= 0:
            raise ValueError(f'sample_rate must be > 0, got {sample_rate}')
        if not 0.005 <= frame_seconds <= 0.1:
            raise ValueError(f'frame_seconds must be in [0.005, 0.1], got {frame_seconds}')
        if not 0.0 < threshold < 1.0 or hangover_seconds < 0 or preroll_seconds < 0:
            raise ValueError('threshold must be in (0, 1), hangover_seconds and '
                             'preroll_seconds >= 0')
        self.sample_rate, self.model = int(sample_rate), model
        self.frame = max(1, int(round(frame_seconds * sample_rate)))
        self.threshold = float(threshold)
        self.hangover_frames = int(round(hangover_seconds * SILERO_RATE / SILERO_FRAME))
        self.preroll_frames = int(round(preroll_seconds / frame_seconds))   # stream frames
        self._resampler = (None if self.sample_rate == SILERO_RATE
                           else _BlockResampler(self.sample_rate))
        self.noise_floor_db = float('nan')      # no noise floor: the model needs none
        self.reset()

    def reset(self) -> None:
        """Start a new stream: model state, context, resampler, pending samples, hangover."""
        self._state = self.model.new_state()
        self._context = np.zeros(SILERO_CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)     # 16 kHz samples not yet in a model frame
        if self._resampler is not None:
            self._resampler.reset()
        self._decisions: deque = deque()             # per model frame, from index _dec0
        self._dec0 = 0
        self._model_frames = 0
        self._frames_out = 0
        self._hang = 0
        self._speaking = False
        self._held: deque = deque()                  # stream-frame flags awaiting the pre-roll
        self.last_probability = float('nan')

    def probabilities(self, samples16k: np.ndarray) -> np.ndarray:
        """Speech probability per complete 512-sample frame of 16 kHz ``samples16k``, continuing
        the stream's state (the same steps ``process`` runs)."""
        self._pending = np.concatenate([self._pending,
                                        np.asarray(samples16k, np.float32).reshape(-1)])
        n = self._pending.size // SILERO_FRAME
        probs = np.zeros(n, np.float32)
        for k in range(n):
            frame = self._pending[k * SILERO_FRAME:(k + 1) * SILERO_FRAME]
            x = np.concatenate([self._context, frame])
            probs[k], self._state = self.model.step(x, self._state)
            self._context = frame[-SILERO_CONTEXT:]
        self._pending = self._pending[n * SILERO_FRAME:].copy()
        if n:
            self.last_probability = float(probs[-1])
        return probs

    def _decide(self, p: float) -> bool:
        if p >= self.threshold or (self._speaking and p >= self.threshold - 0.15):
            self._hang = self.hangover_frames
            self._speaking = True
        elif self._hang > 0:
            self._hang -= 1
            self._speaking = True
        else:
            self._speaking = False
        return self._speaking

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Flags (bool, one per frame of ``self.frame`` samples) for the frames decided now."""
        x = np.asarray(samples, np.float32).reshape(-1)
        x16 = x if self._resampler is None else self._resampler.push(x)
        for p in self.probabilities(x16):
            self._decisions.append(self._decide(float(p)))
            self._model_frames += 1
        flags = []
        while True:
            mid = (self._frames_out * self.frame + self.frame / 2) * SILERO_RATE / self.sample_rate
            m = int(mid // SILERO_FRAME)
            if m >= self._model_frames:
                break
            while self._dec0 < m:
                self._decisions.popleft()
                self._dec0 += 1
            flags.append(self._decisions[0])
            self._frames_out += 1
        if not self.preroll_frames:
            return np.array(flags, bool)
        out = []
        for f in flags:             # frame i is speech when one of frames i..i+preroll is
            self._held.append(f)
            if len(self._held) > self.preroll_frames:
                out.append(any(self._held))
                self._held.popleft()
        return np.array(out, bool)
