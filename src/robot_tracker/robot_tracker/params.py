"""tracker_node's parameters: one ParamSpec table (name, default, description, range, choices,
live) used for declaration (emotion_runtime.node_kit), for validation and for the README, and the
conversion into the pure modules' configs (``settings_from``).

Kept free of rclpy so that validation is unit-tested and errors read the same everywhere; errors
are emotion_runtime.params.ParameterError naming the parameter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List

from emotion_runtime.params import ParameterError, ParamSpec, defaults, non_negative, positive, validate

from .controller import ControllerConfig
from .search import SearchConfig
from .target_selection import POLICIES
from .transports import SerialConfig

__all__ = ['PARAMS', 'DEFAULTS', 'LIVE', 'ParameterError', 'TrackerSettings', 'settings_from']

PARAMS: List[ParamSpec] = [
    ParamSpec('transport', 'serial', 'Actuator link: serial (Uno/Nano protocol), microros (board '
              'subscribes to pan_tilt/command), none (publish only).',
              choices=('serial', 'microros', 'none')),
    ParamSpec('port', '/dev/ttyACM0', 'Serial device of the board (serial transport).'),
    ParamSpec('baud', 115200, 'Serial baud rate; the firmware uses 115200.', positive),
    ParamSpec('ack_timeout', 0.05, 'Seconds to wait for the board\'s ACK before a retry.', positive),
    ParamSpec('retries', 2, 'Retries per command before the link is declared down.',
              range=(0, 100)),
    ParamSpec('reconnect_interval', 1.0, 'Seconds between reopen attempts while the link is '
              'down.', positive),
    ParamSpec('keepalive_interval', 0.2, 'Seconds between PINGs when no command changes (holds '
              'off the board failsafe).', positive),
    ParamSpec('boot_timeout', 3.0, 'Seconds to wait for the first answer after opening the port '
              '(an Uno reboots into its bootloader when the port opens).', non_negative),
    ParamSpec('board_speed_deg_s', 300.0, 'Slew limit programmed into the board [deg/s].',
              positive),
    ParamSpec('board_failsafe_ms', 1000, 'Board returns to the safe pose after this much host '
              'silence [ms].', positive),
    ParamSpec('control_rate', 50.0, 'Control loop rate [Hz] (>= 30).', range=(30.0, 1000.0)),
    ParamSpec('camera_hfov_deg', 60.0, 'Camera horizontal field of view [deg].'),
    ParamSpec('camera_vfov_deg', 45.0, 'Camera vertical field of view [deg].'),
    ParamSpec('kp', 10.0, 'Proportional gain [1/s]: commanded angular velocity per rad of bearing '
              'error.', non_negative, live=True),
    ParamSpec('kd', 0.05, 'Derivative gain [s] on the bearing error.', non_negative, live=True),
    ParamSpec('kff', 1.0, 'Feed-forward gain on the target\'s estimated bearing rate.',
              non_negative, live=True),
    ParamSpec('deadband', 0.04, 'Normalised image error (fraction of the half-image) treated as '
              'centred.', range=(0.0, 1.0), live=True),
    ParamSpec('max_velocity_deg_s', 180.0, 'Head velocity limit [deg/s].', positive, live=True),
    ParamSpec('max_accel_deg_s2', 3000.0, 'Head acceleration limit [deg/s^2].', positive,
              live=True),
    ParamSpec('actuator_latency', 0.05, 'Seconds from a command to the head being there (bearing '
              'estimate).', non_negative),
    ParamSpec('pan_min_deg', -80.0, 'Pan limit, right [deg] (REP-103: + = left).'),
    ParamSpec('pan_max_deg', 80.0, 'Pan limit, left [deg].'),
    ParamSpec('tilt_min_deg', -30.0, 'Tilt limit, up [deg] (REP-103: + = down).'),
    ParamSpec('tilt_max_deg', 45.0, 'Tilt limit, down [deg].'),
    ParamSpec('selection_policy', 'largest', 'Target choice: largest, confident, or locked '
              '(locked_id only).', choices=tuple(POLICIES)),
    ParamSpec('locked_id', '', 'Face.id to follow with selection_policy locked.'),
    ParamSpec('switch_hysteresis', 0.3, 'A rival face must score this fraction better to take '
              'over.', non_negative, live=True),
    ParamSpec('min_confidence', 0.3, 'Faces below this detection confidence are ignored.',
              range=(0.0, 1.0), live=True),
    ParamSpec('target_timeout', 0.5, 'Seconds without the target before it counts as lost.',
              positive),
    ParamSpec('hold_time', 1.0, 'Seconds to hold the last pose after losing the target.'),
    ParamSpec('search_time', 8.0, 'Seconds of search sweep before going home.'),
    ParamSpec('search_pan_amplitude_deg', 60.0, 'Half-width of the search sweep [deg].'),
    ParamSpec('search_period', 6.0, 'Seconds per full search sweep.'),
    ParamSpec('search_tilt_deg', 0.0, 'Tilt held during the search [deg].'),
    ParamSpec('frame_id', 'pan_tilt_base', 'frame_id of published PanTilt/TrackerState (the '
              'root link of launch/urdf/pan_tilt_head.urdf).'),
    ParamSpec('face_source', 'faces', 'Where faces come from: faces (face_node\'s FaceArray) or '
              'hri (<hri_prefix>/faces/tracked + /faces/<id>/roi of a ROS4HRI detector).',
              choices=('faces', 'hri')),
    ParamSpec('hri_prefix', '/humans', 'Root of the REP-155 topics read with face_source hri.'),
    ParamSpec('joint_states', True, 'Publish sensor_msgs/JointState on joint_states (pan_joint, '
              'tilt_joint: commanded position) and, where the board reports its position, on '
              'joint_states/measured.'),
]

DEFAULTS: Dict[str, Any] = defaults(PARAMS)
LIVE = frozenset(s.name for s in PARAMS if s.live)


@dataclass
class TrackerSettings:
    """All validated settings."""

    transport: str
    serial: SerialConfig
    controller: ControllerConfig
    search: SearchConfig
    control_rate: float
    policy: str
    locked_id: str
    hysteresis: float
    min_confidence: float
    target_timeout: float
    frame_id: str


def _num(values: Dict[str, Any], name: str) -> float:
    return float(values[name])


def settings_from(values: Dict[str, Any]) -> TrackerSettings:
    """Build and validate settings from {name: value}; ParameterError names the culprit."""
    v = dict(DEFAULTS)
    v.update({k: val for k, val in values.items() if k != 'autostart'})
    validate(PARAMS, v)
    rad = math.radians
    transport, policy, rate = v['transport'], v['selection_policy'], v['control_rate']
    if policy == 'locked' and not v['locked_id']:
        raise ParameterError("selection_policy 'locked' needs a non-empty 'locked_id'")
    ctrl = ControllerConfig(
        hfov=rad(_num(v, 'camera_hfov_deg')), vfov=rad(_num(v, 'camera_vfov_deg')),
        kp=_num(v, 'kp'), kd=_num(v, 'kd'), kff=_num(v, 'kff'), deadband=_num(v, 'deadband'),
        max_velocity=rad(_num(v, 'max_velocity_deg_s')), max_accel=rad(_num(v, 'max_accel_deg_s2')),
        pan_min=rad(_num(v, 'pan_min_deg')), pan_max=rad(_num(v, 'pan_max_deg')),
        tilt_min=rad(_num(v, 'tilt_min_deg')), tilt_max=rad(_num(v, 'tilt_max_deg')),
        actuator_latency=_num(v, 'actuator_latency'))
    search = SearchConfig(
        hold_time=_num(v, 'hold_time'), search_time=_num(v, 'search_time'),
        pan_amplitude=rad(_num(v, 'search_pan_amplitude_deg')), period=_num(v, 'search_period'),
        tilt=rad(_num(v, 'search_tilt_deg')))
    serial = SerialConfig(
        port=str(v['port']), baud=int(_num(v, 'baud')), ack_timeout=_num(v, 'ack_timeout'),
        retries=int(_num(v, 'retries')), reconnect_interval=_num(v, 'reconnect_interval'),
        keepalive_interval=_num(v, 'keepalive_interval'), boot_timeout=_num(v, 'boot_timeout'),
        pan_limits=(ctrl.pan_min, ctrl.pan_max), tilt_limits=(ctrl.tilt_min, ctrl.tilt_max),
        board_speed=rad(_num(v, 'board_speed_deg_s')), failsafe_ms=int(_num(v, 'board_failsafe_ms')))
    try:
        ctrl.validate()
        search.validate()
        if transport == 'serial':
            serial.validate()
    except ValueError as exc:
        raise ParameterError(f'invalid parameters: {exc}') from None
    return TrackerSettings(transport, serial, ctrl, search, rate, policy, str(v['locked_id']),
                           _num(v, 'switch_hysteresis'), _num(v, 'min_confidence'),
                           _num(v, 'target_timeout'), str(v['frame_id']))
