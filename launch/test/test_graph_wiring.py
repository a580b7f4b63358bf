"""The wiring of robot.launch.py, checked on the running graph (no ROS `launch` needed).

robot_graph() is what robot.launch.py starts. Here every node of it runs as its own process in an
isolated DDS domain (camera from a generated video, microphone from a generated WAV, transport
none), and the test checks that
  - every executable is installed where launch looks for it,
  - every parameter in the YAML files and launch overrides is declared by its node (a typo in a
    YAML file is otherwise silently ignored by ROS 2),
  - every topic a node subscribes to is published by some node of the graph, and the graph
    publishes the topics of the design (image_raw, audio, faces, features, emotion, pan/tilt).
"""
from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml

from emotion_bringup.graph import GraphArgs, executable_path, robot_graph
from emotion_bringup.graph_runner import GraphRunner
from emotion_test_tools.dds import RosHarness, isolated_domain, ros_env
from emotion_test_tools.tiny_bundle import make_tiny_bundle

DESIGN_TOPICS = {'/image_raw', '/audio', '/faces', '/vision/features', '/voice/features',
                 '/emotion', '/pan_tilt/command', '/tracker/state', '/diagnostics', '/health'}
INFRA_TOPICS = {'/parameter_events', '/rosout'}


def test_every_executable_is_installed():
    for spec in robot_graph():
        path = executable_path(spec)
        assert os.access(path, os.X_OK), f'{spec.package}/{spec.executable} missing at {path}'


def test_every_parameter_file_exists_and_names_graph_nodes():
    specs = robot_graph()
    names = {s.name for s in specs}
    for spec in specs:
        for path in spec.param_files:
            data = yaml.safe_load(Path(path).read_text())
            assert isinstance(data, dict), path
            for key in data:
                assert key == '/**' or key.lstrip('/') in names or key.endswith('_node'), \
                    f'{path}: section {key!r} names no node of the graph'


def _yaml_params(spec) -> set:
    keys = set()
    for path in spec.param_files:
        data = yaml.safe_load(Path(path).read_text()) or {}
        for section, body in data.items():
            if section in ('/**', spec.name, '/' + spec.name):
                keys |= set((body or {}).get('ros__parameters', {}))
    return keys


def _write_inputs(tmp: Path) -> tuple[str, str]:
    import cv2
    video = tmp / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 30, (320, 240))
    for i in range(30):
        frame = np.full((240, 320, 3), 40 + i, np.uint8)
        writer.write(frame)
    writer.release()
    wav = tmp / 'tone.wav'
    t = np.arange(16000 * 2) / 16000
    samples = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype('<i2')
    with wave.open(str(wav), 'wb') as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(samples.tobytes())
    return str(video), str(wav)


def _list_parameters(ros: RosHarness, node_name: str) -> set:
    from rcl_interfaces.srv import ListParameters
    answer = ros.call(ListParameters, f'/{node_name}/list_parameters',
                      ListParameters.Request(depth=0))
    assert answer is not None, f'{node_name}: no answer from list_parameters'
    return set(answer.result.names)


@pytest.fixture(scope='module')
def running_graph(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('graph')
    video, wav = _write_inputs(tmp)
    bundle = make_tiny_bundle(tmp / 'bundle')
    args = GraphArgs(camera=video, audio_file=wav, transport='none', model_bundle=str(bundle))
    specs = robot_graph(args)
    with isolated_domain() as domain_id:
        runner = GraphRunner(specs, env=ros_env(domain_id), log_dir=tmp / 'logs')
        with runner, RosHarness('wiring_check') as ros:
            names = {s.name for s in specs}
            ok = ros.wait_for(lambda: names <= set(ros.node.get_node_names()), timeout=60)
            assert ok, ('nodes missing: ' + str(names - set(ros.node.get_node_names())) + '\n'
                        + runner.logs())
            yield specs, runner, ros


def test_every_yaml_and_launch_parameter_is_declared(running_graph):
    specs, runner, ros = running_graph
    for spec in specs:
        declared = _list_parameters(ros, spec.name)
        wanted = _yaml_params(spec) | set(spec.parameters)
        assert wanted, spec.name
        assert wanted <= declared, (f'{spec.name} does not declare '
                                    f'{sorted(wanted - declared)}')


def test_every_subscription_has_a_publisher_in_the_graph(running_graph):
    specs, runner, ros = running_graph
    node = ros.node
    published, subscribed = set(), {}
    # Graph information arrives by discovery: wait until every node shows its publishers.
    def gather() -> bool:
        published.clear()
        subscribed.clear()
        for spec in specs:
            pubs = node.get_publisher_names_and_types_by_node(spec.name, '/')
            subs = node.get_subscriber_names_and_types_by_node(spec.name, '/')
            published.update(t for t, _ in pubs)
            subscribed[spec.name] = {t for t, _ in subs} - INFRA_TOPICS
        return DESIGN_TOPICS <= published
    ok = ros.wait_for(gather, timeout=30, interval=0.5)
    assert ok, f'design topics not published: {sorted(DESIGN_TOPICS - published)}'
    for name, topics in subscribed.items():
        orphans = topics - published
        assert not orphans, f'{name} subscribes to {sorted(orphans)} that no graph node publishes'
    assert runner.dead() == [], runner.logs()
