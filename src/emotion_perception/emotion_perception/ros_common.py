"""The message helpers the four perception nodes share: QoS profiles and stamp conversion.

Parameters, lifecycle, /diagnostics and main() are emotion_runtime.node_kit's (one kit for all
six nodes).
"""
from __future__ import annotations

from typing import Any

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

__all__ = ['sensor_qos', 'reliable_qos', 'stamp_to_seconds', 'seconds_to_stamp']


def sensor_qos(depth: int = 5) -> QoSProfile:
    """Best-effort, volatile, keep-last ``depth``: REP-2003 sensor-data QoS."""
    qos = QoSProfile(**{k: getattr(qos_profile_sensor_data, k) for k in
                        ('reliability', 'durability', 'history')}, depth=depth)
    return qos


def reliable_qos(depth: int = 5) -> QoSProfile:
    return QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                      durability=DurabilityPolicy.VOLATILE, depth=depth)


def stamp_to_seconds(stamp: Any) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(t: float, stamp: Any) -> Any:
    """Write float seconds into a builtin_interfaces/Time (rounding to the nanosecond)."""
    ns = int(round(t * 1e9))
    stamp.sec, stamp.nanosec = ns // 1_000_000_000, ns % 1_000_000_000
    return stamp
