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
from emotion_runtime.node_kit import KitNode, run_node
from emotion_runtime.stats import ERROR, OK, WARN, LatencyMeter, RateMeter, StatusReport

from .audio_format import AudioFormatError, clean_non_finite, encode_pcm
from .audio_source import AudioSourceError, DeviceAudioSource, FileAudioSource
from .camera_source import Backoff
from .node_params import MICROPHONE_PARAMS
from .ros_common import reliable_qos, seconds_to_stamp


class MicrophoneNode(KitNode):
    """Publishes contiguous AudioChunks, reliable (REP-2003).

    Lifecycle: configure creates the (lifecycle) publisher; activate starts the worker thread that
    opens the device or file (retrying with backoff); deactivate stops it and releases the device.
    """

    def __init__(self, **node_kwargs) -> None:
        super().__init__('microphone_node', MICROPHONE_PARAMS,
                         lambda p: f'microphone {p["file"] or p["device"] or "default"}',
                         **node_kwargs)
        p = self.p
        if p['channels'] == 0 and not p['file']:
            p['channels'] = 1
        self.rate_meter, self.publish_latency = RateMeter(), LatencyMeter()
        self.state = 'stopped'
        self.last_error = ''
        self.rejected = 0
        self.non_finite = 0          # NaN/inf samples replaced by 0 (file at load, device blocks)
        self.failures = 0            # exceptions caught in the worker (each followed by a retry)
        self.source: Optional[object] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def configure(self) -> None:
        # Reliable publisher, best-effort subscribers (REP-2003): default-QoS tools see it.
        self.pub = self.lifecycle_publisher(AudioChunk, 'audio', reliable_qos(10))

    def activate(self) -> None:
        p = self.p
        self.backoff = Backoff(p['reconnect_initial'], max(p['reconnect_max'],
                                                           p['reconnect_initial']))
        self.state = 'starting'
        self._hold_since: Optional[float] = None   # when the file began waiting for subscribers
        self._file_started = False
        self._skip_logged = False
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def deactivate(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        self._close_source()
        self.state = 'stopped'

    # ------------------------------------------------------------------ sources
    def _open(self) -> object:
        p = self.p
        if p['file']:
            src = FileAudioSource(p['file'], p['chunk_seconds'], p['loop'], p['channels'],
                                  clock=self._now if p['file_start_time'] > 0 else time.time,
                                  start_time=p['file_start_time'])
            start = f', first sample at {p["file_start_time"]:.3f}' \
                if p['file_start_time'] > 0 else ''
            self.get_logger().info(f'publishing {p["file"]!r} ({src.sample_rate} Hz, '
                                   f'{src.channels} ch, {src.data.shape[0] / src.sample_rate:.2f}'
                                   f' s, loop={p["loop"]}, realtime={p["realtime"]}{start})')
            if src.non_finite_samples:
                self.non_finite += src.non_finite_samples
                self.get_logger().warning(f'{src.non_finite_samples} NaN/inf samples in '
                                          f'{p["file"]!r} replaced by 0')
            return src
        frames = max(1, int(round(p['chunk_seconds'] * p['sample_rate'])))
        src = DeviceAudioSource(p['device'], p['sample_rate'], p['channels'], frames)
        src.open()
        self.get_logger().info(f'capturing from device {p["device"] or "default"!r} at '
                               f'{p["sample_rate"]} Hz x {p["channels"]} ch')
        return src

    def _now(self) -> float:
        """The node clock [s] (ROS time: what stamps and file_start_time are on)."""
        return self.get_clock().now().nanoseconds * 1e-9

    def _run(self) -> None:
        """The worker: open (retrying with backoff), then publish block after block.  Every
        exception is caught here: the cause goes to the log and, as ERROR, to /diagnostics, the
        source is closed and reopened after the backoff delay; the thread never dies."""
        while not self._stop.is_set():
            try:
                if self.source is None:
                    self.source = self._open()
                    self.backoff.reset()
                    self.state = 'running'
                self._step()
            except Exception as exc:  # noqa: BLE001 - keep the node up, reopen the source
                self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        delay = self.backoff.next_delay()
        cause = str(exc) if isinstance(exc, AudioSourceError) else \
            f'audio source failed: {type(exc).__name__}: {exc}'
        self.state, self.last_error = 'error', cause
        if not isinstance(exc, AudioSourceError):
            self.failures += 1
        self.get_logger().error(f'{cause}; retrying in {delay:.1f} s')
        try:
            self._close_source()
        except Exception:  # noqa: BLE001 - a broken device is dropped all the same
            self.source = None
        self._stop.wait(delay)

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
            if src.skipped_blocks and not self._skip_logged:
                self._skip_logged = True
                self.get_logger().warning(
                    f'started {src.skipped_blocks * src.chunk_frames / src.sample_rate:.2f} s '
                    'after file_start_time: skipped the audio already past')
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
        samples, bad = clean_non_finite(block.samples)
        self.non_finite += bad
        msg = AudioChunk(sample_rate=block.sample_rate, channels=samples.shape[1],
                         encoding=self.p['encoding'])
        try:
            msg.data = encode_pcm(samples, self.p['encoding'])
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
        if want <= 0 or self._file_started or self.p['file_start_time'] > 0:
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

    def report(self) -> StatusReport:
        r = StatusReport()
        r.add('state', self.state)
        r.add('chunk_rate_hz', self.rate_meter.rate())
        r.add('chunks', self.rate_meter.total)
        r.add('rejected_chunks', self.rejected)
        r.add('non_finite_samples_replaced', self.non_finite)
        r.add('worker_failures', self.failures)
        r.latency('encode_publish', self.publish_latency)
        if isinstance(self.source, FileAudioSource) and self.p['file_start_time'] > 0:
            r.add('file_start_time', self.p['file_start_time'])
            r.add('blocks_skipped_late_start', self.source.skipped_blocks)
        if isinstance(self.source, DeviceAudioSource):
            r.add('overflows', self.source.overflows)
            r.add('dropped_blocks', self.source.dropped_blocks)
        if self.state == 'error':
            r.raise_level(ERROR, self.last_error)
        elif self.state == 'finished':
            r.raise_level(OK, 'file finished')
        elif self.recent('rejected', self.rejected):     # WARN while it happens, total above
            r.raise_level(WARN, 'chunks rejected lately')
        elif self.recent('non_finite', self.non_finite):
            r.raise_level(WARN, 'NaN/inf samples replaced by 0 lately')
        return r


def main(args: Optional[list] = None) -> None:
    raise SystemExit(run_node(MicrophoneNode, args))


if __name__ == '__main__':
    main()
