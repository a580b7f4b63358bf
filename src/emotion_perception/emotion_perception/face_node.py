"""face_node: image_raw (or image_raw/compressed) -> faces + vision/features (per face).

Thin adapter over vision_pipeline.FacePipeline.  The subscription callback only stores the newest
image in a one-slot mailbox; a worker thread processes it.  So when processing is slower than the
camera, old frames are dropped (and counted) instead of queueing latency.  Without a valid model
bundle the node does not configure: it stays unconfigured and says why on /diagnostics and in the
log (run alone with autostart, it exits with code 1).
"""
from __future__ import annotations

import threading
import time
from typing import Optional

from sensor_msgs.msg import CompressedImage, Image

from emotion_msgs.msg import EmotionFeature, Face, FaceArray
from emotion_runtime.labels import parse_labels
from emotion_runtime.model_loading import load_bundle_or_error, warm_up
from emotion_runtime.node_kit import ConfigureError, KitNode, run_node
from emotion_runtime.params import ParameterError
from emotion_runtime.stats import ERROR, WARN, LatencyMeter, RateMeter, StatusReport

from .compressed_image import compressed_to_bgr8
from .image_conversion import ImageConversionError, image_to_numpy, numpy_to_image, to_bgr8
from .node_params import FACE_PARAMS
from .ros_common import reliable_qos, sensor_qos, stamp_to_seconds
from .vision_pipeline import build_face_pipeline, draw_debug

#: the CNN detectors' names in the configure log
CNN_DETECTORS = {'mtcnn': 'MTCNN', 'yunet': 'YuNet',
                 'mtcnn_yunet': 'MTCNN on whole frames, YuNet in windows'}


