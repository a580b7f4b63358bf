"""Execute the launch files against stand-ins for `launch`, and check what they start.

Where the real `launch` / `launch_ros` are installed, test_launch_testing.py runs them for real.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fake_launch import (  # noqa: E402
    ExecuteProcess,
    LifecycleNode,
    Node,
    fake_launch_modules,
    is_state_publisher,
    load_launch_file,
)

from emotion_bringup.graph import GraphArgs, robot_graph  # noqa: E402

LAUNCH_DIR = HERE.parent


def _expand(name: str, **overrides: str) -> list:
    with fake_launch_modules():
        module = load_launch_file(LAUNCH_DIR / name)
        return module.generate_launch_description().expand(overrides)


def test_robot_launch_starts_the_graph_with_its_parameters():
    actions = _expand('robot.launch.py', camera='clip.avi', audio_file='speech.wav',
                      transport='none', namespace='head', log_level='debug')
    nodes = [a for a in actions if isinstance(a, Node) and not is_state_publisher(a)]
    specs = robot_graph(GraphArgs(camera='clip.avi', audio_file='speech.wav', transport='none',
                                  namespace='head', log_level='debug'))
    assert [(n.kwargs['package'], n.kwargs['executable'], n.kwargs['name']) for n in nodes] == \
        [(s.package, s.executable, s.name) for s in specs]
    assert all(isinstance(n, LifecycleNode) for n in nodes)
    for node, spec in zip(nodes, specs):
        assert node.kwargs['namespace'] == 'head'
        assert node.kwargs['parameters'][-2] == spec.parameters
        assert node.kwargs['parameters'][-1] == {'autostart': True}
        assert all(Path(p).is_file() for p in node.kwargs['parameters'][:-2])
        assert node.kwargs['arguments'][-1] == 'debug'
    camera = next(n for n in nodes if n.kwargs['executable'] == 'camera_node')
    assert camera.kwargs['parameters'][-2]['source'] == 'clip.avi'
    tracker = next(n for n in nodes if n.kwargs['executable'] == 'tracker_node')
    assert tracker.kwargs['parameters'][-2]['transport'] == 'none'


def test_robot_launch_rejects_an_unknown_transport():
    with pytest.raises(ValueError, match='transport'):
        _expand('robot.launch.py', transport='bluetooth')


def test_every_launch_argument_has_a_description():
    with fake_launch_modules():
        module = load_launch_file(LAUNCH_DIR / 'robot.launch.py')
        description = module.generate_launch_description()
    declared = [e for e in description.entities if hasattr(e, 'description')]
    assert {d.name for d in declared} >= {'camera', 'audio_device', 'serial_port', 'transport',
                                          'model_bundle', 'namespace', 'debug_image', 'log_level'}
    assert all(d.description for d in declared)


def test_simulated_board_is_started_for_serial_port_sim():
    actions = _expand('robot.launch.py', serial_port='sim', transport='serial')
    processes = [a for a in actions if isinstance(a, ExecuteProcess)]
    assert len(processes) == 1
    tracker = next(a for a in actions if isinstance(a, Node)
                   and a.kwargs['executable'] == 'tracker_node')
    from emotion_bringup.sim_board import SIM_PORT
    assert tracker.kwargs['parameters'][-2]['port'] == SIM_PORT


def test_replay_launch_plays_records_and_evaluates():
    from fake_launch import RegisterEventHandler
    actions = _expand('replay.launch.py', bag='demo_bag', out='ev')
    nodes = [a.kwargs['executable'] for a in actions if isinstance(a, Node)]
    assert nodes == ['face_node', 'vocal_node', 'fusion_node']
    cmds = [a.kwargs['cmd'] for a in actions if isinstance(a, ExecuteProcess)]
    assert ['ros2', 'bag', 'play', 'demo_bag'] == cmds[1][:4]
    assert cmds[0][:3] == ['ros2', 'bag', 'record'] and '/emotion' in cmds[0]
    handlers = [a for a in actions if isinstance(a, RegisterEventHandler)]
    evaluate = handlers[0].args[0].kwargs['on_exit'][0]
    assert evaluate.kwargs['cmd'][:3] == ['emotion-eval', 'bag', 'ev/recording']


def test_replay_launch_needs_a_bag():
    with pytest.raises(ValueError, match='bag'):
        _expand('replay.launch.py')


def test_robot_launch_sets_the_large_image_dds_profile(monkeypatch):
    from fake_launch import SetEnvironmentVariable
    monkeypatch.delenv('FASTRTPS_DEFAULT_PROFILES_FILE', raising=False)
    actions = _expand('robot.launch.py')
    env = [a for a in actions if isinstance(a, SetEnvironmentVariable)
           and a.args[0] == 'FASTRTPS_DEFAULT_PROFILES_FILE']
    assert len(env) == 1
    assert Path(env[0].args[1]).is_file()


def test_robot_launch_defaults_to_localhost_discovery(monkeypatch):
    from fake_launch import SetEnvironmentVariable

    def discovery(actions):
        return [a.args[1] for a in actions if isinstance(a, SetEnvironmentVariable)
                and a.args[0] == 'ROS_AUTOMATIC_DISCOVERY_RANGE']
    monkeypatch.delenv('ROS_AUTOMATIC_DISCOVERY_RANGE', raising=False)
    assert discovery(_expand('robot.launch.py')) == ['LOCALHOST']
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'SUBNET')   # opened up on purpose: kept
    assert discovery(_expand('robot.launch.py')) == []


def test_robot_launch_runs_the_health_monitor_by_default():
    def monitors(actions):
        return [a for a in actions if isinstance(a, Node)
                and a.kwargs['executable'] == 'health_monitor']
    actions = _expand('robot.launch.py')
    [monitor] = monitors(actions)
    others = [a.kwargs['name'] for a in actions if isinstance(a, Node) and a is not monitor
              and not is_state_publisher(a)]
    assert monitor.kwargs['parameters'][-2]['expected_nodes'].split(',') == others
    assert monitors(_expand('robot.launch.py', health_monitor='false')) == []


def test_robot_launch_runs_robot_state_publisher_with_the_head_urdf():
    """TF of the head: robot_state_publisher gets the URDF whose joints tracker_node publishes."""
    import xml.etree.ElementTree as ET
    [rsp] = [a for a in _expand('robot.launch.py', namespace='head')
             if isinstance(a, Node) and is_state_publisher(a)]
    assert rsp.kwargs['executable'] == 'robot_state_publisher'
    assert rsp.kwargs['namespace'] == 'head'
    [params] = rsp.kwargs['parameters']
    robot = ET.fromstring(params['robot_description'])
    joints = {j.get('name') for j in robot.iter('joint')}
    assert {'pan_joint', 'tilt_joint'} <= joints
