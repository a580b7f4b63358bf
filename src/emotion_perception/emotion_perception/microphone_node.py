"""microphone_node: sounddevice input stream or a sound file -> audio (emotion_msgs/AudioChunk).

Thin adapter over audio_source: a worker thread takes blocks (device callback queue, or the file
paced in real time) and publishes them stamped with the capture time of their first sample.
Missing PortAudio or device: the node logs a clear error and keeps retrying with backoff (it does
not exit), so plugging the microphone in later works without a restart.
"""
from __future__ import annotations

import threading
import time
from typing import Optional

from emotion_msgs.msg import AudioChunk
from rclpy.node import Node

from .audio_format import AudioFormatError, encode_pcm
from .audio_source import AudioSourceError, DeviceAudioSource, FileAudioSource
from .camera_source import Backoff
from emotion_runtime.stats import ERROR, OK, WARN, LatencyMeter, RateMeter, StatusReport
from emotion_runtime.params import ParamSpec, any_value, in_range, one_of, positive
from .ros_common import DiagnosticsPublisher, declare_parameters, run_node, seconds_to_stamp, \
    sensor_qos

PARAMS = [
    ParamSpec('device', '', 'sounddevice input device: "" = default, an index, or a name '
              'substring. Ignored when `file` is set.', any_value),
    ParamSpec('file', '', 'WAV/FLAC/OGG file to publish instead of a device (tests, replays); '
              'its own sample rate is used.', any_value),
    ParamSpec('loop', False, 'Restart the file at its end (file source only).'),
    ParamSpec('realtime', True, 'Pace the file at its real-time rate (false: as fast as '
              'possible, stamps still advance by the sample count).'),
    ParamSpec('file_wait_subscribers', 0, 'File source: hold the first chunk until this many '
              'subscribers are matched on `audio` (0 = start at once), so DDS discovery does '
              'not eat the start of a replayed file.', in_range(0, 100)),
    ParamSpec('file_wait_timeout', 10.0, 'Longest hold for `file_wait_subscribers` [s]; then '
              'the file starts anyway, with a warning.', positive),
    ParamSpec('sample_rate', 16000, 'Device sample rate [Hz].', in_range(8000, 192000)),
    ParamSpec('channels', 1, 'Channels to capture (device) or to mix the file to (0 = the '
              "file's own).", in_range(0, 8)),
    ParamSpec('chunk_seconds', 0.1, 'Duration of one AudioChunk [s].', in_range(0.005, 2.0)),
    ParamSpec('encoding', 'S16LE', 'Sample encoding of AudioChunk.data.', one_of('S16LE', 'F32LE')),
    ParamSpec('frame_id', 'microphone_link', 'header.frame_id of the chunks.', any_value),
    ParamSpec('reconnect_initial', 0.5, 'First retry delay [s] when the device is missing.',
              positive),
    ParamSpec('reconnect_max', 10.0, 'Longest retry delay [s].', positive),
]


