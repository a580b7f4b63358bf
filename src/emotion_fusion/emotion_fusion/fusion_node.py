"""fusion_node: ROS adapter around FusionEngine (messages in, Emotion per face out, diagnostics).

Why so thin: every decision (alignment, voice assignment, tracks, hysteresis, input checks) lives
in rclpy-free modules that are tested with a fake clock; this file only converts messages, owns
the timers and publishers, throttles the log and reports diagnostics.

Subscribes: vision/features, voice/features (EmotionFeature, sensor-data QoS), faces (FaceArray,
reliable), tracker/state (TrackerState, reliable).  Publishes: emotion (Emotion, reliable, depth
10, one per face per output step), optionally <per_face_prefix>/<id>/emotion, and /diagnostics.

Output steps (``step_schedule.StepSchedule`` decides): with ``step_on_vision`` a step runs in the
vision callback as soon as a feature is accepted (at most ``max_step_rate_hz``; a feature that
arrives sooner is fused by a one-shot timer at the end of the spacing, or by an earlier step), and
the ``output_rate_hz`` timer is the fallback that skips while vision steps keep coming; without
it, the timer alone steps, as before.
"""
from __future__ import annotations

import re
import sys
import time
from typing import Dict, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from emotion_msgs.msg import Emotion, EmotionFeature, FaceArray, TrackerState
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.time import Time

from .config import PARAMETERS, ConfigError, FusionConfig
from .features import MODALITY_VISION, MODALITY_VOICE, Feature, RejectReason
from .fusion_engine import EmotionEstimate, FaceBox, FusionEngine
from .stats import LogThrottle, RateMeter, RecentSamples
from .step_schedule import StepSchedule
from .time_alignment import DropReason

NS = 1_000_000_000
RELIABLE_10 = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def stamp_ns(stamp) -> int:
    return int(stamp.sec) * NS + int(stamp.nanosec)


def face_topic_token(face_id: str) -> str:
    """A face id as a valid ROS name token ("f3" stays; "3" -> "id_3"; "a-b" -> "a_b")."""
    token = re.sub(r'[^A-Za-z0-9_]', '_', face_id) or 'id_'
    return 'id_' + token if token[0].isdigit() else token


