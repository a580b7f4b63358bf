"""vocal_node: audio (AudioChunk) -> voice/features (EmotionFeature, source_id "voice").

Thin adapter over voice_pipeline.VoicePipeline: decode, reject NaN/inf, mix to mono, place the
chunk by its stamp (gaps, duplicates, reordering and rate changes are counted and logged), and
publish one feature per sliding window with the VAD's speech flag and probability.  Without a
valid model bundle there is no embedding to give: the node does not configure, stays unconfigured
and says why on /diagnostics and in the log (run alone with autostart, it exits with code 1).
"""
from __future__ import annotations

import time
from typing import Optional

from emotion_msgs.msg import AudioChunk, EmotionFeature
from emotion_runtime.labels import parse_labels
from emotion_runtime.model_loading import load_bundle_or_error, warm_up
from emotion_runtime.node_kit import ConfigureError, KitNode, run_node
from emotion_runtime.params import ParameterError
from emotion_runtime.stats import ERROR, WARN, LatencyMeter, RateMeter, StatusReport

from .audio_buffer import ChunkEvent
from .audio_format import AudioFormatError, check_sample_rate, decode_pcm, to_mono
from .node_params import VOCAL_PARAMS
from .ros_common import seconds_to_stamp, sensor_qos, stamp_to_seconds
from .voice_activity import EnergyVad, SileroVad
from .voice_pipeline import build_voice_pipeline

#: Why a chunk was refused: AudioFormatError.reason values, and an unexpected failure.
REJECT_REASONS = ('sample_rate', 'channels', 'encoding', 'data_length', 'non_finite_samples',
                  'processing_error')


