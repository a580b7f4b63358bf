"""fusion_node as a lifecycle node over real DDS (emotion_runtime.node_kit).

- every transition through the lifecycle services (<node>/change_state, <node>/get_state),
  started with autostart:=false, checking the state after each, /diagnostics while inactive but
  no output, output on input while active;
- /diagnostics within ~3 s of the start while configure is still running ("warming up");
- a live parameter set through the SetParameters service changes behaviour at once, a bad value
  is refused with a reason that names the parameter and the rule, a read-only one is refused;
- a bundle that cannot be loaded: configure fails, the node stays unconfigured and says why.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from emotion_test_tools.dds import NodeProcess, RosHarness, isolated_domain, ros_env
from emotion_test_tools.tiny_bundle import make_tiny_bundle

rclpy = pytest.importorskip('rclpy')

from builtin_interfaces.msg import Time as TimeMsg  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from rcl_interfaces.msg import Parameter as ParameterMsg  # noqa: E402
from rcl_interfaces.msg import ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402

from emotion_msgs.msg import Emotion, EmotionFeature  # noqa: E402

COLLECT = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
NODE = 'fusion_node'


@pytest.fixture(scope='module')
def bundle_path(tmp_path_factory):
    return make_tiny_bundle(tmp_path_factory.mktemp('bundle'))


def _call(ros, srv_type, name, request):
    answer = ros.call(srv_type, name, request)
    assert answer is not None, f'{name}: no answer'
    return answer


def _state(ros):
    state = ros.state(NODE)
    assert state is not None, 'get_state: no answer'
    return state


def _change(ros, transition_id):
    done = ros.change_state(NODE, transition_id)
    assert done is not None, f'change_state {transition_id}: no answer'
    return done


def _voice(speech=True):
    ns = time.time_ns()
    m = EmotionFeature()
    m.header.stamp = TimeMsg(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
    m.header.frame_id = 'mic'
    m.source_id, m.modality, m.speech, m.quality = 'voice', 2, speech, 1.0
    m.embedding = np.ones(_voice.size, np.float32)
    return m


def _diag(arr_list):
    """(level, message, values) of the fusion node's newest status, or None."""
    for arr in reversed(list(arr_list)):
        for st in arr.status:
            if st.name.startswith(NODE):
                return st.level[0] if isinstance(st.level, bytes) else st.level, st.message, \
                    {kv.key: kv.value for kv in st.values}
    return None


def _set(ros, name, value):
    v = ParameterValue()
    if isinstance(value, bool):
        v.type, v.bool_value = ParameterType.PARAMETER_BOOL, value
    elif isinstance(value, float):
        v.type, v.double_value = ParameterType.PARAMETER_DOUBLE, value
    else:
        v.type, v.integer_value = ParameterType.PARAMETER_INTEGER, value
    req = SetParameters.Request(parameters=[ParameterMsg(name=name, value=v)])
    return _call(ros, SetParameters, f'/{NODE}/set_parameters', req).results[0]


def _feed(ros, pub, emotions, speech=True, seconds=3.0):
    """Publish voice features at 20 Hz until an Emotion arrives; whether one did."""
    before = len(emotions)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pub.publish(_voice(speech))
        if ros.wait_for(lambda: len(emotions) > before, 0.05):
            return True
    return False