class MicrophoneNode(Node):
    """Publishes contiguous AudioChunks with sensor-data QoS."""

    def __init__(self) -> None:
        super().__init__('microphone_node')
        self.p = p = declare_parameters(self, PARAMS)
        if p['channels'] == 0 and not p['file']:
            p['channels'] = 1
        self.pub = self.create_publisher(AudioChunk, 'audio', sensor_qos(10))
        self.rate_meter, self.publish_latency = RateMeter(), LatencyMeter()
        self.backoff = Backoff(p['reconnect_initial'], max(p['reconnect_max'],
                                                           p['reconnect_initial']))
        self.state = 'starting'
        self.last_error = ''
        self.rejected = 0
        self.source: Optional[object] = None
        self._hold_since: Optional[float] = None   # when the file began waiting for subscribers
        self._file_started = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.diagnostics = DiagnosticsPublisher(
            self, f'microphone {p["file"] or p["device"] or "default"}', self._report)
        self._thread.start()

    # ------------------------------------------------------------------ sources
    def _open(self) -> object:
        p = self.p
        if p['file']:
            src = FileAudioSource(p['file'], p['chunk_seconds'], p['loop'], p['channels'])
            self.get_logger().info(f'publishing {p["file"]!r} ({src.sample_rate} Hz, '
                                   f'{src.channels} ch, {src.data.shape[0] / src.sample_rate:.2f}'
                                   f' s, loop={p["loop"]}, realtime={p["realtime"]})')
            return src
        frames = max(1, int(round(p['chunk_seconds'] * p['sample_rate'])))
        src = DeviceAudioSource(p['device'], p['sample_rate'], p['channels'], frames)
        src.open()
        self.get_logger().info(f'capturing from device {p["device"] or "default"!r} at '
                               f'{p["sample_rate"]} Hz x {p["channels"]} ch')
        return src

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.source is None:
                try:
                    self.source = self._open()
                    self.backoff.reset()
                    self.state = 'running'
                except AudioSourceError as exc:
                    delay = self.backoff.next_delay()
                    self.state, self.last_error = 'error', str(exc)
                    self.get_logger().error(f'{exc}; retrying in {delay:.1f} s')
                    self._stop.wait(delay)
                    continue
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 - keep the node up, reopen the source
                self.get_logger().error(f'audio source failed: {exc}; reopening')
                self.last_error = str(exc)
                self._close_source()

    def _step(self) -> None:
        src = self.source
        if isinstance(src, FileAudioSource):
            if src.finished:
                if self.state != 'finished':
                    self.get_logger().info('audio file finished (loop is false)')
                    self.state = 'finished'
                self._stop.wait(0.2)
                return
            if not self._subscribers_ready():
                return
            if self.p['realtime']:
                self._stop.wait(src.wait_time())
            block = src.next_block()
        else:
            assert isinstance(src, DeviceAudioSource)
            block = src.get(timeout=0.5)
            if block is None:
                if not src.active:
                    raise AudioSourceError('input stream stopped (device unplugged?)')
                return
        if block is None or self._stop.is_set():
            return
        t0 = time.perf_counter()
        msg = AudioChunk(sample_rate=block.sample_rate, channels=block.samples.shape[1],
                         encoding=self.p['encoding'])
        try:
            msg.data = encode_pcm(block.samples, self.p['encoding'])
        except AudioFormatError as exc:
            self.rejected += 1
            self.get_logger().error(f'{exc}', throttle_duration_sec=1.0)
            return
        seconds_to_stamp(block.start_time, msg.header.stamp)
        msg.header.frame_id = self.p['frame_id']
        self.pub.publish(msg)
        self.publish_latency.add(time.perf_counter() - t0)
        self.rate_meter.tick()

    def _subscribers_ready(self) -> bool:
        """False while the file waits for `file_wait_subscribers` (sleeps a little)."""
        want = self.p['file_wait_subscribers']
        if want <= 0 or self._file_started:
            return True
        now = time.monotonic()
        if self._hold_since is None:
            self._hold_since = now
            self.state = 'waiting for subscribers'
        have = self.pub.get_subscription_count()
        if have >= want:
            self.get_logger().info(f'{have} subscriber(s) matched; starting the file')
        elif now - self._hold_since >= self.p['file_wait_timeout']:
            self.get_logger().warning(
                f'only {have} of {want} subscriber(s) after {self.p["file_wait_timeout"]:.1f} s;'
                ' starting the file anyway')
        else:
            self._stop.wait(0.02)
            return False
        self._file_started = True
        self.state = 'running'
        return True

    def _close_source(self) -> None:
        src, self.source = self.source, None
        if src is not None:
            src.close()

    def _report(self) -> StatusReport:
        r = StatusReport()
        r.add('state', self.state)
        r.add('chunk_rate_hz', self.rate_meter.rate())
        r.add('chunks', self.rate_meter.total)
        r.add('rejected_chunks', self.rejected)
        r.latency('encode_publish', self.publish_latency)
        if isinstance(self.source, DeviceAudioSource):
            r.add('overflows', self.source.overflows)
            r.add('dropped_blocks', self.source.dropped_blocks)
        if self.state == 'error':
            r.raise_level(ERROR, self.last_error)
        elif self.state == 'finished':
            r.raise_level(OK, 'file finished')
        elif self.rejected:
            r.raise_level(WARN, 'chunks rejected (NaN/inf)')
        return r

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._close_source()


def main(args: Optional[list] = None) -> None:
    raise SystemExit(run_node(MicrophoneNode, args))


if __name__ == '__main__':
    main()
