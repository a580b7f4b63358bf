"""fusion_node: ROS adapter around FusionRunner (messages in, Emotion per face out, diagnostics).

Why so thin: every decision (alignment, voice assignment, tracks, hysteresis, input checks, when
a step runs) lives in rclpy-free modules that are tested with a fake clock, and the offline replay
(``emotion-eval bag``) drives the same ``fusion_runner.FusionRunner`` on a bag's clock; this file
only converts messages, owns the timers and publishers, throttles the log and reports diagnostics.

Subscribes: vision/features, voice/features (EmotionFeature, sensor-data QoS), faces (FaceArray,
reliable; or <hri_prefix>/faces/tracked + roi with face_source hri), tracker/state (TrackerState,
reliable).  Publishes: emotion (Emotion, reliable, depth 10, one per face per output step),
optionally <per_face_prefix>/<id>/emotion, the REP-155 topics under <hri_prefix> (hri_output.py:
faces/tracked, faces/<id>/roi, faces/<id>/expression, voices/...), and /diagnostics.

Output steps (the runner's ``StepSchedule`` decides): with ``step_on_vision`` a step runs in the
vision callback as soon as a feature is accepted (at most ``max_step_rate_hz``; a feature that
arrives sooner is fused by a one-shot timer at the end of the spacing, or by an earlier step), and
the ``output_rate_hz`` timer is the fallback that skips while vision steps keep coming; without
it, the timer alone steps, as before.
"""
from __future__ import annotations

import re
import time
from typing import Dict, Optional

import numpy as np
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.time import Time

from emotion_msgs.msg import Emotion, EmotionFeature, FaceArray, TrackerState
from emotion_runtime.face_boxes import BOX_REJECT_REASONS, face_box_problem
from emotion_runtime.labels import parse_labels
from emotion_runtime.model_loading import load_bundle_or_error
from emotion_runtime.node_kit import ConfigureError, KitNode, run_node
from emotion_runtime.stats import ERROR, OK, WARN, RateMeter, StatusReport

from .config import PARAMS, FusionConfig, check_across
from .features import MODALITY_VISION, MODALITY_VOICE, Feature, RejectReason
from .fusion_engine import EmotionEstimate, FaceBox, FusionEngine
from .fusion_runner import FusionRunner, Step
from .hri_output import HriOutput, subscribe_hri_faces
from .stats import LogThrottle, RecentSamples
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


