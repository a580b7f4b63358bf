"""FusionNode's adapter logic in process (callbacks called directly, no spinning, no peers).

Covers what the DDS test does not: audio-only output, per-face publisher lifecycle (created at a
face's first output, destroyed when its track expires), the face-id -> topic token rule, and the
rejection counters as diagnostics report them.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from emotion_test_tools.dds import isolated_domain

rclpy = pytest.importorskip('rclpy')

from builtin_interfaces.msg import Time as TimeMsg  # noqa: E402
from emotion_msgs.msg import EmotionFeature  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from emotion_fusion.fusion_node import FusionNode, face_topic_token  # noqa: E402

NS = 1_000_000_000


@pytest.fixture(scope='module')
def bundle_path(tmp_path_factory):
    training = pytest.importorskip('emotion_training.testing')
    return training.make_test_bundle(tmp_path_factory.mktemp('bundle'))


@pytest.fixture
def make_node(bundle_path):
    made = []
    with isolated_domain():
        ctx = rclpy.Context()
        rclpy.init(context=ctx)

        def make(**params):
            params.setdefault('model_bundle', str(bundle_path))
            node = FusionNode(context=ctx, parameter_overrides=[
                Parameter(k, value=v) for k, v in params.items()])
            sent = []
            node.emotion_pub.publish = sent.append   # capture instead of sending
            made.append(node)
            return node, sent
        yield make
        for node in made:
            node.destroy_node()
        rclpy.shutdown(context=ctx)


def feature(node, sid, modality, emb, age_s=0.0):
    ns = node.get_clock().now().nanoseconds - int(age_s * NS)
    m = EmotionFeature()
    m.header.stamp = TimeMsg(sec=ns // NS, nanosec=ns % NS)
    m.header.frame_id = 'mic' if modality == 2 else 'camera'
    m.source_id, m.modality, m.speech = sid, modality, True
    m.embedding = np.asarray(emb, np.float32)
    return m


def topics(node):
    return {name for name, _ in node.get_topic_names_and_types()}


def test_audio_only_output_uses_voice_id(make_node):
    node, sent = make_node(voice_only_id='voice')
    node._on_voice(feature(node, 'voice', 2, np.ones(node.engine.model.voice_embedding_size)))
    node._on_step()
    assert [(m.face_id, m.modalities, m.header.frame_id) for m in sent] == [('voice', 2, 'mic')]
    assert sent[0].expression in node.engine.labels


def test_per_face_publishers_follow_tracks(make_node):
    node, sent = make_node(per_face_topics=True, vision_max_age=0.2, track_timeout=0.3)
    size = node.engine.model.vision_embedding_size
    node._on_vision(feature(node, 'f1', 1, np.ones(size)))
    node._on_vision(feature(node, '7-b', 1, np.ones(size)))
    node._on_step()
    assert sorted(m.face_id for m in sent) == ['7-b', 'f1']
    assert set(node.face_pubs) == {'f1', '7-b'}
    assert {'/humans/faces/f1/emotion', '/humans/faces/id_7_b/emotion'} <= topics(node)
    time.sleep(0.4)          # both tracks pass track_timeout without a frame
    node._on_step()
    assert node.face_pubs == {}
    assert not {'/humans/faces/f1/emotion', '/humans/faces/id_7_b/emotion'} & topics(node)


def test_bad_inputs_counted_by_reason(make_node):
    node, sent = make_node()
    size = node.engine.model.vision_embedding_size
    node._on_vision(feature(node, 'f1', 1, np.full(size, np.inf)))
    node._on_vision(feature(node, 'f1', 1, np.ones(size + 1)))
    node._on_vision(feature(node, 'f1', 1, []))
    node._on_voice(feature(node, 'voice', 1, np.ones(node.engine.model.voice_embedding_size)))
    node._on_vision(feature(node, 'f1', 1, np.ones(size), age_s=5.0))
    assert node.engine.rejected == {'non_finite_embedding': 1, 'wrong_embedding_size': 1,
                                    'empty_embedding': 1, 'wrong_modality': 1}
    assert node.engine.drops()['vision.late'] == 1
    node._on_step()
    assert sent == []


@pytest.mark.parametrize('face_id,token', [('f3', 'f3'), ('3', 'id_3'), ('a-b', 'a_b'),
                                           ('', 'id_')])
def test_face_topic_token(face_id, token):
    assert face_topic_token(face_id) == token


def test_corrupt_bundle_reported_node_keeps_running(make_node, bundle_path, tmp_path):
    import shutil
    bad = tmp_path / 'bad'
    shutil.copytree(bundle_path, bad)
    onnx = next(bad.glob('fusion*.onnx'))
    onnx.write_bytes(onnx.read_bytes()[:100])
    node, sent = make_node(model_bundle=str(bad))
    assert not node.model_ok and 'sha256' in node.model_status
    node._on_vision(feature(node, 'f1', 1, np.ones(16)))
    node._on_step()
    node._publish_diagnostics()
    assert sent == []
