"""Parameters: defaults valid, bad values refused with the parameter named, YAML/README in sync."""
from pathlib import Path

import pytest
import yaml

from emotion_fusion.config import PARAMS, FusionConfig
from emotion_runtime.params import ParameterError

PKG = Path(__file__).resolve().parents[1]


def test_defaults_are_valid_and_match_table():
    cfg = FusionConfig.from_mapping({})
    for p in PARAMS:
        assert getattr(cfg, p.name) == p.default, p.name
    assert {p.name for p in PARAMS} == set(cfg.__dataclass_fields__)


def test_int_accepted_for_float():
    assert FusionConfig.from_mapping({'output_rate_hz': 20}).output_rate_hz == 20.0


@pytest.mark.parametrize('name,value', [
    ('output_rate_hz', 0.0), ('output_rate_hz', -1), ('output_rate_hz', 'fast'),
    ('slop', -0.1), ('queue_size', 0), ('max_tracks', 0), ('voice_assignment', 'loudest'),
    ('hysteresis_steps', 0), ('hysteresis_margin', 0.0), ('hysteresis_margin', 1.5),
    ('track_timeout', 0.1), ('voice_only_id', ''), ('per_face_topics', 1),
    ('vision_max_age', float('nan')), ('onnx_threads', 2.5),
    ('max_step_rate_hz', 0.0), ('max_step_rate_hz', 250.0), ('step_on_vision', 'yes'),
])
def test_bad_values_raise_naming_the_parameter(name, value):
    with pytest.raises(ParameterError, match=name):
        FusionConfig.from_mapping({name: value})


def test_unknown_parameter_refused():
    with pytest.raises(ParameterError, match='unknown'):
        FusionConfig.from_mapping({'output_rate': 10})


def test_yaml_defaults_match_and_validate():
    data = yaml.safe_load((PKG / 'config' / 'fusion.yaml').read_text())
    params = data['/**']['ros__parameters']
    cfg = FusionConfig.from_mapping(params)
    assert set(params) == {p.name for p in PARAMS}
    for p in PARAMS:
        assert getattr(cfg, p.name) == p.default, p.name


def test_readme_lists_every_parameter():
    readme = (PKG / 'README.md').read_text()
    missing = [p.name for p in PARAMS if f'`{p.name}`' not in readme]
    assert missing == []
