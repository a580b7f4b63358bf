"""The rclpy glue the four nodes share: declared parameters, QoS, /diagnostics, main().

Why one module: each node is a thin adapter; what they do identically (declare-with-description
and validate, sensor-data QoS, a 1 Hz DiagnosticArray, Ctrl-C handling) lives here once.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import (HistoryPolicy, QoSProfile, ReliabilityPolicy, DurabilityPolicy,
                       qos_profile_sensor_data)

from emotion_runtime.stats import StatusReport
from emotion_runtime.params import ParamSpec, ParameterError, validate

__all__ = ['declare_parameters', 'sensor_qos', 'reliable_qos', 'DiagnosticsPublisher',
           'run_node', 'stamp_to_seconds', 'seconds_to_stamp']


def declare_parameters(node: Node, specs: list[ParamSpec]) -> dict[str, Any]:
    """Declare every spec with its description, read the values and validate them.

    ``dynamic_typing`` lets `-p rate:=30` (an int) reach a float parameter; validate() converts
    it and rejects genuinely wrong types with a message naming the parameter.
    """
    values = {}
    for spec in specs:
        desc = ParameterDescriptor(description=spec.description, dynamic_typing=True)
        values[spec.name] = node.declare_parameter(spec.name, spec.default, desc).value
    return validate(specs, values)


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


class DiagnosticsPublisher:
    """Publishes one DiagnosticStatus on /diagnostics every ``period`` seconds."""

    def __init__(self, node: Node, hardware_id: str, report: Callable[[], StatusReport],
                 period: float = 1.0) -> None:
        self._node, self._hw, self._report = node, hardware_id, report
        self._pub = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._timer = node.create_timer(period, self.publish)

    def publish(self) -> None:
        try:
            r = self._report()
        except Exception as exc:  # noqa: BLE001 - diagnostics must never take the node down
            r = StatusReport()
            r.raise_level(2, f'diagnostics failed: {exc}')
        st = DiagnosticStatus(level=bytes([r.level]),
                              name=f'{self._node.get_name()}: {self._hw}',
                              message=r.message, hardware_id=self._hw,
                              values=[KeyValue(key=k, value=v) for k, v in r.values.items()])
        msg = DiagnosticArray(status=[st])
        msg.header.stamp = self._node.get_clock().now().to_msg()
        self._pub.publish(msg)


def run_node(factory: Callable[[], Node], args: Optional[list] = None) -> int:
    """Init, build the node, spin until Ctrl-C; a bad parameter is a clear exit code 2."""
    rclpy.init(args=args)
    node: Optional[Node] = None
    code = 0
    try:
        node = factory()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ParameterError as exc:
        print(f'[FATAL] {exc}', file=sys.stderr, flush=True)
        code = 2
    finally:
        if node is not None:
            close = getattr(node, 'close', None)
            if close:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code
