"""tracker_node as a process: unusable face boxes (x = inf, NaN, negative size) are refused,
counted by reason on /diagnostics and leave the head where it is; a good face is still tracked
(the x = inf box turned the head to its limit on the code before the hardening)."""
from __future__ import annotations

import time

import pytest

from emotion_test_tools.dds import NodeProcess, RosHarness, isolated_domain, ros_env

ROS = pytest.importorskip('rclpy')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

from emotion_msgs.msg import Face, FaceArray, PanTilt  # noqa: E402

RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


def _face(fid, x, y=200.0, w=80.0, h=80.0):
    return Face(id=fid, x=x, y=y, width=w, height=h, image_width=640, image_height=480,
                confidence=0.9, age=5)


def _diag(diags):
    for arr in reversed(diags):
        for st in arr.status:
            if st.name.startswith('tracker_node'):
                return {kv.key: kv.value for kv in st.values}
    return {}


def test_unusable_face_boxes_are_refused_counted_and_do_not_move_the_head():
    with isolated_domain() as d, \
            NodeProcess('robot_tracker', 'tracker_node', params={'transport': 'none'},
                        env=ros_env(d)) as node, RosHarness() as ros:
        diags = ros.collect(DiagnosticArray, '/diagnostics', 50)
        cmds = ros.collect(PanTilt, 'pan_tilt/command', 100)
        pub = ros.publisher(FaceArray, 'faces', RELIABLE)
        assert ros.wait_for_subscribers(pub, timeout=30.0), node.output()
        assert ros.wait_for(lambda: len(cmds) >= 3, 15.0), node.output()
        home = cmds[-1].pan
        for _ in range(10):
            msg = FaceArray(faces=[_face('inf', float('inf'))])
            msg.header.stamp = ros.node.get_clock().now().to_msg()
            pub.publish(msg)
            time.sleep(0.03)
        msg = FaceArray(faces=[_face('nan', float('nan')), _face('neg', 100.0, w=-40.0)])
        msg.header.stamp = ros.node.get_clock().now().to_msg()
        pub.publish(msg)
        assert ros.wait_for(lambda: _diag(diags).get('rejected_non_finite_box') == '11'
                            and _diag(diags).get('rejected_empty_box') == '1', 15.0), \
            f'{_diag(diags)}\n{node.output()}'
        n = len(cmds)
        assert ros.wait_for(lambda: len(cmds) >= n + 5, 10.0)
        assert all(abs(c.pan - home) < 1e-6 for c in cmds), 'a refused box moved the head'
        # a good face to the right is still tracked: the head turns right (negative pan)
        good = FaceArray(faces=[_face('f1', 500.0)])
        for _ in range(30):
            good.header.stamp = ros.node.get_clock().now().to_msg()
            pub.publish(good)
            time.sleep(0.03)
        assert ros.wait_for(lambda: cmds[-1].pan < home - 1e-3, 10.0), node.output()
        assert node.alive()
