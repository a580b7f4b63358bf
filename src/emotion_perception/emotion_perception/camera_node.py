"""camera_node: OpenCV capture (device, video file or stream URL) -> image_raw (+ camera_info).

Thin adapter over camera_source.CameraSource: a timer at ``rate`` reads one frame, stamps it at
capture and publishes it as bgr8.  When the camera vanishes the node warns, retries with
exponential backoff and keeps running.
"""
from __future__ import annotations

import time
from typing import Optional

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from .camera_source import Backoff, CameraError, CameraSource, load_calibration, parse_source
from .image_conversion import numpy_to_image
from emotion_runtime.stats import ERROR, OK, WARN, LatencyMeter, RateMeter, StatusReport
from emotion_runtime.params import ParamSpec, ParameterError, any_value, non_negative, positive
from .ros_common import DiagnosticsPublisher, declare_parameters, run_node, sensor_qos

PARAMS = [
    ParamSpec('source', '0', 'Camera: device index ("0", "/dev/video0"), video file path or '
              'stream URL (rtsp://, http://).', any_value),
    ParamSpec('frame_id', 'camera_optical_frame', 'header.frame_id of image_raw/camera_info.',
              any_value),
    ParamSpec('rate', 30.0, 'Publish rate [Hz] (also the pace at which a video file is played).',
              positive),
    ParamSpec('width', 640, 'Requested width [px] (devices); files are resized to it when '
              'width and height are > 0. 0 = keep.', non_negative),
    ParamSpec('height', 480, 'Requested height [px]; 0 = keep.', non_negative),
    ParamSpec('loop', True, 'Restart a video file at its end.'),
    ParamSpec('calibration_file', '', 'camera_calibration YAML; when set, camera_info is '
              'published with every image.', any_value),
    ParamSpec('reconnect_initial', 0.5, 'First reconnect delay [s] after the camera is lost.',
              positive),
    ParamSpec('reconnect_max', 10.0, 'Longest reconnect delay [s] (doubling backoff).', positive),
]


class CameraNode(Node):
    """Publishes camera frames as sensor_msgs/Image (bgr8) with sensor-data QoS."""

    def __init__(self) -> None:
        super().__init__('camera_node')
        p = declare_parameters(self, PARAMS)
        if p['reconnect_max'] < p['reconnect_initial']:
            raise ParameterError('reconnect_max must be >= reconnect_initial')
        try:
            parse_source(p['source'])
            self.calibration = load_calibration(p['calibration_file']) \
                if p['calibration_file'] else None
        except CameraError as exc:
            raise ParameterError(str(exc)) from exc
        self.p = p
        self.source = CameraSource(p['source'], p['width'], p['height'], p['rate'], p['loop'])
        self.backoff = Backoff(p['reconnect_initial'], p['reconnect_max'])
        self._next_attempt = 0.0
        self.image_pub = self.create_publisher(Image, 'image_raw', sensor_qos(5))
        self.info_pub = (self.create_publisher(CameraInfo, 'camera_info', sensor_qos(5))
                         if self.calibration else None)
        self.rate_meter, self.read_latency = RateMeter(), LatencyMeter()
        self.reconnects = 0
        self._ended_logged = False
        self.timer = self.create_timer(1.0 / p['rate'], self._tick)
        self.diagnostics = DiagnosticsPublisher(self, f'camera {p["source"]}', self._report)
        self.get_logger().info(f'camera source {p["source"]!r} at {p["rate"]} Hz, frame_id '
                               f'{p["frame_id"]!r}, calibration '
                               f'{p["calibration_file"] or "none"}')

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

    def _tick(self) -> None:
        if self.source.ended:
            if not self._ended_logged:
                self.get_logger().info('video file finished (loop is false); no more images')
                self._ended_logged = True
            return
        if not self.source.is_open:
            self._try_open()
            if not self.source.is_open:
                return
        t0 = time.perf_counter()
        frame = self.source.read()
        stamp = self.get_clock().now().to_msg()
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

    def _report(self) -> StatusReport:
        r = StatusReport()
        r.add('source', self.p['source'])
        r.add('rate_hz', self.rate_meter.rate())
        r.add('target_rate_hz', self.p['rate'])
        r.add('frames', self.rate_meter.total)
        r.add('reconnects', self.reconnects)
        r.add('file_loops', self.source.loops)
        r.latency('read', self.read_latency)
        if self.source.ended:
            r.raise_level(OK, 'video file finished')
        elif not self.source.is_open:
            r.raise_level(ERROR, f'camera not available: {self.source.last_error}')
        elif self.rate_meter.rate() < 0.5 * self.p['rate']:
            r.raise_level(WARN, 'frame rate below half the target')
        return r

    def close(self) -> None:
        self.source.close()


def main(args: Optional[list] = None) -> None:
    raise SystemExit(run_node(CameraNode, args))


if __name__ == '__main__':
    main()