class FusionNode(Node):
    """Fuses vision and voice features per face, on vision arrival and/or at a fixed rate."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__('fusion_node', **node_kwargs)
        for p in PARAMETERS:
            self.declare_parameter(p.name, p.default, ParameterDescriptor(
                description=p.description, dynamic_typing=True, read_only=True))
        self.cfg = FusionConfig.from_mapping(
            {p.name: self.get_parameter(p.name).value for p in PARAMETERS})
        cfg = self.cfg

        self.model_status = 'not loaded'
        self.model_ok = False
        self.bundle_path = cfg.model_bundle or '(default)'
        model, window_s = self._load_model()
        self.engine = FusionEngine(cfg, model, voice_window_s=window_s)

        self._throttle = LogThrottle(cfg.log_throttle)
        self._rates = {k: RateMeter() for k in ('vision', 'voice', 'emotion', 'steps')}
        self._step_ms = RecentSamples()
        self._latency_ms = RecentSamples()
        self._last_error: Optional[str] = None
        self._first_use: Dict[str, int] = {}

        self.emotion_pub = self.create_publisher(Emotion, 'emotion', RELIABLE_10)
        self.face_pubs: Dict[str, object] = {}
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE_10)
        self.create_subscription(EmotionFeature, 'vision/features', self._on_vision,
                                 qos_profile_sensor_data)
        self.create_subscription(EmotionFeature, 'voice/features', self._on_voice,
                                 qos_profile_sensor_data)
        self.create_subscription(FaceArray, 'faces', self._on_faces, RELIABLE_10)
        self.create_subscription(TrackerState, 'tracker/state', self._on_tracker, RELIABLE_10)
        self.schedule = StepSchedule(cfg.step_on_vision, int(round(NS / cfg.max_step_rate_hz)),
                                     int(round(NS / cfg.output_rate_hz)))
        self.create_timer(1.0 / cfg.output_rate_hz, self._on_step)
        # one-shot (re-armed per deferral): fuses a vision feature that came within the spacing
        self._deferred_timer = (self.create_timer(1.0 / cfg.max_step_rate_hz,
                                                  self._on_deferred_step, autostart=False)
                                if cfg.step_on_vision else None)
        self.create_timer(cfg.diagnostics_period, self._publish_diagnostics)
        timing = (f'on vision (at most {cfg.max_step_rate_hz:g} Hz) + fallback timer '
                  f'{cfg.output_rate_hz:g} Hz' if cfg.step_on_vision
                  else f'at {cfg.output_rate_hz:g} Hz')
        self.get_logger().info(
            f'fusion {timing}, voice_assignment={cfg.voice_assignment}, '
            f'slop={cfg.slop:g}s, model: {self.model_status}')

    # ------------------------------------------------------------------ model
    def _load_model(self):
        """Load the bundle; on failure log why and keep running without output (diagnostics say)."""
        try:
            from emotion_runtime.model_bundle import ModelBundle, default_bundle_path
            path = self.cfg.model_bundle or None
            self.bundle_path = str(path or default_bundle_path())
            bundle = ModelBundle.load(path, threads=self.cfg.onnx_threads)
            bundle.session('fusion')   # fail now, not at the first step
        except Exception as exc:  # noqa: BLE001 - BundleError, ImportError, onnxruntime errors
            self.model_status = f'ERROR: {exc}'
            self.get_logger().error(
                f'model bundle {self.bundle_path} unusable, no emotion will be published until '
                f'the node is restarted with a valid bundle: {exc}')
            return None, 0.0
        self.model_ok = True
        self.model_status = f'loaded {len(bundle.labels)} labels from {bundle.path}'
        return bundle, bundle.window_seconds

    # ------------------------------------------------------------------ inputs
    def _feature(self, msg: EmotionFeature, now_ns: int) -> Feature:
        return Feature(stamp_ns=stamp_ns(msg.header.stamp), source_id=msg.source_id,
                       modality=int(msg.modality),
                       embedding=np.asarray(msg.embedding, dtype=np.float32),
                       quality=float(msg.quality), speech=bool(msg.speech),
                       frame_id=msg.header.frame_id, received_ns=now_ns)

    def _on_vision(self, msg: EmotionFeature) -> None:
        now = self.get_clock().now().nanoseconds
        self._rates['vision'].tick()
        f = self._feature(msg, now)
        reason = self.engine.add_vision(f, now)
        self._report(reason, 'vision/features', f, now)
        if reason is None and self.cfg.step_on_vision:
            if self.schedule.vision(now):
                self._step(now, by_vision=True)
            else:
                self._arm_deferred(now)

    def _on_voice(self, msg: EmotionFeature) -> None:
        now = self.get_clock().now().nanoseconds
        self._rates['voice'].tick()
        f = self._feature(msg, now)
        self._report(self.engine.add_voice(f, now), 'voice/features', f, now)

    def _report(self, reason: Optional[str], topic: str, f: Feature, now_ns: int) -> None:
        """One throttled log line per (topic, reason): what was wrong and what was expected."""
        if reason is None:
            return
        suppressed = self._throttle.allow(f'{topic}:{reason}', time.monotonic())
        if suppressed is None:
            return
        model = self.engine.model
        expected = ''
        if reason == RejectReason.WRONG_SIZE and model is not None:
            size = (model.vision_embedding_size if topic.startswith('vision')
                    else model.voice_embedding_size)
            expected = f' (got {f.embedding.size}, bundle expects {size})'
        elif reason == RejectReason.WRONG_MODALITY:
            expected = (f' (modality {f.modality}, expected '
                        f'{MODALITY_VISION if topic.startswith("vision") else MODALITY_VOICE})')
        elif reason in (DropReason.LATE, DropReason.FUTURE):
            expected = f' (stamp is {(now_ns - f.stamp_ns) / 1e6:.0f} ms old)'
        more = f'; {suppressed} more since the last report' if suppressed else ''
        text = (f'{topic}: input from "{f.source_id}" '
                f'{"dropped" if reason in DropReason.ALL else "rejected"}: {reason}'
                f'{expected}{more}')
        if reason in DropReason.ALL:
            self.get_logger().info(text)
        else:
            self.get_logger().warn(text)

    def _on_faces(self, msg: FaceArray) -> None:
        boxes = [FaceBox(f.id, float(f.width) * float(f.height)) for f in msg.faces if f.id]
        self.engine.set_faces(boxes, self.get_clock().now().nanoseconds)

    def _on_tracker(self, msg: TrackerState) -> None:
        self.engine.set_target(msg.target_id, self.get_clock().now().nanoseconds)

    # ------------------------------------------------------------------ output
    def _on_step(self) -> None:
        """The output_rate_hz timer: a step, unless a vision-triggered one ran within a period."""
        now = self.get_clock().now().nanoseconds
        if self.schedule.timer(now):
            self._step(now, by_vision=False)

    def _arm_deferred(self, now: int) -> None:
        """Start the one-shot timer for the pending vision feature (no-op if armed or none)."""
        due = self.schedule.due_ns
        timer = self._deferred_timer
        if due is None or timer is None or not timer.is_canceled():
            return
        timer.timer_period_ns = max(due - now, 1000)
        timer.reset()

    def _on_deferred_step(self) -> None:
        """The one-shot timer: fuse the pending vision feature if no step has done it yet."""
        self._deferred_timer.cancel()
        now = self.get_clock().now().nanoseconds
        if self.schedule.deferred(now):
            self._step(now, by_vision=True)
        else:
            self._arm_deferred(now)     # a newer step moved the due time: wait for that

    def _step(self, now: int, by_vision: bool) -> None:
        """One fusion step at ``now``: publish one Emotion per face (see the engine)."""
        self.schedule.ran(now, by_vision)
        result = self.engine.step(now)
        self._rates['steps'].tick()
        for fid in result.removed:
            self._first_use.pop(fid, None)
            pub = self.face_pubs.pop(fid, None)
            if pub is not None:
                self.destroy_publisher(pub)
        if result.error:
            self._last_error = result.error
            if self._throttle.allow('model_error', time.monotonic()) is not None:
                self.get_logger().error(result.error)
        if result.estimates:
            self._step_ms.add(result.compute_s * 1e3 / len(result.estimates))
        for est in result.estimates:
            msg = self.to_msg(est)
            self.emotion_pub.publish(msg)
            if self.cfg.per_face_topics:
                self._face_publisher(est.face_id).publish(msg)
            self._rates['emotion'].tick()
            # latency of an input's first use only (a held input's age is not pipeline latency)
            if est.received_ns and self._first_use.get(est.face_id) != est.received_ns:
                self._first_use[est.face_id] = est.received_ns
                self._latency_ms.add((self.get_clock().now().nanoseconds - est.received_ns) / 1e6)

    @staticmethod
    def to_msg(est: EmotionEstimate) -> Emotion:
        msg = Emotion()
        msg.header.stamp = Time(nanoseconds=est.stamp_ns).to_msg()
        msg.header.frame_id = est.frame_id
        msg.face_id = est.face_id
        msg.expression = est.expression
        msg.confidence = float(est.confidence)
        msg.labels = list(est.labels)
        msg.probabilities = np.asarray(est.probabilities, np.float32)
        msg.valence = float(est.valence)
        msg.arousal = float(est.arousal)
        msg.modalities = int(est.modalities)
        return msg

    def _face_publisher(self, face_id: str):
        pub = self.face_pubs.get(face_id)
        if pub is None:
            topic = f'{self.cfg.per_face_prefix.strip("/")}/{face_topic_token(face_id)}/emotion'
            pub = self.face_pubs[face_id] = self.create_publisher(Emotion, topic, RELIABLE_10)
        return pub

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        now_s = time.monotonic()
        eng = self.engine
        rejected = {r: eng.rejected.get(r, 0) for r in RejectReason.ALL}
        drops = eng.drops()
        status = DiagnosticStatus()
        status.name = f'{self.get_name()}: emotion fusion'
        status.hardware_id = 'emotion_fusion'
        if not self.model_ok:
            status.level, status.message = DiagnosticStatus.ERROR, f'model {self.model_status}'
        elif self._last_error:
            status.level, status.message = DiagnosticStatus.ERROR, self._last_error
        elif sum(rejected.values()) or sum(drops[r] for r in DropReason.ALL):
            status.level = DiagnosticStatus.WARN
            status.message = f'{len(eng.tracks)} tracks; some inputs rejected or dropped'
        else:
            status.level, status.message = DiagnosticStatus.OK, f'{len(eng.tracks)} tracks'
        self._last_error = None
        step = self._step_ms.summary()
        lat = self._latency_ms.summary()
        values = {
            'model_status': self.model_status,
            'model_bundle': self.bundle_path,
            'tracks': len(eng.tracks),
            'track_ids': ','.join(eng.tracks.ids()),
            'tracks_created': eng.tracks.created,
            'tracks_expired': eng.tracks.expired,
            'tracks_evicted': eng.tracks.evicted,
            'per_face_publishers': len(self.face_pubs),
            'output_rate_hz': round(self._rates['steps'].rate(now_s), 2),
            'steps_on_vision': self.schedule.vision_steps,
            'steps_on_timer': self.schedule.timer_steps,
            'timer_steps_skipped': self.schedule.timer_skips,
            'vision_steps_deferred': self.schedule.deferrals,
            'emotion_rate_hz': round(self._rates['emotion'].rate(now_s), 2),
            'vision_rate_hz': round(self._rates['vision'].rate(now_s), 2),
            'voice_rate_hz': round(self._rates['voice'].rate(now_s), 2),
            'fusion_step_ms_per_face_mean': round(step['mean'], 3),
            'fusion_step_ms_per_face_max': round(step['max'], 3),
            'input_to_publish_ms_p95': round(lat['p95'], 2),
            'voice_unassigned_steps': eng.voice_unassigned_steps,
            'faces_over_capacity': eng.rows_over_capacity,
            'model_errors': eng.model_errors,
            'nonfinite_outputs': eng.nonfinite_outputs,
        }
        values.update({f'dropped.{k}': v for k, v in drops.items()})
        values.update({f'rejected.{k}': v for k, v in rejected.items()})
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [status]
        self.diag_pub.publish(arr)


def main(args: Optional[list] = None) -> int:
    """Run the node until Ctrl-C; a bad parameter ends it at once with code 2 and says which."""
    rclpy.init(args=args)
    node: Optional[FusionNode] = None
    code = 0
    try:
        node = FusionNode()
        rclpy.spin(node)
    except ConfigError as exc:
        rclpy.logging.get_logger('fusion_node').fatal(f'invalid parameter: {exc}')
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
