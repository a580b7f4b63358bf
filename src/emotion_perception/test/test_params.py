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
    import importlib
    specs = importlib.import_module(f'emotion_perception.{module}').PARAMS
    params = yaml.safe_load(CONFIG.read_text())[module]['ros__parameters']
    assert set(params) == {s.name for s in specs}
    for s in specs:
        assert params[s.name] == s.default, s.name
        assert s.description and len(s.description) > 10, s.name
    validate(specs, dict(params))
