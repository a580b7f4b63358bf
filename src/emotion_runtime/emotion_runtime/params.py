"""Parameter specifications shared by every node: name, default, description, range, choices,
live-tunable or read-only, and an optional custom check.  No rclpy here.

Why: every parameter must be declared with a full description (type, range, choices, read-only)
and validated with a clear message naming it, at startup and when it is set at run time; keeping
the specs as data lets the offline evaluator, the bench and the tests build and check the same
configuration without ROS, and keeps the YAML files, the code and the docs in step.  The ROS side
(descriptors, the set-parameters callback) is emotion_runtime.node_kit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

__all__ = ['ParameterError', 'ParamSpec', 'validate', 'check_value', 'defaults', 'positive',
           'non_negative', 'in_range', 'one_of', 'any_value', 'not_empty']


class ParameterError(ValueError):
    """A parameter value that the node cannot run with; the message names the parameter."""


Check = Callable[[Any], Optional[str]]   # returns an error text, or None when the value is fine


@dataclass(frozen=True)
class ParamSpec:
    """One parameter.

    ``range=(lo, hi)`` (inclusive) becomes the descriptor's floating_point_range/integer_range,
    ``choices`` its additional_constraints; ``live=True`` means the node applies a new value at
    once (``on_parameters``), otherwise the parameter is read only after start.  ``check`` is for
    rules a range cannot say (``> 0``, not empty); its ``constraint`` text is shown too.
    """

    name: str
    default: Any
    description: str
    check: Optional[Check] = None
    range: Optional[tuple] = field(default=None, kw_only=True)
    choices: Optional[tuple] = field(default=None, kw_only=True)
    live: bool = field(default=False, kw_only=True)

    @property
    def kind(self) -> type:
        return type(self.default)

    def constraints(self) -> str:
        """Human-readable rules (ParameterDescriptor.additional_constraints)."""
        parts = []
        if self.range is not None:
            parts.append(f'in [{self.range[0]}, {self.range[1]}]')
        if self.choices is not None:
            parts.append('one of ' + ', '.join(repr(c) for c in self.choices))
        text = getattr(self.check, 'constraint', '')
        if text:
            parts.append(text)
        return '; '.join(parts)


def _described(text: str) -> Callable[[Check], Check]:
    def wrap(check: Check) -> Check:
        check.constraint = text   # type: ignore[attr-defined]
        return check
    return wrap


@_described('> 0')
def positive(v: Any) -> Optional[str]:
    return None if v > 0 else 'must be > 0'


@_described('>= 0')
def non_negative(v: Any) -> Optional[str]:
    return None if v >= 0 else 'must be >= 0'


@_described('not empty')
def not_empty(v: Any) -> Optional[str]:
    return None if str(v).strip(' /') else 'must not be empty'


def in_range(lo: float, hi: float) -> Check:
    @_described(f'in [{lo}, {hi}]')
    def check(v: Any) -> Optional[str]:
        return None if lo <= v <= hi else f'must be in [{lo}, {hi}]'
    return check


def one_of(*choices: Any) -> Check:
    @_described('one of ' + ', '.join(repr(c) for c in choices))
    def check(v: Any) -> Optional[str]:
        return None if v in choices else f'must be one of {list(choices)}'
    return check


def any_value(_v: Any) -> Optional[str]:
    return None


def defaults(specs: Iterable[ParamSpec]) -> dict[str, Any]:
    return {s.name: s.default for s in specs}


def coerce(spec: ParamSpec, v: Any) -> Any:
    """An int for a float parameter (YAML `30`, `-p rate:=30`) becomes a float, and a string
    array for a string parameter (`-p expected_labels:="[a, b]"`) its comma-separated form;
    nothing else."""
    if spec.kind is float and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if spec.kind is str and isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return ','.join(v)
    return v


def check_value(spec: ParamSpec, v: Any) -> Optional[str]:
    """The reason ``v`` is not acceptable for ``spec`` ('' / None when it is)."""
    if type(v) is not spec.kind:
        return f'expected {spec.kind.__name__}'
    if isinstance(v, float) and not math.isfinite(v):
        return 'must be a finite number'
    if spec.range is not None and not spec.range[0] <= v <= spec.range[1]:
        return f'must be in [{spec.range[0]}, {spec.range[1]}]'
    if spec.choices is not None and v not in spec.choices:
        return f'must be one of {list(spec.choices)}'
    return spec.check(v) if spec.check else None


def validate(specs: Iterable[ParamSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """Check every value (missing ones take the default); raise ParameterError listing all bad
    parameters at once.  Returns ``values`` with every spec filled in and ints made floats where
    the parameter is a float (the same dict when a dict was given)."""
    out = values if isinstance(values, dict) else dict(values)
    errors = []
    for spec in specs:
        v = coerce(spec, out.get(spec.name, spec.default))
        out[spec.name] = v
        msg = check_value(spec, v)
        if msg:
            errors.append(f'{spec.name}={v!r}: {msg}')
    if errors:
        raise ParameterError('invalid parameter(s): ' + '; '.join(errors))
    return out