class VocalNode(KitNode):
    """Voice-activity detection and vocal embeddings for the microphone stream.

    Lifecycle: configure loads and warms up the vocal encoder (FAILURE without a valid bundle),
    builds the pipeline and creates the lifecycle publisher; activate subscribes to audio;
    deactivate unsubscribes; cleanup releases the pipeline and the model.
    """

    def __init__(self, **node_kwargs) -> None:
        super().__init__('vocal_node', VOCAL_PARAMS, 'voice analysis', **node_kwargs)
        self.bundle = None
        self.pipeline = None
        self.model_error = ''
        self.chunk_meter, self.window_meter = RateMeter(), RateMeter()
        self.latency = LatencyMeter()
        self.rejected = 0
        self.rejected_by: dict[str, int] = dict.fromkeys(REJECT_REASONS, 0)
        self.frame_id = ''
        self.cpu_seconds = 0.0
        self.audio_seconds = 0.0

    def configure(self) -> None:
        p = self.p
        with self.warming_up('loading the model bundle'):
            self.bundle, self.model_error = load_bundle_or_error(
                p['model_bundle'], p['encoder_threads'],
                expected_labels=parse_labels(p['expected_labels']))
        if self.bundle is None:
            raise ConfigureError(f'model bundle not loaded: {self.model_error}')
        try:
            self.pipeline = build_voice_pipeline(p, self.bundle)
        except ValueError as exc:
            raise ParameterError(str(exc)) from exc
        if self.pipeline.vad_error:
            self.get_logger().error(f'VAD: {self.pipeline.vad_error}')
        self.get_logger().info(f'VAD {self.pipeline.vad_kind}, '
                               f'voice windows {self.pipeline.window_seconds:.2f} s every '
                               f'{self.pipeline.hop_seconds:.2f} s, bundle rate '
                               f'{self.bundle.sample_rate} Hz')
        try:
            with self.warming_up('vocal encoder warm-up'):
                warm_up(self.bundle, voice=True)
        except Exception as exc:  # noqa: BLE001 - reported as the configure failure
            raise ConfigureError(f'warm-up failed: {type(exc).__name__}: {exc}') from exc
        self.get_logger().info(f'model {self.bundle.summary}')
        self.pub = self.lifecycle_publisher(EmotionFeature, 'voice/features', sensor_qos(10))

    def activate(self) -> None:
        # Audio chunks are small: a deep queue rides out a slow window without losing audio.
        self.active_subscription(AudioChunk, 'audio', self._on_audio, sensor_qos(50))

    def cleanup(self) -> None:
        self.pipeline = None
        self.bundle = None

    def on_parameters(self, changed: dict) -> None:
        """VAD margins/threshold and the speech fraction: at once (the running VAD and its
        settings)."""
        pipe = self.pipeline
        if pipe is None:
            return
        names = {'vad_margin_db': 'margin_db', 'vad_min_level_db': 'min_level_db',
                 'vad_noise_percentile': 'noise_percentile'}
        for name, attr in names.items():
            if name in changed:
                pipe.vad_params[attr] = float(changed[name])
                if isinstance(pipe.vad, EnergyVad):
                    setattr(pipe.vad, attr, float(changed[name]))
        if 'vad_threshold' in changed and isinstance(pipe.vad, SileroVad):
            pipe.vad.threshold = float(changed['vad_threshold'])
        if 'min_speech_fraction' in changed:
            pipe.min_speech_fraction = float(changed['min_speech_fraction'])

    def _on_audio(self, msg: AudioChunk) -> None:
        t0 = time.perf_counter()
        self.chunk_meter.tick()
        try:
            check_sample_rate(msg.sample_rate)    # before decoding: bounds every later size
            frames = decode_pcm(msg.data, msg.encoding, int(msg.channels))
        except AudioFormatError as exc:
            self._reject(exc.reason)
            self.get_logger().error(f'audio chunk rejected: {exc}', throttle_duration_sec=1.0)
            return
        try:
            result, windows = self.pipeline.push(stamp_to_seconds(msg.header.stamp),
                                                 int(msg.sample_rate), to_mono(frames))
        except AudioFormatError as exc:      # NaN/inf samples (own line: own log throttle)
            self._reject(exc.reason)
            self.get_logger().error(f'audio chunk rejected: {exc}', throttle_duration_sec=1.0)
            return
        except Exception as exc:  # noqa: BLE001 - never crash on one chunk
            self._reject('processing_error')
            self.get_logger().error(f'audio chunk failed: {type(exc).__name__}: {exc}',
                                    throttle_duration_sec=1.0)
            return
        self.frame_id = msg.header.frame_id
        self.audio_seconds += frames.shape[0] / msg.sample_rate
        if result.event not in (ChunkEvent.OK, ChunkEvent.FIRST):
            self.get_logger().warn(f'audio stream: {result.event.value} (offset '
                                   f'{result.offset_seconds * 1e3:+.1f} ms, counts '
                                   f'{self._irregular()})', throttle_duration_sec=1.0)
        for w in windows:
            if w.embedding is None:
                continue
            msg_out = EmotionFeature(source_id='voice', modality=EmotionFeature.MODALITY_VOICE,
                                     embedding=w.embedding.astype(float).tolist(),
                                     logits=w.logits.astype(float).tolist(),
                                     labels=list(self.bundle.labels),
                                     quality=float(w.speech_probability), speech=bool(w.speech))
            seconds_to_stamp(w.stamp, msg_out.header.stamp)
            msg_out.header.frame_id = self.frame_id
            self.pub.publish(msg_out)
            self.window_meter.tick()
        dt = time.perf_counter() - t0
        self.cpu_seconds += dt
        if windows:
            self.latency.add(dt)
        if self.pipeline.model_error:
            self.get_logger().error(f'vocal encoder failed: {self.pipeline.model_error}',
                                    throttle_duration_sec=5.0)

    def _reject(self, reason: str) -> None:
        self.rejected += 1
        self.rejected_by[reason] = self.rejected_by.get(reason, 0) + 1

    def _irregular(self) -> dict:
        return {k: v for k, v in self.pipeline.buffer.counts.items()
                if v and k not in ('ok', 'first')}

    def report(self) -> StatusReport:
        r = StatusReport()
        if self.pipeline is None:
            return r
        r.add('chunk_rate_hz', self.chunk_meter.rate())
        r.add('window_rate_hz', self.window_meter.rate())
        r.add('windows', self.pipeline.windows_emitted)
        r.add('chunks_rejected', self.rejected)
        for k, v in self.rejected_by.items():
            r.add(f'rejected_{k}', v)
        for k, v in self.pipeline.buffer.counts.items():
            r.add(f'chunks_{k}', v)
        if self.audio_seconds:
            r.add('cpu_percent_of_realtime', 100.0 * self.cpu_seconds / self.audio_seconds)
        r.latency('processing', self.latency)
        r.add('vad', self.pipeline.vad_kind)
        if isinstance(self.pipeline.vad, EnergyVad):
            r.add('noise_floor_db', self.pipeline.vad.noise_floor_db)
        elif isinstance(self.pipeline.vad, SileroVad):
            r.add('speech_probability_last', self.pipeline.vad.last_probability)
        if self.pipeline.vad_error:
            r.add('vad_error', self.pipeline.vad_error)
            r.raise_level(ERROR, f'VAD: {self.pipeline.vad_error}')
        if self.pipeline.calibration is not None:
            r.add('speaker_calibration_seconds', self.pipeline.calibration_seconds())
        r.model(self.model_error or self.pipeline.model_error)
        # WARN while it happens (the totals are the values above), OK again once it stops
        if self.recent('irregular_or_rejected', self.rejected + sum(self._irregular().values())):
            r.raise_level(WARN, 'irregular or rejected audio chunks lately')
        return r


def main(args: Optional[list] = None) -> None:
    raise SystemExit(run_node(VocalNode, args))


if __name__ == '__main__':
    main()