class FusionNode(KitNode):
    """Fuses vision and voice features per face, on vision arrival and/or at a fixed rate.

    Lifecycle: configure loads the bundle and checks its fusion step (FAILURE without a valid
    bundle), builds the engine and creates the lifecycle publisher; activate subscribes and starts
    the timers; deactivate stops them (per-face publishers go); cleanup releases the model.
    Live: voice_assignment, target_timeout, require_speech, hysteresis_steps/margin,
    faces_in_view_only, log_throttle.
    """

    def __init__(self, **node_kwargs) -> None:
        super().__init__('fusion_node', PARAMS, 'emotion_fusion', **node_kwargs)
        self.cfg = FusionConfig.from_mapping(self.p)
        self.model_status = 'not loaded'
        self.model_ok = False
        self.bundle_path = self.cfg.model_bundle or '(default)'
        self.runner: Optional[FusionRunner] = None
        self.engine: Optional[FusionEngine] = None        # the runner's (diagnostics, tests)
        self.schedule: Optional[StepSchedule] = None      # the runner's
        self._throttle = LogThrottle(self.cfg.log_throttle)
        self._rates = {k: RateMeter() for k in ('vision', 'voice', 'emotion', 'steps')}
        self._step_ms = RecentSamples()
        self._latency_ms = RecentSamples()
        self._last_error: Optional[str] = None
        self.face_pubs: Dict[str, object] = {}
        self.hri: Optional[HriOutput] = None     # REP-155 output (hri_output)
        self._hri_faces = None                   # REP-155 face input (face_source hri)
        self._deferred_timer = None

    def check_parameters(self, values: dict) -> None:
        check_across(values)

    # ------------------------------------------------------------------ lifecycle
    def configure(self) -> None:
        cfg = self.cfg = FusionConfig.from_mapping(self.p)
        with self.warming_up('loading the model bundle and its fusion step'):
            model, window_s = self._load_model()
        if model is None:
            raise ConfigureError(f'model bundle {self.bundle_path} unusable: '
                                 f'{self.model_status}')
        self.runner = FusionRunner(cfg, model, voice_window_s=window_s)
        self.engine, self.schedule = self.runner.engine, self.runner.schedule
        self.emotion_pub = self.lifecycle_publisher(Emotion, 'emotion', RELIABLE_10)
        self.hri = (HriOutput(self, cfg.hri_prefix, faces=cfg.face_source == 'faces')
                    if cfg.hri_output else None)
        timing = (f'on vision (at most {cfg.max_step_rate_hz:g} Hz) + fallback timer '
                  f'{cfg.output_rate_hz:g} Hz' if cfg.step_on_vision
                  else f'at {cfg.output_rate_hz:g} Hz')
        self.get_logger().info(
            f'fusion {timing}, voice_assignment={cfg.voice_assignment}, '
            f'slop={cfg.slop:g}s, model: {self.model_status}')

    def activate(self) -> None:
        cfg = self.cfg
        self.active_subscription(EmotionFeature, 'vision/features', self._on_vision,
                                 qos_profile_sensor_data)
        self.active_subscription(EmotionFeature, 'voice/features', self._on_voice,
                                 qos_profile_sensor_data)
        if cfg.face_source == 'hri':     # a ROS4HRI detector's /humans/faces/tracked + roi
            self._hri_faces = subscribe_hri_faces(self, cfg.hri_prefix, self._on_hri_faces)
        else:
            self.active_subscription(FaceArray, 'faces', self._on_faces, RELIABLE_10)
        self.active_subscription(TrackerState, 'tracker/state', self._on_tracker, RELIABLE_10)
        self.active_timer(1.0 / cfg.output_rate_hz, self._on_step)
        # one-shot (re-armed per deferral): fuses a vision feature that came within the spacing
        self._deferred_timer = (self.active_timer(1.0 / cfg.max_step_rate_hz,
                                                  self._on_deferred_step, autostart=False)
                                if cfg.step_on_vision else None)

    def deactivate(self) -> None:
        self._deferred_timer = None
        if self._hri_faces is not None:
            self._hri_faces.close()
            self._hri_faces = None
        if self.hri is not None:
            self.hri.close()
        for fid in list(self.face_pubs):
            self.destroy_publisher(self.face_pubs.pop(fid))

    def cleanup(self) -> None:
        self.runner = self.engine = self.schedule = None
        self.hri = None
        self.model_ok, self.model_status = False, 'not loaded'

    def on_parameters(self, changed: dict) -> None:
        """Assignment policy, freshness, speech gate, label hysteresis, the in-view gate, the
        audio-only output, the vocal weight, log throttle: at once."""
        self.cfg = FusionConfig.from_mapping({**self.p, **changed})
        self._throttle.period_s = float(self.cfg.log_throttle)
        engine = self.engine
        if engine is None:
            return
        engine.cfg = self.runner.cfg = self.cfg
        if 'hysteresis_steps' in changed or 'hysteresis_margin' in changed:
            for fid in engine.tracks.ids():
                smoother = engine.tracks.get(fid).state.smoother
                smoother.steps, smoother.margin = (self.cfg.hysteresis_steps,
                                                   self.cfg.hysteresis_margin)

    # ------------------------------------------------------------------ model
    def _load_model(self):
        """Load the bundle and create its fusion session: (bundle, window_s) or (None, 0.0)."""
        from emotion_runtime.model_bundle import default_bundle_path  # noqa: PLC0415 - onnxruntime loads at configure
        self.bundle_path = str(self.cfg.model_bundle or default_bundle_path())
        bundle, reason = load_bundle_or_error(self.cfg.model_bundle, self.cfg.onnx_threads,
                                              parse_labels(self.cfg.expected_labels))
        if bundle is not None:
            try:
                bundle.session('fusion')   # fail now, not at the first step
            except Exception as exc:  # noqa: BLE001 - onnxruntime errors
                bundle, reason = None, f'{type(exc).__name__}: {exc}'
        if bundle is None:
            self.model_status = f'ERROR: {reason}'
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
                       frame_id=msg.header.frame_id, received_ns=now_ns,
                       labels=tuple(msg.labels),
                       logits=np.asarray(msg.logits, dtype=np.float32))

    def _on_vision(self, msg: EmotionFeature) -> None:
        now = self.get_clock().now().nanoseconds
        self._rates['vision'].tick()
        f = self._feature(msg, now)
        reason, step = self.runner.on_vision(f, now)
        self._report(reason, 'vision/features', f, now)
        self._publish(step)
        self._arm_deferred(now)

    def _on_voice(self, msg: EmotionFeature) -> None:
        now = self.get_clock().now().nanoseconds
        self._rates['voice'].tick()
        f = self._feature(msg, now)
        reason = self.runner.on_voice(f, now)
        self._report(reason, 'voice/features', f, now)
        if self.hri is not None and reason not in RejectReason.ALL:
            self.hri.on_voice(msg)

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
        elif reason == RejectReason.LABEL_MISMATCH:
            expected = f' (labels {list(f.labels)}, bundle has {self.engine.labels})'
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
        boxes = []
        for f in msg.faces:
            # an inf/NaN/negative box or one outside its image must not win "largest"
            reason = face_box_problem(f.x, f.y, f.width, f.height, f.image_width,
                                      f.image_height)
            if reason is None:
                boxes.append(FaceBox(f.id, float(f.width) * float(f.height)))
                continue
            self.engine.rejected[reason] = self.engine.rejected.get(reason, 0) + 1
            suppressed = self._throttle.allow(f'faces:{reason}', time.monotonic())
            if suppressed is not None:
                self.get_logger().warn(
                    f'faces: box of "{f.id}" rejected: {reason} ({f.x}, {f.y}, {f.width}x'
                    f'{f.height} in {f.image_width}x{f.image_height})'
                    + (f'; {suppressed} more since the last report' if suppressed else ''))
        self.runner.on_faces(boxes, self.get_clock().now().nanoseconds,
                             stamp_ns(msg.header.stamp), [f.id for f in msg.faces])
        if self.hri is not None:
            self.hri.on_faces(msg)

    def _on_hri_faces(self, faces, stamp_ns: int) -> None:
        """face_source hri: the tracked faces with a ROI (normalised areas for 'largest')."""
        self.runner.on_faces([FaceBox(f.id, f.width * f.height) for f in faces],
                             self.get_clock().now().nanoseconds)

    def _on_tracker(self, msg: TrackerState) -> None:
        self.runner.on_tracker(msg.target_id, self.get_clock().now().nanoseconds)

    # ------------------------------------------------------------------ output
    def _on_step(self) -> None:
        """The output_rate_hz timer: a step, unless a vision-triggered one ran within a period."""
        self._publish(self.runner.on_timer(self.get_clock().now().nanoseconds))

    def _arm_deferred(self, now: int) -> None:
        """Start the one-shot timer at the runner's due time (no-op if armed or none due)."""
        due = self.runner.deferred_due_ns
        timer = self._deferred_timer
        if due is None or timer is None or not timer.is_canceled():
            return
        timer.timer_period_ns = max(due - now, 1)
        timer.reset()

    def _on_deferred_step(self) -> None:
        """The one-shot timer: the runner fuses the pending vision feature (or re-arms)."""
        self._deferred_timer.cancel()
        now = self.get_clock().now().nanoseconds
        self._publish(self.runner.on_deferred(now))
        self._arm_deferred(now)

    def _publish(self, step: Optional[Step]) -> None:
        """Publish a step's Emotion per face; drop the publishers of removed tracks."""
        if step is None:
            return
        self._rates['steps'].tick()
        if self.hri is not None and step.removed:
            self.hri.drop(step.removed)
        for fid in step.removed:
            pub = self.face_pubs.pop(fid, None)
            if pub is not None:
                self.destroy_publisher(pub)
        if step.error:
            self._last_error = step.error
            if self._throttle.allow('model_error', time.monotonic()) is not None:
                self.get_logger().error(step.error)
        if step.estimates:
            self._step_ms.add(step.compute_s * 1e3 / len(step.estimates))
        for est in step.estimates:
            msg = self.to_msg(est)
            self.emotion_pub.publish(msg)
            if self.hri is not None and est.face_id != self.cfg.voice_only_id:
                self.hri.on_emotion(msg)
            if self.cfg.per_face_topics:
                self._face_publisher(est.face_id).publish(msg)
            self._rates['emotion'].tick()
        # latency of an input's first use only (a held input's age is not pipeline latency)
        if step.first_use:
            now = self.get_clock().now().nanoseconds
            for est in step.first_use:
                self._latency_ms.add((now - est.received_ns) / 1e6)

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
    def report(self) -> StatusReport:
        eng = self.engine
        r = StatusReport()
        if eng is None:
            return r
        rejected = {k: eng.rejected.get(k, 0) for k in RejectReason.ALL + BOX_REJECT_REASONS}
        drops = eng.drops()
        if not self.model_ok:
            r.raise_level(ERROR, f'model {self.model_status}')
        elif self._last_error:
            r.raise_level(ERROR, self._last_error)
        elif self.recent('rejected_or_dropped', sum(rejected.values())
                         + sum(drops[k] for k in DropReason.ALL)):
            # WARN while it happens (totals stay in the values), OK again once it stops
            r.raise_level(WARN, f'{len(eng.tracks)} tracks; inputs rejected or dropped lately')
        else:
            r.raise_level(OK, f'{len(eng.tracks)} tracks')
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
            'output_rate_hz': round(self._rates['steps'].rate(), 2),
            'steps_on_vision': self.schedule.vision_steps,
            'steps_on_timer': self.schedule.timer_steps,
            'timer_steps_skipped': self.schedule.timer_skips,
            'vision_steps_deferred': self.schedule.deferrals,
            'emotion_rate_hz': round(self._rates['emotion'].rate(), 2),
            'vision_rate_hz': round(self._rates['vision'].rate(), 2),
            'voice_rate_hz': round(self._rates['voice'].rate(), 2),
            'fusion_step_ms_per_face_mean': round(step['mean'], 3),
            'fusion_step_ms_per_face_max': round(step['max'], 3),
            'input_to_publish_ms_p95': round(lat['p95'], 2),
            'voice_unassigned_steps': eng.voice_unassigned_steps,
            'faces_over_capacity': eng.rows_over_capacity,
            'faces_out_of_view_skipped': eng.out_of_view_skips,
            'model_errors': eng.model_errors,
            'nonfinite_outputs': eng.nonfinite_outputs,
        }
        values.update({f'dropped.{k}': v for k, v in drops.items()})
        values.update({f'rejected.{k}': v for k, v in rejected.items()})
        for k, v in values.items():
            r.values[k] = str(v)
        return r


def main(args: Optional[list] = None) -> int:
    """Run the node (emotion_runtime.node_kit.run_node: autostart, exit codes)."""
    return run_node(FusionNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
