"""The head's URDF (launch/urdf/pan_tilt_head.urdf) parses, its joints are the ones tracker_node
publishes on joint_states with the tracker's limits, and every frame_id the nodes publish is a
link of it (xml.etree: urdf_parser_py is not installed here)."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from robot_tracker.head_model import (
    BASE_FRAME,
    CAMERA_OPTICAL_FRAME,
    JOINT_NAMES,
    MICROPHONE_FRAME,
    urdf_source_path,
)
from robot_tracker.params import DEFAULTS

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope='module')
def robot():
    path = urdf_source_path()
    assert path == ROOT / 'launch' / 'urdf' / 'pan_tilt_head.urdf'
    return ET.parse(path).getroot()


def _params(path: Path, node: str) -> dict:
    return yaml.safe_load(path.read_text()).get(node, {}).get('ros__parameters', {})


def test_urdf_is_one_tree_rooted_at_the_pan_tilt_base(robot):
    assert robot.tag == 'robot'
    links = {lk.get('name') for lk in robot.iter('link')}
    children = {j.find('child').get('link') for j in robot.iter('joint')}
    parents = {j.find('parent').get('link') for j in robot.iter('joint')}
    assert (parents | children) <= links
    assert links - children == {BASE_FRAME}          # one root
    assert len(children) == len(list(robot.iter('joint')))   # every link has one parent


def test_joints_match_the_published_names_and_the_tracker_limits(robot):
    joints = {j.get('name'): j for j in robot.iter('joint') if j.get('type') == 'revolute'}
    assert tuple(joints) == JOINT_NAMES
    tracker = {**DEFAULTS,
               **_params(ROOT / 'src' / 'robot_tracker' / 'config' / 'tracker.yaml',
                         'tracker_node'),
               **_params(ROOT / 'launch' / 'config' / 'robot.yaml', 'tracker_node')}
    velocity = math.radians(tracker['max_velocity_deg_s'])
    for name, lo, hi, axis in (('pan_joint', 'pan_min_deg', 'pan_max_deg', '0 0 1'),
                               ('tilt_joint', 'tilt_min_deg', 'tilt_max_deg', '0 1 0')):
        j = joints[name]
        limit = j.find('limit')
        assert float(limit.get('lower')) == pytest.approx(math.radians(tracker[lo]), abs=1e-5)
        assert float(limit.get('upper')) == pytest.approx(math.radians(tracker[hi]), abs=1e-5)
        assert float(limit.get('velocity')) == pytest.approx(velocity, abs=1e-5)
        assert float(limit.get('effort')) > 0
        assert j.find('axis').get('xyz') == axis    # + = left about z, + = down about y (PanTilt)
    assert joints['pan_joint'].find('parent').get('link') == BASE_FRAME


def test_published_frame_ids_are_links(robot):
    links = {lk.get('name') for lk in robot.iter('link')}
    perception = ROOT / 'src' / 'emotion_perception' / 'config' / 'perception.yaml'
    robot_yaml = ROOT / 'launch' / 'config' / 'robot.yaml'
    frames = {
        DEFAULTS['frame_id'],                                                # PanTilt, state
        _params(perception, 'camera_node')['frame_id'],                     # image_raw, faces
        _params(robot_yaml, 'camera_node').get('frame_id', CAMERA_OPTICAL_FRAME),
        _params(perception, 'microphone_node')['frame_id'],                 # audio
    }
    assert frames == {BASE_FRAME, CAMERA_OPTICAL_FRAME, MICROPHONE_FRAME}
    assert frames <= links
    # the optical frame looks along +z with x right, y down (REP-103 optical convention)
    optical = next(j for j in robot.iter('joint')
                   if j.find('child').get('link') == CAMERA_OPTICAL_FRAME)
    rpy = [float(v) for v in optical.find('origin').get('rpy').split()]
    assert rpy == pytest.approx([-math.pi / 2, 0.0, -math.pi / 2], abs=1e-5)


def test_measured_position_is_the_boards_status_in_radians():
    import struct

    from robot_tracker import protocol as proto
    from robot_tracker.head_model import measured_position
    status = proto.Status.from_payload(struct.pack('<hhhhBBIHHH', 4500, -1500, 4600, -1500, 0x02,
                                                   1, 1234, 0, 0, 0))
    assert measured_position(status) == pytest.approx((math.radians(45.0), math.radians(-15.0)))
    assert measured_position(None) is None
