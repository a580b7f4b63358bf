"""fusion_node as a process: a wrong model fails configure (exit 1), features from a model with
another label order and unusable face boxes are rejected and counted by reason, good input is
still fused (each failed on the code before the hardening)."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from emotion_test_tools.dds import NodeProcess, RosHarness, isolated_domain, ros_env
from emotion_test_tools.tiny_bundle import DEFAULT_LABELS, make_tiny_bundle

ROS = pytest.importorskip('rclpy')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402

from emotion_msgs.msg import Emotion, EmotionFeature, Face, FaceArray  # noqa: E402
from emotion_runtime.model_bundle import sha256_of  # noqa: E402

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
SWAPPED = list(DEFAULT_LABELS)
SWAPPED[3], SWAPPED[5] = SWAPPED[5], SWAPPED[3]          # happy <-> sad


@pytest.mark.parametrize('kind,message', [('swapped_labels', 'label order'),
                                          ('truncated_onnx', 'onnxruntime cannot load'),
                                          ('wrong_sha256', 'sha256 mismatch')])
def test_a_wrong_model_fails_configure_and_exits_1(tmp_path, kind, message):
    dst = tmp_path / 'bundle'
    make_tiny_bundle(dst, labels=SWAPPED if kind == 'swapped_labels' else DEFAULT_LABELS)
    if kind != 'swapped_labels':
        manifest = json.loads((dst / 'manifest.json').read_text())
        fname = manifest['fusion']['file']
        if kind == 'truncated_onnx':
            f = dst / fname
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
            manifest['files'][fname] = sha256_of(f)
        else:
            manifest['files'][fname] = 'f' * 64
        (dst / 'manifest.json').write_text(json.dumps(manifest, indent=1))
    with isolated_domain() as d:
        node = NodeProcess('emotion_fusion', 'fusion_node', params={'model_bundle': str(dst)},
                           env=ros_env(d))
        assert node.proc.wait(60) == 1, node.output()
        node.close()
    assert 'configure failed' in node.output() and message in node.output(), node.output()


def _feature(t, labels):
    msg = EmotionFeature(source_id='f1', modality=EmotionFeature.MODALITY_VISION,
                         embedding=np.full(16, 0.1, np.float32), labels=list(labels),
                         logits=np.zeros(len(labels), np.float32), quality=0.9, speech=True)
    msg.header.stamp = t
    msg.header.frame_id = 'camera'
    return msg


def _diag(diags):
    for arr in reversed(diags):
        for st in arr.status:
            if st.name.startswith('fusion_node'):
                return {kv.key: kv.value for kv in st.values}
    return {}


def test_label_mismatch_and_bad_boxes_are_rejected_and_counted(tmp_path):
    bundle = make_tiny_bundle(tmp_path / 'bundle')
    with isolated_domain() as d, \
            NodeProcess('emotion_fusion', 'fusion_node', params={'model_bundle': str(bundle)},
                        env=ros_env(d)) as node, RosHarness() as ros:
        diags = ros.collect(DiagnosticArray, '/diagnostics', 50)
        out = ros.collect(Emotion, 'emotion', RELIABLE)
        vision = ros.publisher(EmotionFeature, 'vision/features', qos_profile_sensor_data)
        faces = ros.publisher(FaceArray, 'faces', RELIABLE)
        assert ros.wait_for_subscribers(vision, timeout=30.0), node.output()
        assert ros.wait_for_subscribers(faces, timeout=30.0), node.output()

        def now():
            return ros.node.get_clock().now().to_msg()

        # a face whose features come from a model with "sad" and "happy" swapped
        for _ in range(5):
            vision.publish(_feature(now(), SWAPPED))
            time.sleep(0.05)
        bad = FaceArray(faces=[Face(id='f1', x=float('inf'), y=10.0, width=50.0, height=50.0,
                                    image_width=640, image_height=480, confidence=0.9),
                               Face(id='f2', x=10.0, y=10.0, width=-5.0, height=50.0,
                                    image_width=640, image_height=480, confidence=0.9)])
        bad.header.stamp = now()
        faces.publish(bad)
        assert ros.wait_for(lambda: int(_diag(diags).get('rejected.label_mismatch', 0)) >= 1
                            and _diag(diags).get('rejected.non_finite_box') == '1'
                            and _diag(diags).get('rejected.empty_box') == '1', 15.0), \
            node.output()
        assert not out, 'a feature with another label order was fused'
        assert 'label_mismatch' in node.output()
        # good input is still served
        assert ros.wait_for(lambda: (vision.publish(_feature(now(), DEFAULT_LABELS)) or
                                     len(out) > 0), 15.0, interval=0.1), node.output()
        assert list(out[-1].labels) == list(DEFAULT_LABELS) and out[-1].face_id == 'f1'
        assert node.alive()
