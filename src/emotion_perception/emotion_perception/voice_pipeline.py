"""The voice path without ROS: continuity-checked buffer -> VAD -> sliding windows -> encoder.

Why here and not in vocal_node: the bench measures this code's CPU use in real time, and the unit
tests drive it with espeak-ng speech; vocal_node only decodes AudioChunks into it and publishes
what comes out.  Windows are cut at the stream's own rate; the bundle resamples each window to
its manifest rate (ModelBundle.encode_voice_windows -> preprocess.resample), so the same
resampler as in training is used and a stream at 44.1 or 48 kHz needs no extra step.
With span pooling a speech window publishes the mean logits (``span_pooling: logits``, the
default) or the mean embedding and logits (``all``) of its voiced span so far
(``voice_windows.SpanPool``: a decision per span rather than per window; same sizes).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import numpy as np

from emotion_runtime.voice_windows import SpanPool, stream_ready

from .audio_buffer import AudioStreamBuffer, PushResult
from .audio_format import check_finite, check_sample_rate, check_stamp
from .node_params import SPAN_POOLING
from .voice_activity import EnergyVad, SileroModel, SileroVad, VadModelError

__all__ = ['VoiceWindow', 'VoicePipeline', 'build_voice_pipeline', 'FALLBACK_WINDOW_SECONDS',
           'FALLBACK_HOP_SECONDS']

# Used only when there is no bundle to take them from (vocal_node then publishes no features but
# still runs the VAD and the stream checks, which /diagnostics reports).
FALLBACK_WINDOW_SECONDS, FALLBACK_HOP_SECONDS = 2.0, 0.5


@dataclass
class VoiceWindow:
    stamp: float                       # capture time of the window's first sample [s]
    sample_rate: int                   # rate of ``samples`` (the stream's)
    samples: np.ndarray                # float32 mono
    speech: bool                       # speech_probability >= min_speech_fraction
    speech_probability: float          # fraction of VAD frames flagged as speech
    embedding: Optional[np.ndarray] = None   # what is published: the window's own, or with
    logits: Optional[np.ndarray] = None      # span pooling the mean over its voiced span so far
    window_embedding: Optional[np.ndarray] = None   # the window's own encoder outputs
    window_logits: Optional[np.ndarray] = None
    span_windows: int = 0              # speech windows pooled into embedding/logits (0: none)


class VoicePipeline:
    """Feed mono chunks with their stamps; get the analysis windows that became complete."""

    def __init__(self, bundle: Any, window_seconds: float, hop_seconds: float,
                 buffer: Optional[AudioStreamBuffer] = None, vad_params: Optional[dict] = None,
                 min_speech_fraction: float = 0.2, encode: bool = True,
                 speaker_half_life_seconds: Optional[float] = 300.0,
                 vad_factory: Optional[Callable[[int], Any]] = None,
                 span_pool: Optional[SpanPool] = None, span_embedding: bool = True) -> None:
        """``speaker_half_life_seconds``: for a speaker-normalised bundle, the online speaker
        calibration forgets speech this old by half (None = no calibration: the training
        population's statistics are used throughout).  ``vad_factory(rate)`` makes the VAD of a
        stream (``process``/``reset``/``frame``/``sample_rate``, as EnergyVad and SileroVad);
        None = ``EnergyVad(rate, **vad_params)``.  ``span_pool``: publish for each speech window
        the mean logits over its voiced span so far, and the mean embedding too with
        ``span_embedding`` (``voice_windows.SpanPool``; None = each window's own)."""
        if window_seconds < 0.01 or hop_seconds < 0.001:
            raise ValueError(f'window ({window_seconds} s) must be >= 0.01 s and hop '
                             f'({hop_seconds} s) >= 0.001 s')
        self.bundle, self.window_seconds, self.hop_seconds = bundle, window_seconds, hop_seconds
        self.buffer = buffer or AudioStreamBuffer(capacity_seconds=max(10.0, 3 * window_seconds))
        if self.buffer.capacity_seconds < window_seconds + hop_seconds:
            raise ValueError('audio buffer capacity must exceed window + hop')
        self.vad_params = dict(vad_params or {})
        self.min_speech_fraction, self.encode = min_speech_fraction, encode
        self.vad_factory = vad_factory or (lambda rate: EnergyVad(rate, **self.vad_params))
        self.vad_kind = 'energy' if vad_factory is None else 'custom'
        self.vad_error = ''           # why the configured VAD could not be used (fallback)
        self.vad: Any = None
        self._vad_cursor = 0          # next absolute sample index to give to the VAD
        self._flags = np.zeros(0, bool)
        self._flags_start = 0         # absolute index of self._flags[0]
        self._stream_start = 0        # absolute index where the current stream (re)started
        self._last_end: Optional[int] = None   # end of the last window, relative to it
        self.windows_emitted = 0
        self.encode_seconds = 0.0
        self.model_error = ''
        self.span_pool, self.span_embedding = span_pool, span_embedding
        # Online calibration to the person talking (speaker-normalised bundles only): every
        # window the VAD calls speech is added before it is normalised (speaker_calibration).
        self.calibration = (bundle.new_calibration(speaker_half_life_seconds)
                            if bundle is not None and speaker_half_life_seconds is not None
                            else None)

    def calibration_seconds(self) -> float:
        """Effective seconds of speech the speaker calibration holds (0 without one)."""
        if self.calibration is None or self.bundle is None:
            return 0.0
        vocal = self.bundle.manifest['vocal']
        return self.calibration.frames * int(vocal['hop_length']) / int(vocal['sample_rate'])

    def _restart(self, rate: int) -> None:
        if self.vad is None or self.vad.sample_rate != rate:
            self.vad = self.vad_factory(rate)
        self.vad.reset()
        start = self.buffer.start_index
        self._vad_cursor = self._flags_start = self._stream_start = start
        self._last_end = None
        self._flags = np.zeros(0, bool)
        if self.span_pool is not None:      # a new stream: what was said before is not this span
            self.span_pool.reset()

    def push(self, stamp: float, sample_rate: int,
             samples: np.ndarray) -> tuple[PushResult, list[VoiceWindow]]:
        """Add one chunk; NaN/inf samples, a sample rate outside the bounds of
        ``audio_format`` or a non-finite stamp raise AudioFormatError before anything is
        changed."""
        x = np.asarray(samples, np.float32).reshape(-1)
        check_finite(x)
        check_sample_rate(sample_rate)
        check_stamp(stamp)
        result = self.buffer.push(stamp, int(sample_rate), x)
        if result.reset:
            self._restart(self.buffer.sample_rate)
        buf, vad = self.buffer, self.vad
        assert vad is not None
        # Run the VAD on everything appended since last time (silence fills included).
        if self._vad_cursor < buf.start_index:      # fell out of the ring (stalled consumer)
            vad.reset()
            self._vad_cursor = self._flags_start = buf.start_index
            self._flags = np.zeros(0, bool)
        if buf.end_index > self._vad_cursor:
            flags = vad.process(buf.get(self._vad_cursor, buf.end_index))
            self._vad_cursor = buf.end_index
            self._flags = np.concatenate([self._flags, np.repeat(flags, vad.frame)])
        if self._flags_start < buf.start_index:
            self._flags = self._flags[buf.start_index - self._flags_start:]
            self._flags_start = buf.start_index
        rate = buf.sample_rate or 1
        # at least one sample each (as stream_ready), so the loop below always advances
        win = max(1, int(round(self.window_seconds * rate)))
        hop = max(1, int(round(self.hop_seconds * rate)))
        ready_end = min(buf.end_index, self._flags_start + self._flags.size)
        windows = []
        # voice_windows.stream_ready is the windowing rule shared with offline evaluation:
        # the first window after `window` samples, then one every `hop`.
        while stream_ready(ready_end - self._stream_start, rate, self.window_seconds,
                           self.hop_seconds, self._last_end):
            end = win if self._last_end is None else self._last_end + hop
            start = self._stream_start + end - win
            self._last_end = end
            if start < buf.start_index:         # fell out of the ring: cannot happen when
                continue                        # capacity > window + hop, kept for safety
            a = start - self._flags_start
            prob = float(self._flags[a:a + win].mean())
            windows.append(VoiceWindow(buf.time_of(start), rate,
                                       buf.get(start, start + win).copy(),
                                       prob >= self.min_speech_fraction, prob))
        if windows and self.encode and self.bundle is not None:
            t0 = time.perf_counter()
            try:
                emb, logits = self.bundle.encode_voice_windows(
                    [w.samples for w in windows], rate, self.calibration,
                    learn=[w.speech for w in windows])
                for w, e, lg in zip(windows, emb, logits):
                    w.window_embedding, w.window_logits = e, lg
                    w.embedding, w.logits = e, lg
                    if self.span_pool is not None:
                        pe, w.logits = self.span_pool.add(w.stamp, w.speech, e, lg)
                        if self.span_embedding:
                            w.embedding = pe
                        w.span_windows = self.span_pool.windows if w.speech else 0
                self.model_error = ''
            except Exception as exc:  # noqa: BLE001 - windows still carry the VAD result
                self.model_error = f'{type(exc).__name__}: {exc}'
            self.encode_seconds += time.perf_counter() - t0
        self.windows_emitted += len(windows)
        return result, windows


def build_voice_pipeline(p: Mapping[str, Any], bundle: Any = None,
                         vad_model: Any = None) -> VoicePipeline:
    """The pipeline vocal_node runs, from its parameter values (``VOCAL_PARAMS`` names):
    window and hop from the parameters, else the bundle's manifest (else the fallbacks without a
    bundle), the stream buffer, the VAD (``vad``: silero, or energy; silero falls back to energy
    when its model file is missing or unusable, with the reason in ``vad_error``; ``vad_model``:
    the Silero file, None = the shipped one), the online speaker adaptation and the voiced-span
    pooling (``span_pooling``: none, logits or all).
    ``emotion-eval bag`` builds it the same way, so offline numbers are the robot's.  Raises
    ValueError naming a bad value."""
    window = p['window_seconds'] or (bundle.window_seconds if bundle is not None
                                     else FALLBACK_WINDOW_SECONDS)
    hop = p['hop_seconds'] or (bundle.hop_seconds if bundle is not None
                               else FALLBACK_HOP_SECONDS)
    vad = {'frame_seconds': p['vad_frame_seconds'], 'margin_db': p['vad_margin_db'],
           'min_level_db': p['vad_min_level_db'],
           'hangover_seconds': p['vad_hangover_seconds'],
           'noise_window_seconds': p['vad_noise_window_seconds'],
           'noise_percentile': p['vad_noise_percentile']}
    buffer = AudioStreamBuffer(p['buffer_seconds'], p['gap_tolerance'], p['max_gap_fill'])
    factory, error = None, ''
    if p['vad'] == 'silero':
        try:
            model = SileroModel.load(vad_model, threads=1)
            factory = lambda rate: SileroVad(  # noqa: E731
                rate, model, p['vad_threshold'], p['vad_frame_seconds'],
                p['vad_silero_hangover_seconds'], p['vad_silero_preroll_seconds'])
        except VadModelError as exc:
            error = f'{exc}; using the energy VAD instead'
    if p['span_pooling'] not in SPAN_POOLING:
        raise ValueError(f'span_pooling {p["span_pooling"]!r}: use one of {SPAN_POOLING}')
    pool = (SpanPool(hop, p['span_hangover_seconds'], p['span_max_seconds'])
            if p['span_pooling'] != 'none' else None)
    pipe = VoicePipeline(bundle, window, hop, buffer, vad, p['min_speech_fraction'],
                         speaker_half_life_seconds=(p['speaker_half_life_seconds']
                                                    if p['speaker_adaptation'] else None),
                         vad_factory=factory, span_pool=pool,
                         span_embedding=p['span_pooling'] == 'all')
    pipe.vad_kind, pipe.vad_error = ('silero' if factory is not None else 'energy'), error
    return pipe
