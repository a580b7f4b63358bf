"""face_node: image_raw -> faces (FaceArray) + vision/features (EmotionFeature per face).

Thin adapter over vision_pipeline.FacePipeline.  The subscription callback only stores the newest
image in a one-slot mailbox; a worker thread processes it.  So when processing is slower than the
camera, old frames are dropped (and counted) instead of queueing latency.  Without a model bundle
the node still publishes faces and reports the model error on /diagnostics.
"""
from __future__ import annotations

import threading
import time
from typing import Optional

from emotion_msgs.msg import EmotionFeature, Face, FaceArray
from rclpy.node import Node
from sensor_msgs.msg import Image

from .face_detection import CASCADES
from .image_conversion import ImageConversionError, image_to_numpy, numpy_to_image, to_bgr8
from emotion_runtime.model_loading import load_bundle_or_error, warm_up
from emotion_runtime.stats import WARN, LatencyMeter, RateMeter, StatusReport
from emotion_runtime.params import ParamSpec, ParameterError, any_value, in_range, non_negative
from .ros_common import (DiagnosticsPublisher, declare_parameters, reliable_qos, run_node,
                         sensor_qos, stamp_to_seconds)
from .vision_pipeline import build_face_pipeline, draw_debug

PARAMS = [
    ParamSpec('model_bundle', '', 'Model bundle directory; "" = the shipped default bundle.',
              any_value),
    ParamSpec('encoder_threads', 1, 'onnxruntime intra-op threads of the vision encoder.',
              in_range(1, 16)),
    ParamSpec('cascade', CASCADES[0], 'Haar cascade file name (in cv2.data.haarcascades) or an '
              'absolute path.', any_value),
    ParamSpec('detection_scale', 0.5, 'Image scale the detector runs at (speed vs smallest '
              'face).', in_range(0.1, 1.0)),
    ParamSpec('scale_factor', 1.15, 'Cascade pyramid step (> 1; larger = faster, fewer hits).',
              in_range(1.01, 2.0)),
    ParamSpec('min_neighbors', 3, 'Cascade votes needed for a face (higher = fewer false '
              'positives).', in_range(1, 50)),
    ParamSpec('min_face_size', 48, 'Smallest face side [px, full resolution].',
              in_range(8, 4096)),
    ParamSpec('full_scan_every', 5, 'Scan the whole frame for faces every N frames; in between '
              'only around the faces of the previous frame (a face missed there: whole at once). '
              '1 = every frame whole (slowest).', in_range(1, 300)),
    ParamSpec('track_search_margin', 1.0, 'Between whole-frame scans: the search window around '
              'a known face, in face sizes per side (larger follows faster motion, costs more).',
              in_range(0.1, 5.0)),
    ParamSpec('background_scan', True, 'While faces are in view, run the periodic whole-frame '
              'scan on a worker thread so no frame waits for it (false: in line, as offline '
              'replay does).'),
    ParamSpec('max_faces', 8, 'At most this many faces per frame (largest first).',
              in_range(1, 64)),
    ParamSpec('iou_threshold', 0.2, 'Tracking: IoU above which a detection continues a track.',
              in_range(0.0, 0.99)),
    ParamSpec('max_center_shift', 0.75, 'Tracking: centre shift (in box sizes) still accepted '
              'without overlap.', non_negative),
    ParamSpec('lost_timeout', 1.0, 'Tracking: seconds a face may be unseen before its id is '
              'dropped.', non_negative),
    ParamSpec('min_hits', 2, 'Tracking: frames in a row a new face must be seen before it gets '
              'an id and is published (suppresses one-frame false positives).', in_range(1, 30)),
    ParamSpec('crop_margin', 0.1, 'Face crop margin (fraction of the box per side) for the '
              'encoder.', in_range(0.0, 1.0)),
    ParamSpec('publish_debug_image', False, 'Publish debug_image (boxes, ids, latest label).'),
]