class FaceNode(KitNode):
    """Detects, tracks and encodes faces in each processed camera frame.

    Lifecycle: configure builds the pipeline, loads and warms up the vision encoder (FAILURE
    without a valid bundle) and creates the lifecycle publishers; activate subscribes and starts
    the worker thread; deactivate stops both; cleanup releases the pipeline and the model.
    """

    def __init__(self, **node_kwargs) -> None:
        super().__init__('face_node', FACE_PARAMS, 'face detection', **node_kwargs)
        self.pipeline = None
        self.bundle = None
        self.model_error = ''
        self.rate_meter, self.in_meter = RateMeter(), RateMeter()
        self.latency, self.age = LatencyMeter(), LatencyMeter()
        self.dropped = self.bad_images = self.errors = 0
        self._slot: Optional[Image] = None
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._stop = threading.Event()
        self._worker: Optional[threading.Thread] = None

    def configure(self) -> None:
        p = self.p
        try:
            pipeline = build_face_pipeline(p)
        except ValueError as exc:
            raise ParameterError(str(exc)) from exc
        self.pipeline = pipeline
        with self.warming_up('loading the model bundle'):
            self.bundle, self.model_error = load_bundle_or_error(
                p['model_bundle'], p['encoder_threads'],
                expected_labels=parse_labels(p['expected_labels']))
        if self.bundle is None:
            raise ConfigureError(f'model bundle not loaded: {self.model_error}')
        try:
            with self.warming_up('vision encoder warm-up'):
                warm_up(self.bundle, vision=True)
        except Exception as exc:  # noqa: BLE001 - reported as the configure failure
            self.bundle = None
            raise ConfigureError(f'warm-up failed: {type(exc).__name__}: {exc}') from exc
        self.get_logger().info(f'model {self.bundle.summary}')
        pipeline.bundle = self.bundle
        every = p['full_scan_every']
        self.get_logger().info(
            (f"faces: {CNN_DETECTORS[p['face_detector']]} (ONNX) from "
             f"{pipeline.detector.model_dir}"
             if p['face_detector'] in CNN_DETECTORS else
             f"faces: Haar {p['cascade']} at scale {p['detection_scale']}") + '; '
            + ('whole frame every frame' if every == 1 else
               f"windows around known faces, whole frame every {every} frames "
               f"({'on a worker thread' if p['background_scan'] else 'in line'} while faces "
               'are in view)'))
        self.faces_pub = self.lifecycle_publisher(FaceArray, 'faces', reliable_qos(5))
        self.features_pub = self.lifecycle_publisher(EmotionFeature, 'vision/features',
                                                     sensor_qos(10))
        self.debug_pub = (self.lifecycle_publisher(Image, 'debug_image', reliable_qos(1))
                          if p['publish_debug_image'] else None)

    def activate(self) -> None:
        self._slot = None
        self._stop.clear()
        self._worker = threading.Thread(target=self._run, daemon=True)
        self._worker.start()
        # Best-effort subscriptions (REP-2003): they match reliable and best-effort cameras.
        if self.p['image_input'] in ('raw', 'both'):
            self.active_subscription(Image, 'image_raw', self._on_image, sensor_qos(1))
        if self.p['image_input'] in ('compressed', 'both'):
            self.active_subscription(CompressedImage, 'image_raw/compressed', self._on_image,
                                     sensor_qos(1))

    def deactivate(self) -> None:
        self._stop.set()
        self._event.set()
        if self._worker is not None:
            self._worker.join(2.0)
            self._worker = None

    def cleanup(self) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
        self.pipeline = None
        self.bundle = None

    def on_parameters(self, changed: dict) -> None:
        """Detector and tracking thresholds, face count, crop margin and alignment: at once."""
        pipe = self.pipeline
        if pipe is None:
            return
        for name, attr, kind in (('min_neighbors', 'min_neighbors', int),       # Haar only
                                 ('mtcnn_min_confidence', 'min_confidence', float),  # MTCNN
                                 ('mtcnn_pnet_threshold', 'pnet_threshold', float),
                                 ('mtcnn_rnet_threshold', 'rnet_threshold', float),
                                 ('mtcnn_low_light_gain', 'low_light_gain', float),  # MTCNN
                                 ('yunet_score_threshold', 'score_threshold', float),  # YuNet
                                 ('min_face_size', 'min_face_size', int)):
            if name in changed:
                pipe.set_detector_setting(attr, kind(changed[name]))
        if 'iou_threshold' in changed:
            pipe.tracker.iou_threshold = changed['iou_threshold']
        if 'max_center_shift' in changed:
            pipe.tracker.max_center_shift = changed['max_center_shift']
        if 'max_faces' in changed:
            pipe.max_faces = changed['max_faces']
        if 'crop_margin' in changed:
            pipe.crop_margin = changed['crop_margin']
        if 'align_faces' in changed:
            pipe.align_faces = bool(changed['align_faces'])
        if 'align_keep_roll' in changed:
            pipe.align_keep_roll = float(changed['align_keep_roll'])
        if 'identity_threshold' in changed:
            pipe.identity_threshold = float(changed['identity_threshold'])
        if 'identity_confirm' in changed:
            pipe.looks.confirm = int(changed['identity_confirm'])

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
            if isinstance(msg, CompressedImage):
                image = compressed_to_bgr8(msg.format, msg.data)
            else:
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
            for t, emb, logits in zip(result.encoded, result.embeddings, result.logits):
                self.features_pub.publish(EmotionFeature(
                    header=msg.header, source_id=t.id, modality=EmotionFeature.MODALITY_VISION,
                    embedding=emb.astype(float).tolist(), logits=logits.astype(float).tolist(),
                    labels=labels, quality=float(min(1.0, max(0.0, t.confidence))),
                    speech=True))
        if self.debug_pub is not None:
            dbg = numpy_to_image(draw_debug(
                image, result.tracks, self.bundle.labels if self.bundle else None,
                [self.pipeline.last_logits.get(t.id) for t in result.tracks]), 'bgr8', Image())
            dbg.header = msg.header
            self.debug_pub.publish(dbg)
        self.latency.add(time.perf_counter() - t0)
        self.age.add(max(0.0, self.get_clock().now().nanoseconds * 1e-9 - stamp))
        self.rate_meter.tick()

    def report(self) -> StatusReport:
        r = StatusReport()
        r.add('input_rate_hz', self.in_meter.rate())
        r.add('processed_rate_hz', self.rate_meter.rate())
        r.add('frames_processed', self.rate_meter.total)
        r.add('frames_dropped', self.dropped)
        r.add('images_rejected', self.bad_images)
        pipe = self.pipeline
        if pipe is None:
            return r
        r.add('active_tracks', len(pipe.tracker.confirmed()))
        # face-frames not encoded because max_encode_rate_hz held them back
        r.add('encodes_held_back', pipe.gate.held_back)
        if pipe.schedule is not None:
            r.add('full_scan_fraction', round(pipe.schedule.full_scan_fraction, 3))
        # detector counters, the frame's thread and the background scan's copy together: faces
        # found on a turned copy of the frame (turned_search_deg), detector calls on a dark frame
        # scaled first (mtcnn_low_light_gain)
        worker = getattr(pipe.background, '_detector', None)
        for key, attr in (('faces_found_turned', 'turned_found'),
                          ('frames_brightened', 'brightened')):
            if hasattr(pipe.detector, attr):
                r.add(key, getattr(pipe.detector, attr) + (
                    getattr(worker, attr, 0) if worker is not pipe.detector else 0))
        background = pipe.background
        if background is not None:
            r.add('background_scans', background.scans)
            r.add('background_scan_failures', background.failures)
            if background.failures:
                r.add('background_scan_error', f'{background.failures} failed, last: '
                      f'{background.error}')
            if self.recent('background_scan_failures', background.failures):
                # the next due scan retries; ERROR while failures keep coming
                r.raise_level(ERROR, f'background face scan failed: {background.error}')
        r.latency('processing', self.latency)
        r.latency('latency_from_capture', self.age)
        # Levels follow the last RECENT_WINDOW_S seconds (a WARN clears when its cause stops);
        # the totals stay in the values.
        r.add('encoder_failures', pipe.model_failures)
        failures = self.recent('encoder_failures', pipe.model_failures)
        r.model(self.model_error or (f'{failures:g} encoder failures lately' if failures else ''))
        if self.recent('bad_images', self.bad_images + self.errors):
            r.raise_level(WARN, 'some images could not be processed lately')
        dropped = self.recent('dropped', self.dropped)
        received = self.recent('received', self.in_meter.total)
        if dropped and received and dropped > 0.2 * received:
            r.raise_level(WARN, 'dropping more than 20% of frames (cannot keep up)')
        return r


def main(args: Optional[list] = None) -> None:
    raise SystemExit(run_node(FaceNode, args))


if __name__ == '__main__':
    main()
