"""tracker_node: thin rclpy adapter around TrackerCore and a Transport.

Subscribes `faces` (emotion_msgs/FaceArray; or /humans/faces/tracked + roi with face_source
hri), publishes `pan_tilt/command` (PanTilt), `tracker/state` (TrackerState) and `joint_states`
(sensor_msgs/JointState, pan_joint/tilt_joint of launch/urdf/pan_tilt_head.urdf) every control
step, `joint_states/measured` at each board STATUS, and `/diagnostics` at 1 Hz. All decisions live
in the rclpy-free modules; this file only converts messages, owns timers and reports.
"""
from __future__ import annotations

from typing import List, Optional

from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import JointState

from emotion_msgs.msg import FaceArray, PanTilt, TrackerState
from emotion_runtime.face_boxes import BOX_REJECT_REASONS
from emotion_runtime.node_kit import KitNode, run_node
from emotion_runtime.rep155 import HriFaceInput
from emotion_runtime.stats import ERROR, OK, StatusReport
from hri_msgs.msg import IdsList, NormalizedRegionOfInterest2D

from .controller import PanTiltController
from .head_model import HRI_IMAGE_SCALE, JOINT_NAMES, measured_position
from .params import PARAMS, settings_from
from .search import LostTargetBehaviour
from .target_selection import FaceObs, TargetSelector, face_box_reason, face_from_box
from .tracker_core import StepResult, TrackerCore
from .transports import LinkState, LinkStatus, Transport, make_transport


