"""camera_node: OpenCV capture (device, video file or stream URL) -> image_raw (+ camera_info).

Thin adapter over camera_source.CameraSource: a timer at ``rate`` reads one frame, stamps it at
capture and publishes it as bgr8.  A video file with ``file_start_time`` plays on a fixed
timeline instead (camera_source.FileTimeline): frame n is stamped ``file_start_time + n / rate``.
When the camera vanishes the node warns, retries with exponential backoff and keeps running.
"""
from __future__ import annotations

import time
from typing import Optional

from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image

from emotion_runtime.node_kit import KitNode, run_node
from emotion_runtime.params import ParameterError
from emotion_runtime.stats import ERROR, OK, WARN, LatencyMeter, RateMeter, StatusReport

from .camera_source import Backoff, CameraError, CameraSource, FileTimeline, load_calibration, parse_source
from .image_conversion import numpy_to_image
from .node_params import CAMERA_PARAMS
from .ros_common import reliable_qos


class CameraNode(KitNode):
    """Publishes camera frames as sensor_msgs/Image (bgr8), reliable (REP-2003).

    Lifecycle: configure checks the source and loads the calibration; activate opens the camera
    and starts the capture timer; deactivate stops it and releases the camera.
    """

    def __init__(self, **node_kwargs) -> None:
        super().__init__('camera_node', CAMERA_PARAMS, lambda p: f'camera {p["source"]}',
                         **node_kwargs)
        self.source: Optional[CameraSource] = None
        self.calibration = None
        self.rate_meter, self.read_latency = RateMeter(), LatencyMeter()
        self.publish_latency = LatencyMeter()   # capture stamp -> image_raw published
        self.reconnects = 0
        self.failures = 0

    def check_parameters(self, p: dict) -> None:
        if p['reconnect_max'] < p['reconnect_initial']:
            raise ParameterError('invalid parameter(s): reconnect_max must be >= '
                                 'reconnect_initial')
        try:
            parse_source(p['source'])
        except CameraError as exc:
            raise ParameterError(f'invalid parameter(s): source={p["source"]!r}: {exc}') from exc

    def configure(self) -> None:
        p = self.p
        try:
            self.calibration = load_calibration(p['calibration_file']) \
                if p['calibration_file'] else None
        except CameraError as exc:
            raise ParameterError(f'calibration_file={p["calibration_file"]!r}: {exc}') from exc
        # Reliable publishers (REP-2003): default-QoS tools (rviz, ros2 topic echo, rosbag2) see
        # them; the project's own subscribers are best-effort.
        self.image_pub = self.lifecycle_publisher(Image, 'image_raw', reliable_qos(5))
        self.info_pub = (self.lifecycle_publisher(CameraInfo, 'camera_info', reliable_qos(5))
                         if self.calibration else None)
        self.get_logger().info(f'camera source {p["source"]!r} at {p["rate"]} Hz, frame_id '
                               f'{p["frame_id"]!r}, calibration '
                               f'{p["calibration_file"] or "none"}')

    def activate(self) -> None:
        p = self.p
        self.source = CameraSource(p['source'], p['width'], p['height'], p['rate'], p['loop'])
        self.backoff = Backoff(p['reconnect_initial'], p['reconnect_max'])
        self._next_attempt = 0.0
        self._ended_logged = False
        self.timeline = FileTimeline(p['file_start_time'], p['rate']) \
            if self.source.is_file and p['file_start_time'] > 0 else None
        self._waiting_logged = False
        self._try_open()
        # on a file timeline the timer runs at 4x the rate, so a frame goes out within a quarter
        # of a frame period after its due time (its stamp), as a camera's does after capture
        self.active_timer(1.0 / (p['rate'] * (4 if self.timeline is not None else 1)),
                          self._tick)

    def deactivate(self) -> None:
        if self.source is not None:
            self.source.close()

    def cleanup(self) -> None:
        self.calibration = None

    def _try_open(self) -> None:
        now = time.monotonic()
        if now < self._next_attempt:
            return
        try:
            self.source.open()
        except CameraError as exc:
            delay = self.backoff.next_delay()
            self._next_attempt = now + delay
            self.get_logger().warn(f'{exc}; retrying in {delay:.1f} s')
            return
        if self.backoff.failures:
            self.reconnects += 1
        self.backoff.reset()
        self.get_logger().info(f'camera {self.p["source"]!r} opened')
        fps = self.source.file_fps
        if self.timeline is not None and fps > 0 and abs(fps - self.p['rate']) > 0.01 * fps:
            self.get_logger().warn(f'the video file declares {fps:g} fps but rate is '
                                   f'{self.p["rate"]:g} Hz: with file_start_time its frames are '
                                   f'stamped at the rate, so its clock runs {self.p["rate"] / fps:.2f}x')

    def _tick(self) -> None:
        """The capture timer: one frame; any failure is reported and retried, never raised
        into the executor (which would end the process)."""
        try:
            self._capture()
        except Exception as exc:  # noqa: BLE001 - a camera fault must not take the node down
            self.failures += 1
            self.source.last_error = f'capture failed: {type(exc).__name__}: {exc}'
            self.source.close()
            delay = self.backoff.next_delay()
            self._next_attempt = time.monotonic() + delay
            self.get_logger().error(f'{self.source.last_error}; retrying in {delay:.1f} s',
                                    throttle_duration_sec=5.0)

    def _capture(self) -> None:
        if self.source.ended:
            if not self._ended_logged:
                self.get_logger().info('video file finished (loop is false); no more images')
                self._ended_logged = True
            return
        if not self.source.is_open:
            self._try_open()
            if not self.source.is_open:
                return
        drop = 0
        if self.timeline is not None:
            drop = self.timeline.frames_to_drop(self.get_clock().now().nanoseconds * 1e-9)
            if drop is None:
                if not self._waiting_logged:
                    self.get_logger().info(f'waiting for file_start_time '
                                           f'{self.timeline.start:.3f} to play frame 0')
                    self._waiting_logged = True
                return
        t0 = time.perf_counter()
        frame = self.source.read()
        while drop and frame is not None:   # behind the file's timeline: catch up
            self.timeline.advance(dropped=True)
            drop -= 1
            frame = self.source.read()
        now = self.get_clock().now()
        stamp = now.to_msg()
        if self.timeline is not None and frame is not None:
            stamp = Time(nanoseconds=int(round(self.timeline.stamp() * 1e9))).to_msg()
            self.timeline.advance()
        if frame is None:
            if not self.source.ended:
                delay = self.backoff.next_delay()
                self._next_attempt = time.monotonic() + delay
                self.get_logger().warn(f'camera lost: {self.source.last_error}; '
                                       f'retrying in {delay:.1f} s')
            return
        self.read_latency.add(time.perf_counter() - t0)
        msg = numpy_to_image(frame, 'bgr8', Image())
        msg.header.stamp = stamp
        msg.header.frame_id = self.p['frame_id']
        self.image_pub.publish(msg)
        self.publish_latency.add((self.get_clock().now().nanoseconds -
                                  Time.from_msg(stamp).nanoseconds) * 1e-9)
        if self.info_pub is not None:
            self.info_pub.publish(self._camera_info(msg))
        self.rate_meter.tick()

    def _camera_info(self, image: Image) -> CameraInfo:
        c = self.calibration
        info = CameraInfo(height=c.height, width=c.width, distortion_model=c.distortion_model,
                          d=c.d, k=c.k, r=c.r, p=c.p)
        info.header = image.header
        if (c.width, c.height) != (image.width, image.height):
            self.get_logger().warn(f'calibration is for {c.width}x{c.height} but images are '
                                   f'{image.width}x{image.height}', throttle_duration_sec=10.0)
        return info

    def report(self) -> StatusReport:
        r = StatusReport()
        r.add('source', self.p['source'])
        r.add('rate_hz', self.rate_meter.rate())
        r.add('target_rate_hz', self.p['rate'])
        r.add('frames', self.rate_meter.total)
        r.add('reconnects', self.reconnects)
        r.add('capture_failures', self.failures)
        r.add('file_loops', self.source.loops)
        if self.timeline is not None:
            r.add('file_start_time', self.timeline.start)
            r.add('frames_dropped_to_timeline', self.timeline.dropped)
        r.latency('read', self.read_latency)
        r.latency('stamp_to_publish', self.publish_latency)
        if self.source.ended:
            r.raise_level(OK, 'video file finished')
        elif self.timeline is not None and self.timeline.next_frame == 0:
            r.raise_level(OK, 'waiting for file_start_time')
        elif not self.source.is_open:
            r.raise_level(ERROR, f'camera not available: {self.source.last_error}')
        elif self.rate_meter.rate() < 0.5 * self.p['rate']:
            r.raise_level(WARN, 'frame rate below half the target')
        return r


def main(args: Optional[list] = None) -> None:
    raise SystemExit(run_node(CameraNode, args))


if __name__ == '__main__':
    main()
