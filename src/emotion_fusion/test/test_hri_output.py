"""fusion_node speaks ROS4HRI (REP-155) over real DDS, with the tiny test bundle.

1. An hri consumer (as pyhri/hri_rviz do) reads hri_msgs/IdsList on /humans/faces/tracked, then
   subscribes /humans/faces/<id>/expression and /roi for each id, and gets hri_msgs/Expression
   per face id with REP-155 names (disgust -> disgusted, fear -> scared, ...), the same ids as
   on every topic; /humans/voices/tracked + /humans/voices/<id>/is_speaking carry the VAD.
2. face_source hri: the faces come from /humans/faces/tracked + roi (a ROS4HRI detector); the
   voice goes to the largest ROI, and fusion_node does not publish tracked/roi itself.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from emotion_test_tools.dds import NodeProcess, RosHarness, isolated_domain, ros_env
from emotion_test_tools.tiny_bundle import make_tiny_bundle

ROS = pytest.importorskip('rclpy')

from builtin_interfaces.msg import Time as TimeMsg  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402

from emotion_msgs.msg import Emotion, EmotionFeature, Face, FaceArray  # noqa: E402
from emotion_runtime.rep155 import REP155_EXPRESSIONS, expression_name  # noqa: E402
from hri_msgs.msg import Expression, IdsList, NormalizedRegionOfInterest2D  # noqa: E402

DEFAULT_QOS = QoSProfile(depth=10)                      # what ROS4HRI tools subscribe with
COLLECT = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture(scope='module')
def bundle_path(tmp_path_factory):
    return make_tiny_bundle(tmp_path_factory.mktemp('bundle'))


def now_msg():
    ns = time.time_ns()
    return TimeMsg(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def feature(stamp, source, modality, emb):
    msg = EmotionFeature()
    msg.header.stamp = stamp
    msg.header.frame_id = 'camera_optical_frame' if modality == 1 else 'microphone_link'
    msg.source_id, msg.modality = source, modality
    msg.embedding = emb.astype(np.float32)
    msg.quality, msg.speech = 1.0, True
    return msg


def _embeddings(bundle_path):
    from emotion_runtime.model_bundle import ModelBundle
    b = ModelBundle.load(bundle_path)
    rng = np.random.default_rng(7)
    return (rng.standard_normal(b.vision_embedding_size), rng.standard_normal(
        b.vision_embedding_size), rng.standard_normal(b.voice_embedding_size))


def test_hri_consumer_gets_expressions_per_tracked_face(bundle_path):
    v1, v2, a = _embeddings(bundle_path)
    params = dict(model_bundle=str(bundle_path), output_rate_hz=10.0, voice_assignment='largest',
                  slop=0.3, voice_max_age=0.5)
    with isolated_domain() as domain:
        node = NodeProcess('emotion_fusion', 'fusion_node', params=params, env=ros_env(domain))
        try:
            with RosHarness('hri_consumer') as ros:
                emotions = ros.collect(Emotion, 'emotion', COLLECT)
                tracked = ros.collect(IdsList, '/humans/faces/tracked', DEFAULT_QOS)
                voices = ros.collect(IdsList, '/humans/voices/tracked', DEFAULT_QOS)
                speaking = ros.collect(Bool, '/humans/voices/voice/is_speaking', DEFAULT_QOS)
                vis_pub = ros.publisher(EmotionFeature, 'vision/features', qos_profile_sensor_data)
                voice_pub = ros.publisher(EmotionFeature, 'voice/features', qos_profile_sensor_data)
                faces_pub = ros.publisher(FaceArray, 'faces', COLLECT)
                assert ros.wait_for_subscribers(vis_pub, timeout=30), node.output()
                assert ros.wait_for_subscribers(faces_pub, timeout=10), node.output()
                per_id: dict = {}

                def pump(until, timeout):
                    deadline = time.monotonic() + timeout
                    while time.monotonic() < deadline and not until():
                        stamp = now_msg()
                        fa = FaceArray()
                        fa.header.stamp, fa.header.frame_id = stamp, 'camera_optical_frame'
                        fa.faces = [Face(id='f1', x=100.0, y=80.0, width=120.0, height=140.0,
                                         image_width=640, image_height=480, confidence=0.9,
                                         age=3),
                                    Face(id='f2', x=400.0, y=100.0, width=60.0, height=70.0,
                                         image_width=640, image_height=480, confidence=0.8,
                                         age=3)]
                        faces_pub.publish(fa)
                        vis_pub.publish(feature(stamp, 'f1', 1, v1))
                        vis_pub.publish(feature(stamp, 'f2', 1, v2))
                        voice_pub.publish(feature(stamp, 'voice', 2, a))
                        # the consumer: subscribe per id as the tracked list names them
                        for ids in [list(m.ids) for m in list(tracked)]:
                            for i in ids:
                                if i not in per_id:
                                    per_id[i] = (
                                        ros.collect(Expression, f'/humans/faces/{i}/expression',
                                                    DEFAULT_QOS),
                                        ros.collect(NormalizedRegionOfInterest2D,
                                                    f'/humans/faces/{i}/roi', DEFAULT_QOS))
                        time.sleep(0.05)
                    return until()

                ok = pump(lambda: len(per_id) == 2 and all(len(e) >= 5 and len(r) >= 5
                                                           for e, r in per_id.values()), 45)
                assert ok, f'tracked={[list(m.ids) for m in tracked][-3:]} ' \
                           f'{ {k: (len(e), len(r)) for k, (e, r) in per_id.items()} }\n' \
                           + node.output()
                assert set(per_id) == {'f1', 'f2'}
                assert ros.wait_for(lambda: len(speaking) >= 3, 10)
                fused = {m.face_id: m for m in list(emotions)}
        finally:
            node.stop()
    assert set(fused) >= {'f1', 'f2'}
    for fid, (exprs, _rois) in per_id.items():
        e = exprs[-1]
        assert e.expression in REP155_EXPRESSIONS, e.expression
        assert e.expression not in ('disgust', 'fear', 'surprise')
        names = {m.expression for m in exprs}
        ours = {expression_name(m.expression) for m in list(emotions) if m.face_id == fid}
        assert names <= ours, (fid, names, ours)
        assert -1.0 <= e.valence <= 1.0 and -1.0 <= e.arousal <= 1.0
        assert 0.0 <= e.confidence <= 1.0
        assert e.header.frame_id == 'camera_optical_frame'
    r1 = per_id['f1'][1][-1]
    assert (r1.xmin, r1.ymin, r1.xmax, r1.ymax) == pytest.approx(
        (100 / 640, 80 / 480, 220 / 640, 220 / 480), abs=1e-6)
    assert r1.c == pytest.approx(0.9)
    assert list(voices[-1].ids) == ['voice'] and speaking[-1].data is True
    # no expression for the audio-only id, no face id outside the tracked list
    assert all(set(m.ids) <= {'f1', 'f2'} for m in tracked)


def test_face_source_hri_reads_tracked_and_roi(bundle_path):
    v1, v2, a = _embeddings(bundle_path)
    params = dict(model_bundle=str(bundle_path), output_rate_hz=10.0, voice_assignment='largest',
                  slop=0.3, voice_max_age=0.5, face_source='hri')
    with isolated_domain() as domain:
        node = NodeProcess('emotion_fusion', 'fusion_node', params=params, env=ros_env(domain))
        try:
            with RosHarness('hri_detector') as ros:
                emotions = ros.collect(Emotion, 'emotion', COLLECT)
                expr2 = ros.collect(Expression, '/humans/faces/f2/expression', DEFAULT_QOS)
                tracked_pub = ros.publisher(IdsList, '/humans/faces/tracked', DEFAULT_QOS)
                roi_pubs = {i: ros.publisher(NormalizedRegionOfInterest2D,
                                             f'/humans/faces/{i}/roi', DEFAULT_QOS)
                            for i in ('f1', 'f2')}
                vis_pub = ros.publisher(EmotionFeature, 'vision/features', qos_profile_sensor_data)
                voice_pub = ros.publisher(EmotionFeature, 'voice/features', qos_profile_sensor_data)
                assert ros.wait_for_subscribers(tracked_pub, timeout=30), node.output()
                assert ros.node.count_subscribers('faces') == 0       # faces is not read
                boxes = {'f1': (0.1, 0.1, 0.2, 0.2), 'f2': (0.5, 0.3, 0.9, 0.9)}   # f2 largest

                def f2_voice():
                    return [m for m in list(emotions) if m.face_id == 'f2' and m.modalities & 2]

                def f1_after_f2_voice():
                    # f1's outputs from the step after f2 first got the voice: until f2's roi
                    # subscription (made when the tracked list names f2) has matched, f1 is the
                    # only face with a ROI and rightly gets the voice
                    msgs = list(emotions)
                    first = next((k for k, m in enumerate(msgs)
                                  if m.face_id == 'f2' and m.modalities & 2), None)
                    if first is None:
                        return []
                    t0 = msgs[first].header.stamp.sec * 10**9 + msgs[first].header.stamp.nanosec
                    return [m for m in msgs[first:] if m.face_id == 'f1'
                            and m.header.stamp.sec * 10**9 + m.header.stamp.nanosec > t0]

                deadline = time.monotonic() + 45
                while time.monotonic() < deadline and not (len(f2_voice()) >= 5
                                                           and len(expr2) >= 3
                                                           and len(f1_after_f2_voice()) >= 10):
                    stamp = now_msg()
                    ids = IdsList(ids=['f1', 'f2'])
                    ids.header.stamp = stamp
                    tracked_pub.publish(ids)
                    for i, (x0, y0, x1, y1) in boxes.items():
                        roi = NormalizedRegionOfInterest2D(xmin=x0, ymin=y0, xmax=x1, ymax=y1,
                                                           c=0.9)
                        roi.header.stamp = stamp
                        roi_pubs[i].publish(roi)
                    vis_pub.publish(feature(stamp, 'f1', 1, v1))
                    vis_pub.publish(feature(stamp, 'f2', 1, v2))
                    voice_pub.publish(feature(stamp, 'voice', 2, a))
                    time.sleep(0.05)
                assert len(f2_voice()) >= 5, node.output()
                assert len(expr2) >= 3, node.output()
                # the voice went to the largest ROI only, once both faces had one
                late = f1_after_f2_voice()
                assert len(late) >= 10, node.output()
                assert all(not m.modalities & 2 for m in late), [m.modalities for m in late]
                # the detector owns tracked/roi: fusion_node publishes neither
                assert ros.node.count_publishers('/humans/faces/tracked') == 1
                assert ros.node.count_publishers('/humans/faces/f1/roi') == 1
        finally:
            node.stop()
