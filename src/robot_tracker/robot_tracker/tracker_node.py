"""tracker_node: thin rclpy adapter around TrackerCore and a Transport.

Subscribes `faces` (emotion_msgs/FaceArray), publishes `pan_tilt/command` (PanTilt),
`tracker/state` (TrackerState) every control step and `/diagnostics` at 1 Hz. All decisions live
in the rclpy-free modules; this file only converts messages, owns timers and reports.
"""
from __future__ import annotations

import sys
from typing import List, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from emotion_msgs.msg import FaceArray, PanTilt, TrackerState
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from .controller import PanTiltController
from .params import PARAMETERS, ParameterError, settings_from
from .search import LostTargetBehaviour
from .target_selection import FaceObs, TargetSelector, face_from_box
from .tracker_core import StepResult, TrackerCore
from .transports import LinkState, LinkStatus, Transport, make_transport


class TrackerNode(Node):
    """See module docstring."""

    def __init__(self) -> None:
        super().__init__('tracker_node')
        for name, default, description in PARAMETERS:
            self.declare_parameter(name, default, ParameterDescriptor(description=description))
        values = {name: self.get_parameter(name).value for name, _, _ in PARAMETERS}
        self.settings = settings_from(values)  # ParameterError -> main() reports and exits
        s = self.settings
        self.core = TrackerCore(
            TargetSelector(s.policy, s.locked_id, s.hysteresis, s.min_confidence),
            PanTiltController(s.controller), LostTargetBehaviour(s.search), s.target_timeout)
        self.transport: Transport = make_transport(s.transport, s.serial, self._log)
        self._last_stamp = None
        self._bad_faces = 0
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(FaceArray, 'faces', self._on_faces, qos)
        self.cmd_pub = self.create_publisher(PanTilt, 'pan_tilt/command', 10)
        self.state_pub = self.create_publisher(TrackerState, 'tracker/state', 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(1.0 / s.control_rate, self._on_timer)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f'tracking with transport={s.transport}'
            + (f' port={s.serial.port}' if s.transport == 'serial' else '')
            + f', {s.control_rate:.0f} Hz loop, policy={s.policy}')

    def _log(self, level: str, msg: str) -> None:
        # One call site per severity: rclpy refuses a severity change at the same call site.
        log = self.get_logger()
        if level == 'error':
            log.error(msg)
        elif level == 'warn':
            log.warning(msg)
        else:
            log.info(msg)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_faces(self, msg: FaceArray) -> None:
        faces: List[FaceObs] = []
        for f in msg.faces:
            obs = face_from_box(f.id, f.x, f.y, f.width, f.height, f.image_width, f.image_height,
                                f.confidence)
            if obs is None:
                self._bad_faces += 1
                if self._bad_faces in (1, 10, 100) or self._bad_faces % 1000 == 0:
                    self.get_logger().warning(
                        f'ignoring unusable face box (id={f.id!r}, {f.width}x{f.height} px in '
                        f'{f.image_width}x{f.image_height}); {self._bad_faces} so far')
                continue
            faces.append(obs)
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self._last_stamp = msg.header.stamp
        self.core.on_faces(faces, stamp, self._now())
        self._control_step()  # react now instead of waiting for the timer: lowest latency

    def _on_timer(self) -> None:
        self._control_step()

    def _control_step(self) -> None:
        link = self.transport.status()
        result = self.core.step(self._now(), link_fault=link.state == LinkState.DOWN)
        max_vel = self.settings.controller.max_velocity
        self.transport.send(result.pan, result.tilt, max_vel)
        self._publish(result, link, max_vel)

    def _publish(self, r: StepResult, link: LinkStatus, max_vel: float) -> None:
        cmd = PanTilt()
        cmd.header.stamp = self.get_clock().now().to_msg()
        cmd.header.frame_id = self.settings.frame_id
        cmd.pan, cmd.tilt, cmd.max_velocity = float(r.pan), float(r.tilt), float(max_vel)
        self.cmd_pub.publish(cmd)
        st = TrackerState()
        st.header.stamp = self._last_stamp if (r.target_id or r.mode == 1) and self._last_stamp \
            else cmd.header.stamp
        st.header.frame_id = self.settings.frame_id
        st.target_id = r.target_id
        st.mode = int(r.mode)
        st.error_x, st.error_y = float(r.error_x), float(r.error_y)
        st.command = cmd
        st.link = int(link.state)
        st.link_detail = link.detail
        self.state_pub.publish(st)

    def _publish_diagnostics(self) -> None:
        link = self.transport.status()
        ds = DiagnosticStatus()
        ds.name = 'robot_tracker: actuator link'
        ds.hardware_id = self.settings.serial.port if self.settings.transport == 'serial' else \
            self.settings.transport
        ds.level = DiagnosticStatus.ERROR if link.state == LinkState.DOWN else DiagnosticStatus.OK
        ds.message = f'link {link.state.name}: {link.detail}'
        pairs = [('transport', self.settings.transport), ('link', link.state.name),
                 ('commands_sent', link.commands_sent), ('acks', link.acks), ('nacks', link.nacks),
                 ('timeouts', link.timeouts), ('reconnects', link.reconnects),
                 ('rx_crc_errors', link.rx_crc_errors)]
        if link.board is not None:
            b = link.board
            pairs += [('board_uptime_ms', b.uptime_ms), ('board_flags', str(b.flags)),
                      ('board_crc_errors', b.crc_errors), ('board_frame_errors', b.frame_errors)]
        ds.values = [KeyValue(key=k, value=str(v)) for k, v in pairs]
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [ds]
        self.diag_pub.publish(arr)

    def destroy_node(self) -> None:
        self.transport.close()
        super().destroy_node()


def main(args: Optional[List[str]] = None) -> int:
    """Entry point: spins until Ctrl-C / shutdown, then closes the link cleanly."""
    rclpy.init(args=args)
    node = None
    try:
        node = TrackerNode()
        rclpy.spin(node)
    except ParameterError as exc:
        rclpy.logging.get_logger('tracker_node').fatal(str(exc))
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