class FaceNode(Node):
    """Detects, tracks and encodes faces in each processed camera frame."""

    def __init__(self) -> None:
        super().__init__('face_node')
        self.p = p = declare_parameters(self, PARAMS)
        try:
            self.pipeline = build_face_pipeline(p)
        except ValueError as exc:
            raise ParameterError(str(exc)) from exc
        self.bundle, self.model_error = load_bundle_or_error(
            p['model_bundle'], p['encoder_threads'], self.get_logger().error)
        if self.bundle is not None:
            try:
                warm_up(self.bundle, vision=True)
                self.get_logger().info(f'model {self.bundle.summary}')
            except Exception as exc:  # noqa: BLE001 - reported, faces are still published
                self.model_error = f'warm-up failed: {exc}'
                self.get_logger().error(self.model_error)
                self.bundle = None
        self.pipeline.bundle = self.bundle
        every = p['full_scan_every']
        self.get_logger().info(
            f"faces: Haar {p['cascade']} at scale {p['detection_scale']}; "
            + ('whole frame every frame' if every == 1 else
               f"windows around known faces, whole frame every {every} frames "
               f"({'on a worker thread' if p['background_scan'] else 'in line'} while faces "
               'are in view)'))
        self.faces_pub = self.create_publisher(FaceArray, 'faces', reliable_qos(5))
        self.features_pub = self.create_publisher(EmotionFeature, 'vision/features',
                                                  sensor_qos(10))
        self.debug_pub = (self.create_publisher(Image, 'debug_image', sensor_qos(1))
                          if p['publish_debug_image'] else None)
        self.rate_meter, self.in_meter = RateMeter(), RateMeter()
        self.latency, self.age = LatencyMeter(), LatencyMeter()
        self.dropped = self.bad_images = self.errors = 0
        self._slot: Optional[Image] = None
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._stop = threading.Event()
        self.create_subscription(Image, 'image_raw', self._on_image, sensor_qos(1))
        self._worker = threading.Thread(target=self._run, daemon=True)
        self._worker.start()
        self.diagnostics = DiagnosticsPublisher(self, 'face detection', self._report)

    def _on_image(self, msg: Image) -> None:
        self.in_meter.tick()
        with self._lock:
            if self._slot is not None:
                self.dropped += 1
            self._slot = msg
        self._event.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._event.wait(0.2):
                continue
            with self._lock:
                msg, self._slot = self._slot, None
                self._event.clear()
            if msg is None:
                continue
            try:
                self._process(msg)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the node
                self.errors += 1
                self.get_logger().error(f'frame processing failed: {type(exc).__name__}: {exc}',
                                        throttle_duration_sec=2.0)

    def _process(self, msg: Image) -> None:
        t0 = time.perf_counter()
        try:
            image = to_bgr8(image_to_numpy(msg), msg.encoding)
        except ImageConversionError as exc:
            self.bad_images += 1
            self.get_logger().error(f'image rejected: {exc}', throttle_duration_sec=2.0)
            return
        stamp = stamp_to_seconds(msg.header.stamp)
        result = self.pipeline.process(image, stamp)
        if result.model_error:
            self.get_logger().error(f'vision encoder failed: {result.model_error}',
                                    throttle_duration_sec=5.0)
        h, w = image.shape[:2]
        faces = FaceArray(header=msg.header)
        for t in result.tracks:
            faces.faces.append(Face(id=t.id, x=t.x, y=t.y, width=t.w, height=t.h,
                                    image_width=w, image_height=h,
                                    confidence=min(1.0, max(0.0, t.confidence)), age=t.age))
        self.faces_pub.publish(faces)
        if result.embeddings is not None:
            labels = list(self.bundle.labels)
            for t, emb, logits in zip(result.tracks, result.embeddings, result.logits):
                self.features_pub.publish(EmotionFeature(
                    header=msg.header, source_id=t.id, modality=EmotionFeature.MODALITY_VISION,
                    embedding=emb.astype(float).tolist(), logits=logits.astype(float).tolist(),
                    labels=labels, quality=float(min(1.0, max(0.0, t.confidence))),
                    speech=True))
        if self.debug_pub is not None:
            dbg = numpy_to_image(draw_debug(image, result.tracks,
                                            self.bundle.labels if self.bundle else None,
                                            result.logits), 'bgr8', Image())
            dbg.header = msg.header
            self.debug_pub.publish(dbg)
        self.latency.add(time.perf_counter() - t0)
        self.age.add(max(0.0, self.get_clock().now().nanoseconds * 1e-9 - stamp))
        self.rate_meter.tick()

    def _report(self) -> StatusReport:
        r = StatusReport()
        r.add('input_rate_hz', self.in_meter.rate())
        r.add('processed_rate_hz', self.rate_meter.rate())
        r.add('frames_processed', self.rate_meter.total)
        r.add('frames_dropped', self.dropped)
        r.add('images_rejected', self.bad_images)
        r.add('active_tracks', len(self.pipeline.tracker.confirmed()))
        if self.pipeline.schedule is not None:
            r.add('full_scan_fraction', round(self.pipeline.schedule.full_scan_fraction, 3))
        background = self.pipeline.background
        if background is not None:
            r.add('background_scans', background.scans)
            if background.failures:
                r.add('background_scan_error', f'{background.failures} failed, last: '
                      f'{background.error}')
        r.latency('processing', self.latency)
        r.latency('latency_from_capture', self.age)
        r.model(self.model_error or (f'{self.pipeline.model_failures} encoder failures'
                                     if self.pipeline.model_failures else ''))
        if self.bad_images or self.errors:
            r.raise_level(WARN, 'some images could not be processed')
        if self.dropped and self.in_meter.total and self.dropped > 0.2 * self.in_meter.total:
            r.raise_level(WARN, 'dropping more than 20% of frames (cannot keep up)')
        return r

    def close(self) -> None:
        self._stop.set()
        self._event.set()
        self._worker.join(2.0)
        self.pipeline.close()


def main(args: Optional[list] = None) -> None:
    raise SystemExit(run_node(FaceNode, args))


if __name__ == '__main__':
    main()
