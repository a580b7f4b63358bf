"""Parameter validation gives errors that name the parameter."""
import pytest

from emotion_runtime.params import ParameterError
from robot_tracker.params import DEFAULTS, PARAMS, settings_from


def test_defaults_are_valid_and_match_yaml():
    s = settings_from({})
    assert s.transport == 'serial' and s.control_rate >= 30
    from pathlib import Path
    yaml_text = (Path(__file__).resolve().parents[1] / 'config' / 'tracker.yaml').read_text()
    for spec in PARAMS:
        assert f'    {spec.name}:' in yaml_text, spec.name


@pytest.mark.parametrize('values,match', [
    ({'transport': 'usb'}, 'transport'),
    ({'control_rate': 10.0}, 'control_rate'),
    ({'selection_policy': 'locked'}, 'locked_id'),
    ({'camera_hfov_deg': 0.0}, 'hfov'),
    ({'kp': float('nan')}, 'kp'),
    ({'keepalive_interval': 2.0}, 'keepalive'),
    ({'pan_min_deg': 10.0, 'pan_max_deg': -10.0}, 'pan_min'),
])
def test_bad_values(values, match):
    with pytest.raises(ParameterError, match=match):
        settings_from(values)


def test_every_parameter_has_a_description():
    assert all(s.description for s in PARAMS)
    assert set(DEFAULTS) == {s.name for s in PARAMS}
    live = {s.name for s in PARAMS if s.live}
    assert {'kp', 'kd', 'kff', 'deadband', 'min_confidence', 'switch_hysteresis',
            'max_velocity_deg_s'} <= live
