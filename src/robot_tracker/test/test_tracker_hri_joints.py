"""tracker_node over real DDS: faces from ROS4HRI (face_source hri: /humans/faces/tracked +
/humans/faces/<id>/roi) drive the head, and joint_states carries pan_joint/tilt_joint = the
commanded PanTilt (transport none), in the frame of the URDF's base."""
from __future__ import annotations

import time

import pytest

from emotion_test_tools.dds import NodeProcess, RosHarness, isolated_domain, ros_env

ROS = pytest.importorskip('rclpy')

from rclpy.qos import QoSProfile  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from emotion_msgs.msg import PanTilt, TrackerState  # noqa: E402
from hri_msgs.msg import IdsList, NormalizedRegionOfInterest2D  # noqa: E402
from robot_tracker.head_model import BASE_FRAME, JOINT_NAMES  # noqa: E402

QOS = QoSProfile(depth=100)


def test_hri_faces_drive_the_head_and_joint_states_follow_the_command():
    with isolated_domain() as d, \
            NodeProcess('robot_tracker', 'tracker_node',
                        params={'transport': 'none', 'face_source': 'hri'},
                        env=ros_env(d)) as node, RosHarness('hri_tracker_test') as ros:
        states = ros.collect(TrackerState, 'tracker/state', QOS)
        cmds = ros.collect(PanTilt, 'pan_tilt/command', QOS)
        joints = ros.collect(JointState, 'joint_states', QOS)
        tracked = ros.publisher(IdsList, '/humans/faces/tracked', QOS)
        roi = ros.publisher(NormalizedRegionOfInterest2D, '/humans/faces/face_a/roi', QOS)
        assert ros.wait_for_subscribers(tracked, timeout=30), node.output()
        assert ros.node.count_subscribers('faces') == 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(s.target_id == 'face_a' for s in states):
            ids = IdsList(ids=['face_a'])
            ids.header.stamp = ros.node.get_clock().now().to_msg()
            tracked.publish(ids)
            # a face right of centre: the head turns right (pan < 0, REP-103)
            roi.publish(NormalizedRegionOfInterest2D(xmin=0.75, ymin=0.4, xmax=0.9, ymax=0.6,
                                                     c=0.9))
            time.sleep(0.05)
        assert any(s.target_id == 'face_a' for s in states), node.output()
        assert ros.wait_for(lambda: len(joints) >= 10 and min(c.pan for c in cmds) < -0.01, 10)
        js = joints[-1]
        assert tuple(js.name) == JOINT_NAMES and len(js.position) == 2
        assert js.header.frame_id == BASE_FRAME
        # each joint state is one command: same stamp, same angles
        by_stamp = {(c.header.stamp.sec, c.header.stamp.nanosec): c for c in list(cmds)}
        matched = [(j, by_stamp[(j.header.stamp.sec, j.header.stamp.nanosec)])
                   for j in list(joints) if (j.header.stamp.sec, j.header.stamp.nanosec)
                   in by_stamp]
        assert len(matched) >= 5
        for j, c in matched:
            assert j.position[0] == pytest.approx(c.pan) and j.position[1] == pytest.approx(c.tilt)
        assert node.stop() == 0, node.output()

