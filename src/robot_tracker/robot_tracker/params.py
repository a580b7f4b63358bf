"""tracker_node's parameters: one table (name, default, description) used for declaration, for
validation and for the README, and the conversion into the pure modules' configs.

Kept free of rclpy so that validation is unit-tested and errors read the same everywhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from .controller import ControllerConfig
from .search import SearchConfig
from .target_selection import POLICIES
from .transports import SerialConfig

# (name, default, description)
PARAMETERS: List[Tuple[str, Any, str]] = [
    ('transport', 'serial', 'Actuator link: serial (Uno/Nano protocol), microros (board subscribes to '
     'pan_tilt/command), none (publish only).'),
    ('port', '/dev/ttyACM0', 'Serial device of the board (serial transport).'),
    ('baud', 115200, 'Serial baud rate; the firmware uses 115200.'),
    ('ack_timeout', 0.05, 'Seconds to wait for the board\'s ACK before a retry.'),
    ('retries', 2, 'Retries per command before the link is declared down.'),
    ('reconnect_interval', 1.0, 'Seconds between reopen attempts while the link is down.'),
    ('keepalive_interval', 0.2, 'Seconds between PINGs when no command changes (holds off the '
     'board failsafe).'),
    ('boot_timeout', 3.0, 'Seconds to wait for the first answer after opening the port (an Uno '
     'reboots into its bootloader when the port opens).'),
    ('board_speed_deg_s', 300.0, 'Slew limit programmed into the board [deg/s].'),
    ('board_failsafe_ms', 1000, 'Board returns to the safe pose after this much host silence [ms].'),
    ('control_rate', 50.0, 'Control loop rate [Hz] (>= 30).'),
    ('camera_hfov_deg', 60.0, 'Camera horizontal field of view [deg].'),
    ('camera_vfov_deg', 45.0, 'Camera vertical field of view [deg].'),
    ('kp', 10.0, 'Proportional gain [1/s]: commanded angular velocity per rad of bearing error.'),
    ('kd', 0.05, 'Derivative gain [s] on the bearing error.'),
    ('kff', 1.0, 'Feed-forward gain on the target\'s estimated bearing rate.'),
    ('deadband', 0.04, 'Normalised image error (fraction of the half-image) treated as centred.'),
    ('max_velocity_deg_s', 180.0, 'Head velocity limit [deg/s].'),
    ('max_accel_deg_s2', 3000.0, 'Head acceleration limit [deg/s^2].'),
    ('actuator_latency', 0.05, 'Seconds from a command to the head being there (bearing estimate).'),
    ('pan_min_deg', -80.0, 'Pan limit, right [deg] (REP-103: + = left).'),
    ('pan_max_deg', 80.0, 'Pan limit, left [deg].'),
    ('tilt_min_deg', -30.0, 'Tilt limit, up [deg] (REP-103: + = down).'),
    ('tilt_max_deg', 45.0, 'Tilt limit, down [deg].'),
    ('selection_policy', 'largest', 'Target choice: largest, confident, or locked (locked_id only).'),
    ('locked_id', '', 'Face.id to follow with selection_policy locked.'),
    ('switch_hysteresis', 0.3, 'A rival face must score this fraction better to take over.'),
    ('min_confidence', 0.3, 'Faces below this detection confidence are ignored.'),
    ('target_timeout', 0.5, 'Seconds without the target before it counts as lost.'),
    ('hold_time', 1.0, 'Seconds to hold the last pose after losing the target.'),
    ('search_time', 8.0, 'Seconds of search sweep before going home.'),
    ('search_pan_amplitude_deg', 60.0, 'Half-width of the search sweep [deg].'),
    ('search_period', 6.0, 'Seconds per full search sweep.'),
    ('search_tilt_deg', 0.0, 'Tilt held during the search [deg].'),
    ('frame_id', 'pan_tilt_base', 'frame_id of published PanTilt/TrackerState.'),
]

DEFAULTS: Dict[str, Any] = {name: default for name, default, _ in PARAMETERS}


class ParameterError(ValueError):
    """A parameter value that cannot work; the message names the parameter."""


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
    v = values[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ParameterError(f'parameter {name!r} must be a finite number, got {v!r}')
    return float(v)


def settings_from(values: Dict[str, Any]) -> TrackerSettings:
    """Build and validate settings from {name: value}; ParameterError names the culprit."""
    v = dict(DEFAULTS)
    v.update(values)
    rad = math.radians
    transport = str(v['transport'])
    if transport not in ('serial', 'microros', 'none'):
        raise ParameterError(f"parameter 'transport' must be serial, microros or none, got {transport!r}")
    policy = str(v['selection_policy'])
    if policy not in POLICIES:
        raise ParameterError(f"parameter 'selection_policy' must be one of {POLICIES}, got {policy!r}")
    if policy == 'locked' and not v['locked_id']:
        raise ParameterError("selection_policy 'locked' needs a non-empty 'locked_id'")
    rate = _num(v, 'control_rate')
    if rate < 30.0 or rate > 1000.0:
        raise ParameterError(f"parameter 'control_rate' must be in [30, 1000] Hz, got {rate}")
    for name in ('switch_hysteresis', 'min_confidence', 'target_timeout'):
        if _num(v, name) < 0:
            raise ParameterError(f'parameter {name!r} must be >= 0')
    if _num(v, 'target_timeout') == 0:
        raise ParameterError("parameter 'target_timeout' must be > 0")
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
