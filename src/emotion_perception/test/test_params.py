"""Parameter specs: validation messages, and config/perception.yaml in step with the code."""
import pathlib

import pytest
import yaml

from emotion_runtime.params import ParameterError, ParamSpec, in_range, positive, validate

CONFIG = pathlib.Path(__file__).resolve().parents[1] / 'config' / 'perception.yaml'


def test_validate_reports_every_bad_value_by_name():
    specs = [ParamSpec('rate', 30.0, 'Hz', positive), ParamSpec('n', 3, 'count', in_range(1, 5)),
             ParamSpec('name', 'x', 'text')]
    assert validate(specs, {'rate': 10})['rate'] == 10.0          # int accepted for a float
    with pytest.raises(ParameterError) as err:
        validate(specs, {'rate': -1.0, 'n': 9, 'name': 3})
    msg = str(err.value)
    assert 'rate=-1.0: must be > 0' in msg and 'n=9: must be in [1, 5]' in msg
    assert "name=3: expected str" in msg


@pytest.mark.parametrize('module', ['camera_node', 'microphone_node', 'face_node', 'vocal_node'])
def test_config_file_matches_the_declared_parameters(module):
    from emotion_perception.node_params import BY_NODE
    specs = BY_NODE[module]
    params = yaml.safe_load(CONFIG.read_text())[module]['ros__parameters']
    assert set(params) == {s.name for s in specs}
    for s in specs:
        assert params[s.name] == s.default, s.name
        assert s.description and len(s.description) > 10, s.name
    validate(specs, dict(params))


def test_ranges_choices_and_live_flags_are_checked_and_described():
    specs = [ParamSpec('gain', 1.0, 'gain', range=(0.0, 2.0), live=True),
             ParamSpec('mode', 'a', 'mode', choices=('a', 'b'))]
    with pytest.raises(ParameterError) as err:
        validate(specs, {'gain': 3, 'mode': 'c'})
    assert 'gain=3.0: must be in [0.0, 2.0]' in str(err.value)
    assert "mode='c': must be one of ['a', 'b']" in str(err.value)
    assert specs[0].constraints() == 'in [0.0, 2.0]' and "'a'" in specs[1].constraints()


def test_node_param_tables_need_no_rclpy():
    import subprocess
    import sys
    code = ('import sys, emotion_perception.node_params, emotion_fusion.config, '
            'robot_tracker.params; assert "rclpy" not in sys.modules and "cv2" not in sys.modules')
    subprocess.run([sys.executable, '-c', code], check=True)
