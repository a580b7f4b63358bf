"""The head as a robot, without rclpy: joint names and frames of launch/urdf/pan_tilt_head.urdf,
and the joint positions tracker_node publishes on ``joint_states``.

The URDF's joints are ``pan_joint`` (about +z of ``pan_tilt_base``, + = left) and ``tilt_joint``
(about +y, + = down), the same signs as emotion_msgs/PanTilt (REP-103), so a PanTilt command is
the joint position unchanged.  The board's STATUS reports "position now" in centidegrees: that is
the ``measured`` position (the position of the slew-limited servo pulse; hobby servos have no
encoder).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

from . import protocol as proto

__all__ = ['PAN_JOINT', 'TILT_JOINT', 'JOINT_NAMES', 'BASE_FRAME', 'CAMERA_OPTICAL_FRAME',
           'MICROPHONE_FRAME', 'HRI_IMAGE_SCALE', 'measured_position', 'urdf_source_path']

PAN_JOINT = 'pan_joint'
TILT_JOINT = 'tilt_joint'
JOINT_NAMES = (PAN_JOINT, TILT_JOINT)
BASE_FRAME = 'pan_tilt_base'               # frame_id of PanTilt / TrackerState
CAMERA_OPTICAL_FRAME = 'camera_optical_frame'
MICROPHONE_FRAME = 'microphone_link'

# A REP-155 ROI is normalised to [0, 1]; the tracker's face boxes are in pixels of an image, so a
# ROI is read as a box in an image of this many "pixels" (the normalised error is the same).
HRI_IMAGE_SCALE = 10000


def measured_position(board: Optional[proto.Status]) -> Optional[Tuple[float, float]]:
    """(pan, tilt) in radians from the board's STATUS, None when the board reported none."""
    if board is None:
        return None
    return proto.cdeg_to_rad(board.pan_cdeg), proto.cdeg_to_rad(board.tilt_cdeg)


def urdf_source_path() -> Path:
    """launch/urdf/pan_tilt_head.urdf in the source tree (tests; launch uses the installed one)."""
    return Path(__file__).resolve().parents[3] / 'launch' / 'urdf' / 'pan_tilt_head.urdf'
