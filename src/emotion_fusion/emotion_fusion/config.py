"""The fusion node's parameters: one table with defaults, descriptions and checks (no rclpy).

Why one table: the node declares every parameter from it (so each has a description in
``ros2 param describe``), the tests and the bench build the same validated config without ROS,
and config/fusion.yaml and the README are checked against it by a test so they cannot drift.
A bad value raises ConfigError naming the parameter, the value and what is allowed, at startup.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

__all__ = ['ConfigError', 'FusionConfig', 'PARAMETERS', 'VOICE_ASSIGNMENT_POLICIES']

VOICE_ASSIGNMENT_POLICIES = ('target', 'largest', 'all')


class ConfigError(ValueError):
    """A parameter has a value the node cannot run with."""


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str


PARAMETERS: tuple[Param, ...] = (
    Param('model_bundle', '',
          'Model bundle directory (manifest.json + ONNX files); "" = the shipped default bundle '
          '($EMOTION_MODEL_BUNDLE, else emotion_runtime/models/default).'),
    Param('onnx_threads', 1, 'onnxruntime intra-op threads for the fusion step (>= 1).'),
    Param('output_rate_hz', 10.0,
          'Rate of the timer fusion step [Hz], one Emotion per face per step. With '
          'step_on_vision it is the fallback (audio-only output, camera stalled) and skips its '
          'step while a vision-triggered step ran within the last 1/output_rate_hz; without, '
          'it is the only output step.'),
    Param('step_on_vision', True,
          'Run a fusion step as soon as a vision feature is accepted (output follows the camera '
          'instead of waiting for the timer); false = timer steps only.'),
    Param('max_step_rate_hz', 30.0,
          'Vision-triggered steps are at least 1/max_step_rate_hz apart [Hz]; a feature arriving '
          'sooner is fused by the next step (at the end of that spacing at the latest).'),
    Param('slop', 1.0,
          'Largest distance between a vision frame stamp and the voice window [stamp, stamp + '
          'window] fused with it [s] (ApproximateTime slop).'),
    Param('vision_max_age', 0.5,
          'A face takes part in a step while its newest vision feature is at most this old [s]; '
          'older arrivals are dropped as late.'),
    Param('voice_max_age', 2.0,
          'A voice window may be fused while its stamp (window start) is at most this old [s]; '
          'older arrivals are dropped as late. Must cover window length + hop + processing.'),
    Param('queue_size', 10, 'Buffered features per source (face or microphone), oldest dropped.'),
    Param('max_tracks', 8,
          'Most face tracks (LSTM states) kept; the least recently seen is evicted beyond it.'),
    Param('track_timeout', 2.0,
          'A track not seen for this long is forgotten: its LSTM state restarts at zero [s].'),
    Param('voice_assignment', 'target',
          'Which face the voice belongs to: "target" (tracker/state target_id when fresh, else as '
          '"largest"), "largest" (largest box in faces), "all" (every visible face).'),
    Param('target_timeout', 1.0,
          'tracker/state and faces count as fresh for this long after arrival [s].'),
    Param('voice_only_id', 'voice',
          'face_id of the audio-only output published while no face is visible.'),
    Param('require_speech', True,
          'Use a voice window only when its VAD flag (speech) is set.'),
    Param('hysteresis_steps', 3,
          'A new label is published after leading for this many consecutive steps (1 = off).'),
    Param('hysteresis_margin', 0.2,
          'A new label is published at once when it leads the held one by this probability '
          '(0 < margin <= 1; 1 = off).'),
    Param('per_face_topics', False,
          'Also publish each face on <per_face_prefix>/<id>/emotion (REP-155 style).'),
    Param('per_face_prefix', 'humans/faces',
          'Namespace of the per-face topics (relative: follows the node namespace).'),
    Param('diagnostics_period', 1.0, 'Period of /diagnostics [s].'),
    Param('log_throttle', 5.0, 'Least time between two log lines about rejected or dropped '
          'inputs of the same kind [s].'),
)


@dataclass(frozen=True)
class FusionConfig:
    """The validated parameter values (field names = parameter names)."""

    model_bundle: str = ''
    onnx_threads: int = 1
    output_rate_hz: float = 10.0
    step_on_vision: bool = True
    max_step_rate_hz: float = 30.0
    slop: float = 1.0
    vision_max_age: float = 0.5
    voice_max_age: float = 2.0
    queue_size: int = 10
    max_tracks: int = 8
    track_timeout: float = 2.0
    voice_assignment: str = 'target'
    target_timeout: float = 1.0
    voice_only_id: str = 'voice'
    require_speech: bool = True
    hysteresis_steps: int = 3
    hysteresis_margin: float = 0.2
    per_face_topics: bool = False
    per_face_prefix: str = 'humans/faces'
    diagnostics_period: float = 1.0
    log_throttle: float = 5.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> 'FusionConfig':
        """Coerce and check ``values`` (missing keys take defaults); raise ConfigError if bad."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f'unknown parameter(s) {unknown}')
        out: dict[str, Any] = {}
        for name, f in known.items():
            default = f.default
            value = values.get(name, default)
            out[name] = _coerce(name, value, type(default))
        cfg = cls(**out)
        cfg._check()
        return cfg

    def _check(self) -> None:
        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ConfigError(f'parameter {name}={getattr(self, name)!r} is invalid: {what}')

        need(self.onnx_threads >= 1, 'onnx_threads', 'must be >= 1')
        need(0.0 < self.output_rate_hz <= 200.0, 'output_rate_hz', 'must be in (0, 200]')
        need(0.0 < self.max_step_rate_hz <= 200.0, 'max_step_rate_hz', 'must be in (0, 200]')
        need(self.slop >= 0.0, 'slop', 'must be >= 0')
        need(self.vision_max_age > 0.0, 'vision_max_age', 'must be > 0')
        need(self.voice_max_age > 0.0, 'voice_max_age', 'must be > 0')
        need(self.queue_size >= 1, 'queue_size', 'must be >= 1')
        need(1 <= self.max_tracks <= 256, 'max_tracks', 'must be in [1, 256]')
        need(self.track_timeout >= self.vision_max_age, 'track_timeout',
             f'must be >= vision_max_age ({self.vision_max_age})')
        need(self.voice_assignment in VOICE_ASSIGNMENT_POLICIES, 'voice_assignment',
             f'must be one of {list(VOICE_ASSIGNMENT_POLICIES)}')
        need(self.target_timeout > 0.0, 'target_timeout', 'must be > 0')
        need(bool(self.voice_only_id.strip()), 'voice_only_id', 'must not be empty')
        need(self.hysteresis_steps >= 1, 'hysteresis_steps', 'must be >= 1')
        need(0.0 < self.hysteresis_margin <= 1.0, 'hysteresis_margin', 'must be in (0, 1]')
        need(bool(self.per_face_prefix.strip('/')), 'per_face_prefix', 'must not be empty')
        need(self.diagnostics_period > 0.0, 'diagnostics_period', 'must be > 0')
        need(self.log_throttle >= 0.0, 'log_throttle', 'must be >= 0')


def _coerce(name: str, value: Any, kind: type) -> Any:
    """Accept what a YAML file or the command line naturally gives (10 for 10.0), nothing else."""
    bad = ConfigError(f'parameter {name}={value!r} has the wrong type: expected {kind.__name__}')
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if not math.isfinite(float(value)):
            raise ConfigError(f'parameter {name}={value!r} must be a finite number')
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise bad
