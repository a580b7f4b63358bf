"""Bags the project writes open in other tools: rosbags' AnyReader and the mcap ROS 2 reader.

Covers the bag of ``emotion-bag make`` (JPEG images on image_raw/compressed by default, raw with
``--raw-images``) and a recording (``emotion-bag record``) of the ROS4HRI, joint-state and
Emotion topics the demo records.  Before, rosbags wrote emotion_msgs/Emotion's ``UNKNOWN = ""``
as ``string UNKNOWN=`` and AnyReader refused every bag ("Could not parse").
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from emotion_training import media
from emotion_training.bag_io import decode_image, image_connections, open_bag
from emotion_training.bag_make import write_clip
from emotion_training.bag_types import msgdef
from emotion_training.labels import DEFAULT_LABELS

SIZE, FPS, SECONDS = (320, 240), 10.0, 1.0
START_NS = 1_700_000_000 * 1_000_000_000


def _bag(out: pathlib.Path, storage: str = 'mcap', raw_images: bool = False) -> dict:
    clip = media.demo_source(SECONDS, ('happy', 'fear'), SIZE, FPS, 16000, 'sweep', False)
    return write_clip(clip, out, DEFAULT_LABELS, storage, 20.0, 5.0, START_NS, progress=False,
                      raw_images=raw_images)


def _any_reader(bag: pathlib.Path) -> dict:
    """topic -> decoded messages, through rosbags' AnyReader (definitions from the bag)."""
    from rosbags.highlevel import AnyReader
    out: dict = {}
    with AnyReader([bag]) as reader:
        for conn, _, raw in reader.messages():
            out.setdefault(conn.topic, []).append(reader.deserialize(raw, conn.msgtype))
    return out


def _mcap_reader(bag: pathlib.Path) -> dict:
    """topic -> decoded messages, through mcap-ros2-support (definitions from the schemas)."""
    from mcap_ros2.reader import read_ros2_messages
    out: dict = {}
    for path in sorted(bag.glob('*.mcap')):
        for m in read_ros2_messages(str(path)):
            out.setdefault(m.channel.topic, []).append(m.ros_msg)
    return out


def test_empty_string_constant_is_written_parseably():
    text = msgdef('emotion_msgs/msg/Emotion')
    assert 'string UNKNOWN=""' in text and 'string UNKNOWN=\n' not in text
    assert 'MSG: std_msgs/Header' in text


@pytest.mark.parametrize('raw_images', [False, True])
def test_made_bag_opens_in_anyreader_and_mcap(tmp_path, raw_images):
    summary = _bag(tmp_path / 'b', raw_images=raw_images)
    image_topic = '/image_raw' if raw_images else '/image_raw/compressed'
    assert summary['counts'][image_topic] == 10
    for read in (_any_reader, _mcap_reader):
        msgs = read(tmp_path / 'b')
        assert set(msgs) == {image_topic, '/audio', '/emotion/ground_truth'}, read.__name__
        truth = [m.expression for m in msgs['/emotion/ground_truth']]
        assert truth == ['happy'] * 3 + ['fear'] * 2, read.__name__
        img = msgs[image_topic][3]
        if raw_images:
            assert (img.width, img.height, img.encoding) == (320, 240, 'bgr8')
        else:
            assert img.format == 'jpeg'
            assert decode_image(img).shape == (240, 320, 3)


def test_compressed_images_are_the_default_and_much_smaller(tmp_path):
    _bag(tmp_path / 'jpeg')
    _bag(tmp_path / 'raw', raw_images=True)

    def size(p: pathlib.Path) -> int:
        return sum(f.stat().st_size for f in p.iterdir())
    assert size(tmp_path / 'jpeg') * 5 < size(tmp_path / 'raw')
    # the evaluator and the replay find and decode either kind
    for name in ('jpeg', 'raw'):
        reader = open_bag(tmp_path / name)
        try:
            conns = image_connections(reader, '/image_raw')
            assert len(conns) == 1
            conn, _, raw = next(iter(reader.messages(connections=conns)))
            from emotion_training.bag_io import decode
            frame = decode_image(decode(raw, conn.msgtype))
            assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
        finally:
            reader.close()


