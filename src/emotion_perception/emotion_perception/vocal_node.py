"""vocal_node: audio (AudioChunk) -> voice/features (EmotionFeature, source_id "voice").

Thin adapter over voice_pipeline.VoicePipeline: decode, reject NaN/inf, mix to mono, place the
chunk by its stamp (gaps, duplicates, reordering and rate changes are counted and logged), and
publish one feature per sliding window with the VAD's speech flag and probability.  Without a
model bundle no features are published (there is no embedding to give) and /diagnostics says why.
"""
from __future__ import annotations

import time
from typing import Optional

from emotion_msgs.msg import AudioChunk, EmotionFeature
from rclpy.node import Node

from .audio_buffer import AudioStreamBuffer, ChunkEvent
from .audio_format import AudioFormatError, decode_pcm, to_mono
from emotion_runtime.model_loading import load_bundle_or_error, warm_up
from emotion_runtime.stats import WARN, LatencyMeter, RateMeter, StatusReport
from emotion_runtime.params import ParamSpec, ParameterError, any_value, in_range, non_negative
from .ros_common import (DiagnosticsPublisher, declare_parameters, run_node, seconds_to_stamp,
                         sensor_qos, stamp_to_seconds)
from .voice_pipeline import VoicePipeline

# Used only when there is no bundle to take them from (the node then publishes no features but
# still runs the VAD and the stream checks, which /diagnostics reports).
FALLBACK_WINDOW_SECONDS, FALLBACK_HOP_SECONDS = 2.0, 0.5

PARAMS = [
    ParamSpec('model_bundle', '', 'Model bundle directory; "" = the shipped default bundle.',
              any_value),
    ParamSpec('encoder_threads', 1, 'onnxruntime intra-op threads of the vocal encoder.',
              in_range(1, 16)),
    ParamSpec('window_seconds', 0.0, 'Analysis window [s]; 0 = the bundle manifest\'s.',
              in_range(0.0, 30.0)),
    ParamSpec('hop_seconds', 0.0, 'Window hop [s]; 0 = the bundle manifest\'s.',
              in_range(0.0, 30.0)),
    ParamSpec('buffer_seconds', 10.0, 'Ring buffer length [s] (must exceed window + hop).',
              in_range(1.0, 120.0)),
    ParamSpec('gap_tolerance', 0.02, 'Stamp jitter [s] still treated as contiguous.',
              in_range(0.0, 1.0)),
    ParamSpec('max_gap_fill', 0.5, 'Gaps up to this [s] are filled with silence; longer ones '
              'reset the stream.', non_negative),
    ParamSpec('vad_frame_seconds', 0.02, 'VAD frame length [s].', in_range(0.005, 0.1)),
    ParamSpec('vad_margin_db', 10.0, 'VAD: speech is this many dB above the noise floor.',
              in_range(0.0, 60.0)),
    ParamSpec('vad_min_level_db', -50.0, 'VAD: frames quieter than this [dBFS] are never '
              'speech.', in_range(-120.0, 0.0)),
    ParamSpec('vad_hangover_seconds', 0.3, 'VAD: speech is held this long after the last loud '
              'frame.', in_range(0.0, 5.0)),
    ParamSpec('vad_noise_window_seconds', 5.0, 'VAD: history [s] for the noise-floor '
              'percentile.', in_range(0.1, 60.0)),
    ParamSpec('vad_noise_percentile', 10.0, 'VAD: percentile of frame levels taken as noise '
              'floor.', in_range(0.0, 50.0)),
    ParamSpec('min_speech_fraction', 0.2, 'A window is speech when at least this fraction of '
              'its VAD frames are.', in_range(0.0, 1.0)),
    ParamSpec('speaker_adaptation', True, 'Speaker-normalised bundles: calibrate the log-mel '
              'statistics online to the person talking (false = training population\'s).',
              any_value),
    ParamSpec('speaker_half_life_seconds', 300.0, 'Speaker adaptation: speech this many seconds '
              'old counts half (shorter follows a new speaker sooner).', in_range(1.0, 36000.0)),
]


