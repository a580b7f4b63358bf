"""The fusion node's parameters: one ParamSpec table with defaults, descriptions, ranges, choices
and which ones are live (no rclpy).

Why one table: the node declares every parameter from it (emotion_runtime.node_kit: so each has a
full descriptor in ``ros2 param describe``), the tests, the bench and the offline evaluator build
the same validated config without ROS, and config/fusion.yaml and the README are checked against
it by a test so they cannot drift.  A bad value raises emotion_runtime.params.ParameterError
naming the parameter, the value and what is allowed.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from emotion_runtime.labels import expected_labels_spec
from emotion_runtime.params import ParameterError, ParamSpec, non_negative, not_empty, positive, validate

__all__ = ['FusionConfig', 'PARAMS', 'ParameterError', 'VOICE_ASSIGNMENT_POLICIES']

VOICE_ASSIGNMENT_POLICIES = ('target', 'largest', 'all')
VOICE_ONLY_OUTPUTS = ('vocal', 'fusion')
FACE_SOURCES = ('faces', 'hri')


def _rate(v: Any) -> Any:
    return None if 0.0 < v <= 200.0 else 'must be in (0, 200]'


_rate.constraint = 'in (0, 200]'   # type: ignore[attr-defined]


def _margin(v: Any) -> Any:
    return None if 0.0 < v <= 1.0 else 'must be in (0, 1]'


_margin.constraint = 'in (0, 1]'   # type: ignore[attr-defined]


PARAMS: list[ParamSpec] = [
    ParamSpec('model_bundle', '',
              'Model bundle directory (manifest.json + ONNX files); "" = the shipped default '
              'bundle ($EMOTION_MODEL_BUNDLE, else emotion_runtime/models/default).'),
    ParamSpec('onnx_threads', 1, 'onnxruntime intra-op threads for the fusion step (>= 1).',
              range=(1, 64)),
    expected_labels_spec(),
    ParamSpec('output_rate_hz', 10.0,
              'Rate of the timer fusion step [Hz], one Emotion per face per step. With '
              'step_on_vision it is the fallback (audio-only output, camera stalled) and skips '
              'its step while a vision-triggered step ran within the last 1/output_rate_hz; '
              'without, it is the only output step.', _rate),
    ParamSpec('step_on_vision', True,
              'Run a fusion step as soon as a vision feature is accepted (output follows the '
              'camera instead of waiting for the timer); false = timer steps only.'),
    ParamSpec('max_step_rate_hz', 30.0,
              'Vision-triggered steps are at least 1/max_step_rate_hz apart [Hz]; a feature '
              'arriving sooner is fused by the next step (at the end of that spacing at the '
              'latest).', _rate),
    ParamSpec('slop', 1.0,
              'Largest distance between a vision frame stamp and the voice window [stamp, stamp '
              '+ window] fused with it [s] (ApproximateTime slop).', non_negative),
    ParamSpec('vision_max_age', 0.5,
              'A face takes part in a step while its newest vision feature is at most this old '
              '[s]; older arrivals are dropped as late.', positive),
    ParamSpec('voice_max_age', 2.0,
              'A voice window may be fused while its stamp (window start) is at most this old '
              '[s]; older arrivals are dropped as late. Must cover window length + hop + '
              'processing.', positive),
    ParamSpec('queue_size', 10, 'Buffered features per source (face or microphone), oldest '
              'dropped.', range=(1, 10000)),
    ParamSpec('max_tracks', 8,
              'Most face tracks (LSTM states) kept; the least recently seen is evicted beyond '
              'it.', range=(1, 256)),
    ParamSpec('track_timeout', 2.0,
              'A track not seen for this long is forgotten: its LSTM state restarts at zero [s] '
              '(>= vision_max_age).', positive),
    ParamSpec('faces_in_view_only', True,
              'A face missing from the newest FaceArray (face_source "faces") gets no estimate '
              'until it is seen again, though its last vision feature '
              'is younger than vision_max_age: a face that left or was re-identified as '
              'another person stops at once instead of repeating its last look (its LSTM state '
              'is kept for track_timeout). False: every face with a vision feature younger '
              'than vision_max_age.', live=True),
    ParamSpec('voice_assignment', 'target',
              'Which face the voice belongs to: "target" (tracker/state target_id when fresh, '
              'else as "largest"), "largest" (largest box in faces), "all" (every visible face).',
              choices=VOICE_ASSIGNMENT_POLICIES, live=True),
    ParamSpec('target_timeout', 1.0,
              'tracker/state and faces count as fresh for this long after arrival [s].',
              positive, live=True),
    ParamSpec('voice_only_id', 'voice',
              'face_id of the audio-only output published while no face is visible.', not_empty),
    ParamSpec('voice_only_output', 'vocal',
              'What the audio-only output (no face in view) publishes: "vocal" (the vocal '
              'encoder\'s own decision, softmax of the voice feature\'s logits: with vocal_node '
              'span_pooling "logits" the running mean over the voiced span) or "fusion" (the '
              'fusion head\'s reading of the voice embedding). A feature without logits gets '
              'the fusion head\'s. The fusion head runs either way, so its state is the same.',
              choices=VOICE_ONLY_OUTPUTS, live=True),
    ParamSpec('vocal_weight', 1.0,
              'A face row fused with a voice window also takes the vocal encoder\'s own decision '
              '(the window\'s logits: with vocal_node span_pooling "logits" the voiced span\'s '
              'so far) into its output: probabilities proportional to head probabilities x '
              'vocal probabilities ** vocal_weight (0 = the head\'s alone).',
              non_negative, live=True),
    ParamSpec('vision_weight', 0.0,
              'A face row also takes the vision encoder\'s own decision on that face (the face '
              'feature\'s logits) into its output: probabilities proportional to head '
              'probabilities x vision probabilities ** vision_weight (x the vocal decision as '
              'vocal_weight says; 0 = not taken in).', non_negative, live=True),
    ParamSpec('require_speech', True,
              'Use a voice window only when its VAD flag (speech) is set.', live=True),
    ParamSpec('hysteresis_steps', 3,
              'A new label is published after leading for this many consecutive steps (1 = '
              'off).', range=(1, 1000), live=True),
    ParamSpec('hysteresis_margin', 0.2,
              'A new label is published at once when it leads the held one by this probability '
              '(0 < margin <= 1; 1 = off).', _margin, live=True),
    ParamSpec('per_face_topics', False,
              'Also publish each face on <per_face_prefix>/<id>/emotion (REP-155 style).'),
    ParamSpec('per_face_prefix', 'humans/faces',
              'Namespace of the per-face topics (relative: follows the node namespace).',
              not_empty),
    ParamSpec('hri_output', True,
              'Publish ROS4HRI (REP-155) output: <hri_prefix>/faces/tracked + /faces/<id>/roi '
              '(only with face_source "faces"), /faces/<id>/expression (hri_msgs/Expression, '
              'REP-155 names), /voices/tracked + /voices/<id>/is_speaking.'),
    ParamSpec('hri_prefix', '/humans',
              'Root of the REP-155 topics (absolute per the REP; a relative prefix follows the '
              'node namespace).', not_empty),
    ParamSpec('face_source', 'faces',
              'Where the face boxes come from: "faces" (face_node\'s FaceArray) or "hri" '
              '(<hri_prefix>/faces/tracked + /faces/<id>/roi of a ROS4HRI detector).',
              choices=FACE_SOURCES),
    ParamSpec('diagnostics_period', 1.0, 'Period of /diagnostics [s].', positive),
    ParamSpec('log_throttle', 5.0, 'Least time between two log lines about rejected or dropped '
              'inputs of the same kind [s].', non_negative, live=True),
]


@dataclass(frozen=True)
class FusionConfig:
    """The validated parameter values (field names = parameter names)."""

    model_bundle: str = ''
    onnx_threads: int = 1
    expected_labels: str = expected_labels_spec().default
    output_rate_hz: float = 10.0
    step_on_vision: bool = True
    max_step_rate_hz: float = 30.0
    slop: float = 1.0
    vision_max_age: float = 0.5
    voice_max_age: float = 2.0
    queue_size: int = 10
    max_tracks: int = 8
    track_timeout: float = 2.0
    faces_in_view_only: bool = True
    voice_assignment: str = 'target'
    target_timeout: float = 1.0
    voice_only_id: str = 'voice'
    voice_only_output: str = 'vocal'
    vocal_weight: float = 1.0
    vision_weight: float = 0.0
    require_speech: bool = True
    hysteresis_steps: int = 3
    hysteresis_margin: float = 0.2
    per_face_topics: bool = False
    per_face_prefix: str = 'humans/faces'
    hri_output: bool = True
    hri_prefix: str = '/humans'
    face_source: str = 'faces'
    diagnostics_period: float = 1.0
    log_throttle: float = 5.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> 'FusionConfig':
        """Coerce and check ``values`` (missing keys take defaults); raise ParameterError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known - {'autostart'})
        if unknown:
            raise ParameterError(f'unknown parameter(s) {unknown}')
        out = validate(PARAMS, {k: v for k, v in values.items() if k in known})
        check_across(out)
        return cls(**out)


def check_across(values: Mapping[str, Any]) -> None:
    """The rule a single parameter's range cannot say."""
    if values['track_timeout'] < values['vision_max_age']:
        raise ParameterError(f"invalid parameter(s): track_timeout={values['track_timeout']!r}: "
                             f"must be >= vision_max_age ({values['vision_max_age']})")
