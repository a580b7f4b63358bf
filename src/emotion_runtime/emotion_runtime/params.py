"""Parameter specifications (name, default, description, check) shared by the four nodes.

Why: every parameter must be declared with a description and validated at startup with a clear
message; keeping the specs as data lets tests check the validation and the README table, and
keeps config/perception.yaml, the code and the docs in step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

__all__ = ['ParameterError', 'ParamSpec', 'validate', 'positive', 'non_negative', 'in_range',
           'one_of', 'any_value']


class ParameterError(ValueError):
    """A parameter value that the node cannot run with; the message names the parameter."""


Check = Callable[[Any], Optional[str]]   # returns an error text, or None when the value is fine


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    check: Optional[Check] = None


def positive(v: Any) -> Optional[str]:
    return None if v > 0 else 'must be > 0'


def non_negative(v: Any) -> Optional[str]:
    return None if v >= 0 else 'must be >= 0'


def in_range(lo: float, hi: float) -> Check:
    def check(v: Any) -> Optional[str]:
        return None if lo <= v <= hi else f'must be in [{lo}, {hi}]'
    return check


def one_of(*choices: Any) -> Check:
    def check(v: Any) -> Optional[str]:
        return None if v in choices else f'must be one of {list(choices)}'
    return check


def any_value(_v: Any) -> Optional[str]:
    return None


def validate(specs: list[ParamSpec], values: dict[str, Any]) -> dict[str, Any]:
    """Check every value; raise ParameterError listing all bad parameters at once."""
    errors = []
    for spec in specs:
        v = values.get(spec.name, spec.default)
        if type(spec.default) is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
            values[spec.name] = v
        if type(v) is not type(spec.default):
            errors.append(f'{spec.name}={v!r}: expected {type(spec.default).__name__}')
            continue
        msg = spec.check(v) if spec.check else None
        if msg:
            errors.append(f'{spec.name}={v!r}: {msg}')
    if errors:
        raise ParameterError('invalid parameter(s): ' + '; '.join(errors))
    return values