class VocalNode(Node):
    """Voice-activity detection and vocal embeddings for the microphone stream."""

    def __init__(self) -> None:
        super().__init__('vocal_node')
        self.p = p = declare_parameters(self, PARAMS)
        self.bundle, self.model_error = load_bundle_or_error(
            p['model_bundle'], p['encoder_threads'], self.get_logger().error)
        window = p['window_seconds'] or (self.bundle.window_seconds if self.bundle
                                         else FALLBACK_WINDOW_SECONDS)
        hop = p['hop_seconds'] or (self.bundle.hop_seconds if self.bundle
                                   else FALLBACK_HOP_SECONDS)
        vad = {'frame_seconds': p['vad_frame_seconds'], 'margin_db': p['vad_margin_db'],
               'min_level_db': p['vad_min_level_db'],
               'hangover_seconds': p['vad_hangover_seconds'],
               'noise_window_seconds': p['vad_noise_window_seconds'],
               'noise_percentile': p['vad_noise_percentile']}
        try:
            buffer = AudioStreamBuffer(p['buffer_seconds'], p['gap_tolerance'], p['max_gap_fill'])
            self.pipeline = VoicePipeline(
                self.bundle, window, hop, buffer, vad, p['min_speech_fraction'],
                speaker_half_life_seconds=(p['speaker_half_life_seconds']
                                           if p['speaker_adaptation'] else None))
        except ValueError as exc:
            raise ParameterError(str(exc)) from exc
        self.get_logger().info(f'voice windows {window:.2f} s every {hop:.2f} s'
                               + (f', bundle rate {self.bundle.sample_rate} Hz' if self.bundle
                                  else ', no model'))
        if self.bundle is not None:
            try:
                warm_up(self.bundle, voice=True)
                self.get_logger().info(f'model {self.bundle.summary}')
            except Exception as exc:  # noqa: BLE001 - reported, the node runs without the model
                self.model_error = f'warm-up failed: {exc}'
                self.get_logger().error(self.model_error)
                self.bundle = self.pipeline.bundle = None
        self.pub = self.create_publisher(EmotionFeature, 'voice/features', sensor_qos(10))
        # Audio chunks are small: a deep queue rides out a slow window without losing audio.
        self.create_subscription(AudioChunk, 'audio', self._on_audio, sensor_qos(50))
        self.chunk_meter, self.window_meter = RateMeter(), RateMeter()
        self.latency = LatencyMeter()
        self.rejected = 0
        self.frame_id = ''
        self.cpu_seconds = 0.0
        self.audio_seconds = 0.0
        self.diagnostics = DiagnosticsPublisher(self, 'voice analysis', self._report)

    def _on_audio(self, msg: AudioChunk) -> None:
        t0 = time.perf_counter()
        self.chunk_meter.tick()
        try:
            frames = decode_pcm(msg.data, msg.encoding, int(msg.channels))
            if msg.sample_rate <= 0:
                raise AudioFormatError(f'sample_rate must be > 0, got {msg.sample_rate}')
        except AudioFormatError as exc:
            self.rejected += 1
            self.get_logger().error(f'audio chunk rejected: {exc}', throttle_duration_sec=1.0)
            return
        try:
            result, windows = self.pipeline.push(stamp_to_seconds(msg.header.stamp),
                                                 int(msg.sample_rate), to_mono(frames))
        except AudioFormatError as exc:      # NaN/inf samples (own line: own log throttle)
            self.rejected += 1
            self.get_logger().error(f'audio chunk rejected: {exc}', throttle_duration_sec=1.0)
            return
        except Exception as exc:  # noqa: BLE001 - never crash on one chunk
            self.rejected += 1
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

    def _irregular(self) -> dict:
        return {k: v for k, v in self.pipeline.buffer.counts.items()
                if v and k not in ('ok', 'first')}

    def _report(self) -> StatusReport:
        r = StatusReport()
        r.add('chunk_rate_hz', self.chunk_meter.rate())
        r.add('window_rate_hz', self.window_meter.rate())
        r.add('windows', self.pipeline.windows_emitted)
        r.add('chunks_rejected', self.rejected)
        for k, v in self.pipeline.buffer.counts.items():
            r.add(f'chunks_{k}', v)
        if self.audio_seconds:
            r.add('cpu_percent_of_realtime', 100.0 * self.cpu_seconds / self.audio_seconds)
        r.latency('processing', self.latency)
        if self.pipeline.vad is not None:
            r.add('noise_floor_db', self.pipeline.vad.noise_floor_db)
        if self.pipeline.calibration is not None:
            r.add('speaker_calibration_seconds', self.pipeline.calibration_seconds())
        r.model(self.model_error or self.pipeline.model_error)
        if self.rejected or self._irregular():
            r.raise_level(WARN, 'irregular or rejected audio chunks')
        return r


def main(args: Optional[list] = None) -> None:
    raise SystemExit(run_node(VocalNode, args))


if __name__ == '__main__':
    main()