class TrackerNode(KitNode):
    """See module docstring.

    Lifecycle: configure builds the tracker core from the validated settings and creates the
    lifecycle publishers; activate opens the actuator link (serial port) and starts the control
    loop; deactivate stops it and closes the link.  Live: gains, deadband, velocity/acceleration
    limits, min_confidence, switch_hysteresis.
    """

    def __init__(self, **node_kwargs) -> None:
        super().__init__('tracker_node', PARAMS, self._hardware_id, **node_kwargs)
        self.settings = settings_from(self.p)
        self.core: Optional[TrackerCore] = None
        self.transport: Optional[Transport] = None
        self._last_stamp = None
        self._bad_faces = 0
        self._rejected = dict.fromkeys(BOX_REJECT_REASONS, 0)
        self._hri_faces: Optional[HriFaceInput] = None
        self._board_seen = None                   # the last board STATUS published as measured

    @staticmethod
    def _hardware_id(p: dict) -> str:
        return p['port'] if p['transport'] == 'serial' else p['transport']

    def check_parameters(self, values: dict) -> None:
        settings_from(values)            # ParameterError names the culprit

    def configure(self) -> None:
        s = self.settings = settings_from(self.p)
        self.core = TrackerCore(
            TargetSelector(s.policy, s.locked_id, s.hysteresis, s.min_confidence),
            PanTiltController(s.controller), LostTargetBehaviour(s.search), s.target_timeout)
        self.cmd_pub = self.lifecycle_publisher(PanTilt, 'pan_tilt/command', 10)
        self.state_pub = self.lifecycle_publisher(TrackerState, 'tracker/state', 10)
        # The head's joints for robot_state_publisher (launch/urdf/pan_tilt_head.urdf).
        self.joint_pub = self.measured_pub = None
        if self.p['joint_states']:
            self.joint_pub = self.lifecycle_publisher(JointState, 'joint_states', 10)
            self.measured_pub = self.lifecycle_publisher(JointState, 'joint_states/measured', 10)

    def activate(self) -> None:
        s = self.settings
        self.transport = make_transport(s.transport, s.serial, self._log)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        if self.p['face_source'] == 'hri':     # a ROS4HRI detector: /humans/faces/tracked + roi
            self._hri_faces = HriFaceInput(
                self.p['hri_prefix'],
                lambda topic, cb: self.create_subscription(NormalizedRegionOfInterest2D, topic,
                                                           cb, qos),
                self.destroy_subscription, self._on_hri_faces)
            self.active_subscription(IdsList, self._hri_faces.tracked_topic, self._on_hri_tracked,
                                     qos)
        else:
            self.active_subscription(FaceArray, 'faces', self._on_faces, qos)
        self.active_timer(1.0 / s.control_rate, self._on_timer)
        self.get_logger().info(
            f'tracking with transport={s.transport}'
            + (f' port={s.serial.port}' if s.transport == 'serial' else '')
            + f', {s.control_rate:.0f} Hz loop, policy={s.policy}')

    def deactivate(self) -> None:
        if self._hri_faces is not None:
            self._hri_faces.close()
            self._hri_faces = None
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.close()

    def cleanup(self) -> None:
        self.core = None

    def on_parameters(self, changed: dict) -> None:
        """Gains, deadband, limits, confidence and hysteresis: the next control step uses them."""
        s = self.settings = settings_from({**self.p, **changed})
        if self.core is not None:
            self.core.controller.cfg = s.controller
            self.core.selector.hysteresis = s.hysteresis
            self.core.selector.min_confidence = s.min_confidence

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
            reason = face_box_reason(f.x, f.y, f.width, f.height, f.image_width,
                                     f.image_height, f.confidence)
            obs = None if reason else face_from_box(f.id, f.x, f.y, f.width, f.height,
                                                    f.image_width, f.image_height, f.confidence)
            if obs is None:
                self._bad_faces += 1
                reason = reason or 'unusable'
                self._rejected[reason] = self._rejected.get(reason, 0) + 1
                if self._bad_faces in (1, 10, 100) or self._bad_faces % 1000 == 0:
                    self.get_logger().warning(
                        f'ignoring unusable face box ({reason}: id={f.id!r}, at {f.x},{f.y} '
                        f'{f.width}x{f.height} px in {f.image_width}x{f.image_height}); '
                        f'{self._bad_faces} so far')
                continue
            faces.append(obs)
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self._last_stamp = msg.header.stamp
        self.core.on_faces(faces, stamp, self._now())
        self._control_step()  # react now instead of waiting for the timer: lowest latency

    def _on_hri_tracked(self, msg: IdsList) -> None:
        s = msg.header.stamp
        self._hri_faces.on_tracked(list(msg.ids), int(s.sec) * 1_000_000_000 + int(s.nanosec))

    def _on_hri_faces(self, faces, stamp_ns: int) -> None:
        """face_source hri: the tracked faces with a ROI, as boxes in a virtual image."""
        k = HRI_IMAGE_SCALE
        obs = [face_from_box(f.id, f.xmin * k, f.ymin * k, f.width * k, f.height * k, k, k,
                             f.confidence) for f in faces]
        self._last_stamp = Time(nanoseconds=stamp_ns).to_msg()
        self.core.on_faces([o for o in obs if o is not None], stamp_ns * 1e-9, self._now())
        self._control_step()

    def _publish_joints(self, cmd: PanTilt, link: LinkStatus) -> None:
        """joint_states: the commanded pose; joint_states/measured: each new board STATUS."""
        if self.joint_pub is None:
            return
        self.joint_pub.publish(JointState(header=cmd.header, name=list(JOINT_NAMES),
                                          position=[float(cmd.pan), float(cmd.tilt)]))
        measured = measured_position(link.board)
        if measured is not None and link.board is not self._board_seen:
            self._board_seen = link.board
            js = JointState(name=list(JOINT_NAMES), position=list(measured))
            js.header.stamp = self.get_clock().now().to_msg()
            js.header.frame_id = cmd.header.frame_id
            self.measured_pub.publish(js)

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
        self._publish_joints(cmd, link)

    def report(self) -> StatusReport:
        r = StatusReport()
        transport = self.transport
        if transport is None:
            return r
        link = transport.status()
        r.raise_level(ERROR if link.state == LinkState.DOWN else OK,
                      f'link {link.state.name}: {link.detail}')
        pairs = [('transport', self.settings.transport), ('link', link.state.name),
                 ('commands_sent', link.commands_sent), ('acks', link.acks), ('nacks', link.nacks),
                 ('timeouts', link.timeouts), ('reconnects', link.reconnects),
                 ('rx_crc_errors', link.rx_crc_errors), ('faces_rejected', self._bad_faces)]
        pairs += [(f'rejected_{k}', v) for k, v in self._rejected.items()]
        if link.board is not None:
            b = link.board
            pairs += [('board_uptime_ms', b.uptime_ms), ('board_flags', str(b.flags)),
                      ('board_crc_errors', b.crc_errors), ('board_frame_errors', b.frame_errors)]
        for k, v in pairs:
            r.values[k] = str(v)
        return r


def main(args: Optional[List[str]] = None) -> int:
    """Entry point (emotion_runtime.node_kit.run_node): spins until Ctrl-C / shutdown, then
    closes the link cleanly."""
    return run_node(TrackerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