def test_every_lifecycle_transition_over_dds(bundle_path):
    from emotion_runtime.model_bundle import ModelBundle
    _voice.size = ModelBundle.load(bundle_path).voice_embedding_size
    params = dict(model_bundle=str(bundle_path), autostart=False, require_speech=True,
                  output_rate_hz=20.0)
    T = Transition
    with isolated_domain() as domain, \
            NodeProcess('emotion_fusion', NODE, params=params, env=ros_env(domain)) as node, \
            RosHarness('lifecycle_test') as ros:
        diags = ros.collect(DiagnosticArray, '/diagnostics', COLLECT)
        emotions = ros.collect(Emotion, 'emotion', COLLECT)
        pub = ros.publisher(EmotionFeature, 'voice/features', qos_profile_sensor_data)
        assert _state(ros) == 'unconfigured', node.output()
        assert ros.wait_for(lambda: _diag(diags) is not None, 10), node.output()
        assert _diag(diags)[2]['lifecycle_state'] == 'unconfigured'

        assert _change(ros, T.TRANSITION_CONFIGURE) and _state(ros) == 'inactive'
        assert ros.wait_for(lambda: _diag(diags)[2]['lifecycle_state'] == 'inactive', 5)
        assert not _feed(ros, pub, emotions, seconds=1.5), 'output while inactive'

        assert _change(ros, T.TRANSITION_ACTIVATE) and _state(ros) == 'active'
        assert _feed(ros, pub, emotions, seconds=10), 'no output while active\n' + node.output()
        assert ros.wait_for(lambda: _diag(diags)[2]['lifecycle_state'] == 'active', 5)
        assert 'model_status' in _diag(diags)[2]

        assert _change(ros, T.TRANSITION_DEACTIVATE) and _state(ros) == 'inactive'
        time.sleep(0.3)
        assert not _feed(ros, pub, emotions, seconds=1.5), 'output after deactivate'
        assert _change(ros, T.TRANSITION_CLEANUP) and _state(ros) == 'unconfigured'
        assert _change(ros, T.TRANSITION_CONFIGURE) and _state(ros) == 'inactive'
        assert _change(ros, T.TRANSITION_ACTIVATE) and _state(ros) == 'active'
        assert _feed(ros, pub, emotions, seconds=10), 'no output after re-activation'
        assert _change(ros, T.TRANSITION_ACTIVE_SHUTDOWN) and _state(ros) == 'finalized'
        assert node.alive()
        assert node.stop() == 0, node.output()
    assert 'configured' in node.output() and 'active' in node.output()


def test_diagnostics_flow_while_configuring(bundle_path):
    env = None
    with isolated_domain() as domain:
        env = ros_env(domain)
        env['EMOTION_CONFIGURE_DELAY_S'] = '6'
        t0 = time.monotonic()
        with NodeProcess('emotion_fusion', NODE, params=dict(model_bundle=str(bundle_path)),
                         env=env) as node, RosHarness('warmup_test') as ros:
            diags = ros.collect(DiagnosticArray, '/diagnostics', COLLECT)
            ok = ros.wait_for(lambda: (_diag(diags) or (0, ''))[1].startswith('warming up'), 5)
            assert ok, node.output()
            assert time.monotonic() - t0 < 6.0      # while configure still waits
            level, message, values = _diag(diags)
            assert level == 1 and values['lifecycle_state'] == 'configuring', (message, values)
            assert ros.wait_for(lambda: _diag(diags)[2]['lifecycle_state'] == 'active', 20), \
                node.output()
            assert node.stop() == 0, node.output()
    assert 'done in' in node.output()


def test_live_parameter_changes_behaviour_and_bad_value_is_refused(bundle_path):
    from emotion_runtime.model_bundle import ModelBundle
    _voice.size = ModelBundle.load(bundle_path).voice_embedding_size
    params = dict(model_bundle=str(bundle_path), require_speech=True, output_rate_hz=20.0)
    with isolated_domain() as domain, \
            NodeProcess('emotion_fusion', NODE, params=params, env=ros_env(domain)) as node, \
            RosHarness('param_test') as ros:
        emotions = ros.collect(Emotion, 'emotion', COLLECT)
        pub = ros.publisher(EmotionFeature, 'voice/features', qos_profile_sensor_data)
        assert ros.wait_for(lambda: _state(ros) == 'active', 20), node.output()
        assert not _feed(ros, pub, emotions, speech=False, seconds=2.0)   # no speech: no voice
        assert _set(ros, 'require_speech', False).successful
        assert _feed(ros, pub, emotions, speech=False, seconds=10), node.output()
        bad = _set(ros, 'hysteresis_margin', 1.5)
        assert not bad.successful and 'hysteresis_margin' in bad.reason and '(0, 1]' in bad.reason
        assert _set(ros, 'hysteresis_margin', 1).successful        # an int for a double
        ro = _set(ros, 'output_rate_hz', 5.0)
        assert not ro.successful and 'read-only' in ro.reason
        assert node.stop() == 0, node.output()
    assert 'parameters changed: require_speech=False' in node.output()
