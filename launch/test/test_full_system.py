"""The whole robot as separate processes over real DDS, fed by a generated clip, on the simulated Uno.

Checks what a user relies on: Emotion messages arrive for the face, PanTilt commands reach the
simulated servos (their pulse widths move away from centre), and killing the vocal node leaves the
rest of the graph running with fusion falling back to vision only; a restarted vocal node brings
the voice back.
"""
from __future__ import annotations

import os
import shutil
import time

import pytest

from emotion_bringup.demo import SimBoard, make_sample
from emotion_bringup.graph import GraphArgs, robot_graph
from emotion_bringup.graph_runner import GraphRunner, wait_until
from emotion_bringup.sim_board import SIM_PORT, ensure_built
from emotion_test_tools.dds import RosHarness, isolated_domain, ros_env
from emotion_test_tools.tiny_bundle import make_tiny_bundle

VISION, VOICE = 1, 2


@pytest.fixture(scope='module')
def system(tmp_path_factory):
    if shutil.which('espeak-ng') is None:
        pytest.skip('espeak-ng is not installed (the clip needs speech)')
    try:
        ensure_built()
    except RuntimeError as exc:
        pytest.skip(f'the simulated board cannot be built here: {exc}')
    from rclpy.qos import qos_profile_sensor_data

    from emotion_msgs.msg import Emotion, EmotionFeature, TrackerState
    tmp = tmp_path_factory.mktemp('system')
    video, wav, _bag, clip, _start = make_sample(tmp, 6.0, ['happy', 'sad'])
    bundle = make_tiny_bundle(tmp / 'bundle')
    board = SimBoard(tmp / 'sim_board.log')
    try:
        assert wait_until(lambda: os.path.exists(SIM_PORT), 10), 'no pty link'
        args = GraphArgs(camera=str(video), audio_file=str(wav), serial_port=SIM_PORT,
                         transport='serial', model_bundle=str(bundle))
        with isolated_domain() as domain_id:
            runner = GraphRunner(robot_graph(args), env=ros_env(domain_id), log_dir=tmp / 'logs')
            with runner, RosHarness('system_check') as ros:
                topics = {
                    'emotion': ros.collect(Emotion, 'emotion'),
                    'state': ros.collect(TrackerState, 'tracker/state'),
                    'voice': ros.collect(EmotionFeature, 'voice/features',
                                         qos_profile_sensor_data),
                }
                yield runner, ros, topics, board
    finally:
        board.stop()


def _face_emotions(msgs):
    return [m for m in msgs if m.face_id and m.face_id != 'voice']


def test_emotions_arrive_for_the_face(system):
    runner, ros, topics, board = system
    ok = ros.wait_for(lambda: len(_face_emotions(topics['emotion'])) >= 10, timeout=60)
    assert ok, 'no Emotion for a face within 60 s\n' + runner.logs()
    msg = _face_emotions(topics['emotion'])[-1]
    assert msg.modalities & VISION
    assert msg.expression in msg.labels and abs(sum(msg.probabilities) - 1) < 1e-3
    assert -1 <= msg.valence <= 1 and -1 <= msg.arousal <= 1


def test_pan_tilt_commands_reach_the_simulated_servos(system):
    runner, ros, topics, board = system
    # The face sweeps across the frame: the tracker must turn the head, so the simulated pan
    # servo's pulse leaves the 1500 us centre.
    # (the simulator reports 0 us while the firmware drives no pulse yet, before the tracker's
    # handshake: a width of 0 is no pulse, not a pan away from the centre)
    ok = ros.wait_for(lambda: bool(board.pulses[0]) and abs(board.pulses[0] - 1500) > 50,
                      timeout=60)
    assert ok, f'pan pulse stayed at {board.pulses[0]} us\n' + runner.logs()
    ok = ros.wait_for(lambda: any(s.link == 1 for s in topics['state']), timeout=10)
    assert ok, 'the tracker never reported LINK_UP\n' + runner.logs()
    ok = ros.wait_for(lambda: any(s.mode == 1 for s in topics['state']), timeout=10)
    assert ok, 'the tracker never reported TRACKING\n' + runner.logs()


def test_killing_the_vocal_node_falls_back_to_vision_only(system):
    runner, ros, topics, board = system
    ok = ros.wait_for(lambda: any(m.modalities & VOICE for m in _face_emotions(topics['emotion'])),
                      timeout=60)
    assert ok, 'the voice never contributed before the kill\n' + runner.logs()
    vocal = runner.nodes['vocal_node']
    vocal.kill()
    killed_at = time.monotonic()
    time.sleep(4.0)  # longer than fusion's voice_max_age (2 s): voice features have gone stale
    n_before = len(topics['emotion'])
    time.sleep(3.0)
    after = _face_emotions(topics['emotion'][n_before:])
    assert len(after) >= 10, 'fusion stopped publishing after the vocal node died'
    assert all(m.modalities == VISION for m in after), [m.modalities for m in after]
    others = [n for n in runner.dead() if n != 'vocal_node']
    assert others == [], f'nodes died with the vocal node: {others}\n' + runner.logs()
    assert time.monotonic() - killed_at < 30
    # Restart it (what launch's respawn does): voice features flow again.
    n_voice = len(topics['voice'])
    vocal.start()
    ok = ros.wait_for(lambda: len(topics['voice']) > n_voice + 3, timeout=60)
    assert ok, 'the restarted vocal node published no features\n' + vocal.output()[-3000:]