def test_sqlite3_bag_opens_in_anyreader(tmp_path):
    _bag(tmp_path / 'b', storage='sqlite3')
    msgs = _any_reader(tmp_path / 'b')
    assert len(msgs['/image_raw/compressed']) == 10


def test_replay_decompress_publishes_raw_images(tmp_path):
    """`emotion-bag replay --decompress`: a JPEG bag drives a graph that reads image_raw."""
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from emotion_test_tools.dds import RosHarness, isolated_domain, ros_env
    _bag(tmp_path / 'b')
    with isolated_domain() as domain_id, RosHarness('decompress_checker') as ros:
        images = ros.collect(Image, '/image_raw', qos_profile_sensor_data)
        res = subprocess.run(
            [sys.executable, '-m', 'emotion_training.bag_cli', 'replay', str(tmp_path / 'b'),
             '--decompress', '--topics', '/image_raw/compressed', '--wait-subscribers', '20',
             '--delay', '1'], capture_output=True, text=True, env=ros_env(domain_id), timeout=90)
        assert res.returncode == 0, res.stderr
        ros.wait_for(lambda: len(images) >= 8, timeout=10)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out['counts'] == {'/image_raw': 10}
    assert (images[0].width, images[0].height, images[0].encoding) == (320, 240, 'bgr8')


def test_recording_of_hri_joint_and_emotion_topics_opens_everywhere(tmp_path):
    """What the demo records: /humans/faces/tracked, /humans/faces/<id>/expression,
    joint_states and emotion, written by `emotion-bag record`, read by AnyReader and mcap."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState

    from emotion_msgs.msg import Emotion
    from emotion_test_tools.dds import RosHarness, isolated_domain, ros_env
    from hri_msgs.msg import Expression, IdsList
    topics = {'/humans/faces/tracked': 'hri_msgs/msg/IdsList',
              '/humans/faces/f1/expression': 'hri_msgs/msg/Expression',
              '/joint_states': 'sensor_msgs/msg/JointState',
              '/emotion': 'emotion_msgs/msg/Emotion'}
    n = 5
    out = tmp_path / 'rec'
    with isolated_domain() as domain_id, RosHarness('record_feeder_hri') as ros:
        cmd = [sys.executable, '-m', 'emotion_training.bag_cli', 'record', str(out), '--topics',
               *topics, '--max-messages', str(n * len(topics))]
        for t, ty in topics.items():
            cmd += ['--type', f'{t}:={ty}']
        proc = subprocess.Popen(cmd, env=ros_env(domain_id), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
            pubs = {t: ros.publisher(cls, t, qos) for t, cls in
                    (('/humans/faces/tracked', IdsList),
                     ('/humans/faces/f1/expression', Expression),
                     ('/joint_states', JointState), ('/emotion', Emotion))}
            assert all(ros.wait_for_subscribers(p, 1, 30) for p in pubs.values())
            for i in range(n):
                pubs['/humans/faces/tracked'].publish(IdsList(ids=['f1']))
                pubs['/humans/faces/f1/expression'].publish(
                    Expression(expression='scared', valence=-0.6, arousal=0.6, confidence=0.7))
                pubs['/joint_states'].publish(JointState(name=['pan_joint', 'tilt_joint'],
                                                         position=[0.1 * i, -0.05]))
                pubs['/emotion'].publish(Emotion(face_id='f1', expression='fear',
                                                 labels=list(DEFAULT_LABELS)))
                time.sleep(0.02)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    assert proc.returncode == 0, stderr
    for read in (_any_reader, _mcap_reader):
        msgs = read(out)
        assert set(msgs) == set(topics), read.__name__
        assert all(len(v) == n for v in msgs.values()), read.__name__
        assert list(msgs['/humans/faces/tracked'][0].ids) == ['f1']
        assert msgs['/humans/faces/f1/expression'][0].expression == 'scared'
        assert list(msgs['/joint_states'][4].name) == ['pan_joint', 'tilt_joint']
        assert msgs['/emotion'][0].expression == 'fear'
