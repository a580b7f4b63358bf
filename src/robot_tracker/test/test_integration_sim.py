"""End to end over real DDS and the simulated board:

FaceArray (test process) -> tracker_node (own process) -> pty -> real firmware .elf in libsimavr
-> servo pulse widths measured on the simulated pins -> a camera model closes the loop.

Checks: a face moving right turns the pan the right way (pulse < 1500 us) and settles in the
deadband; killing the simulator makes the node report the link DOWN and keep running;
restarting it restores the link and tracking. Skips only when the simulator cannot be built.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from robot_tracker.sim_model import CameraModel

FW = Path(__file__).resolve().parents[3] / 'firmware'
HARNESS = FW / 'build' / 'simharness'
ELF = FW / 'build' / 'pantilt.elf'
US_PER_RAD = 1000.0 / (math.pi / 2)  # 1000 us per 90 deg


def _build_sim() -> None:
    if not FW.exists():
        pytest.skip(f'firmware sources not found at {FW}')
    res = subprocess.run(['make', '-C', str(FW), 'all'], capture_output=True, text=True)
    if not HARNESS.exists() or not ELF.exists():
        pytest.skip('simulated board cannot be built (needs avr-gcc, libsimavr-dev, libelf-dev): '
                    + (res.stdout + res.stderr)[-400:])


class SimBoard:
    """The simulator process; tracks the latest pan/tilt pulse widths it reports."""

    def __init__(self, link: Path) -> None:
        self.pulses = {0: 1500.0, 1: 1500.0}
        self.proc = subprocess.Popen([str(HARNESS), '--link', str(link), str(ELF)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while not link.is_symlink() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert link.is_symlink(), 'simulator did not create its pty link'
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            p = line.split()
            if len(p) == 4 and p[0] == 'PULSE':
                self.pulses[int(p[1])] = float(p[2])

    def pan_rad(self) -> float:
        return (self.pulses[0] - 1500.0) / US_PER_RAD

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


class Camera(threading.Thread):
    """Publishes FaceArray at 30 Hz for a face at world bearing `bearing` seen by the sim head."""

    def __init__(self, harness, pub, board_ref) -> None:
        super().__init__(daemon=True)
        from emotion_msgs.msg import Face, FaceArray
        self.Face, self.FaceArray = Face, FaceArray
        self.harness, self.pub, self.board_ref = harness, pub, board_ref
        self.model = CameraModel(hfov=math.radians(60.0))
        self.bearing = 0.0
        self.stop = False

    def run(self) -> None:
        while not self.stop:
            ex = self.model.error_x(self.bearing, self.board_ref[0].pan_rad())
            msg = self.FaceArray()
            msg.header.stamp = self.harness.node.get_clock().now().to_msg()
            msg.header.frame_id = 'camera'
            if abs(ex) < 1.0:
                x, y, w, h = self.model.box(ex)
                msg.faces = [self.Face(id='f1', x=float(x), y=float(y), width=float(w),
                                       height=float(h), image_width=640, image_height=480,
                                       confidence=0.95, age=10)]
            self.pub.publish(msg)
            time.sleep(1.0 / 30.0)


def test_tracking_link_loss_and_recovery(tmp_path):
    _build_sim()
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from emotion_msgs.msg import FaceArray, TrackerState
    from emotion_test_tools import dds  # the workspace's shared DDS test harness

    link = tmp_path / 'ttySIM'
    board = [SimBoard(link)]
    with dds.isolated_domain() as domain_id:
        node = dds.NodeProcess('robot_tracker', 'tracker_node', env=dds.ros_env(domain_id), params={
            'port': str(link), 'reconnect_interval': 0.3, 'boot_timeout': 2.0,
            'keepalive_interval': 0.2, 'control_rate': 50.0})
        harness = dds.RosHarness('tracker_it')
        camera = None
        try:
            states = harness.collect(TrackerState, 'tracker/state')
            diags = harness.collect(DiagnosticArray, '/diagnostics')
            pub = harness.publisher(FaceArray, 'faces',
                                    QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
            assert harness.wait_for_subscribers(pub, 1, 20.0), node.output()
            assert harness.wait_for(lambda: states and states[-1].link == TrackerState.LINK_UP, 20.0), \
                (states[-1].link_detail if states else 'no TrackerState') + node.output()

            # --- a face at the centre, then moving 15 deg to the right -----------------------
            camera = Camera(harness, pub, board)
            camera.start()
            time.sleep(0.5)
            goal = math.radians(-15.0)
            for i in range(1, 31):
                camera.bearing = goal * i / 30
                time.sleep(1.0 / 30)
            want_us = 1500.0 + goal * US_PER_RAD  # ~1333 us: pan to the right = shorter pulse
            assert harness.wait_for(lambda: abs(board[0].pulses[0] - want_us) < 25.0, 5.0), \
                f'pan pulse {board[0].pulses[0]:.1f} us, want ~{want_us:.0f}\n' + node.output()
            time.sleep(1.0)
            recent = states[-20:]
            assert all(s.mode == TrackerState.MODE_TRACKING and s.target_id == 'f1' for s in recent)
            assert max(abs(s.error_x) for s in recent) <= 0.04 + 0.02, [s.error_x for s in recent]
            assert abs(board[0].pulses[0] - want_us) < 25.0

            # --- the board goes away: link DOWN reported, node keeps running -----------------
            board[0].kill()
            assert harness.wait_for(lambda: states[-1].link == TrackerState.LINK_DOWN, 5.0), \
                states[-1].link_detail
            assert states[-1].mode == TrackerState.MODE_FAULT
            assert harness.wait_for(
                lambda: any(d.status and d.status[0].level == DiagnosticStatus.ERROR for d in diags[-3:]),
                4.0), [d.status[0].message for d in diags[-3:] if d.status]
            n = len(states)
            time.sleep(1.0)
            assert node.alive() and len(states) > n + 20, 'node stopped publishing while the link is down'

            # --- the board comes back: link UP, tracking resumes -----------------------------
            board[0] = SimBoard(link)
            assert harness.wait_for(lambda: states[-1].link == TrackerState.LINK_UP, 10.0), \
                states[-1].link_detail + node.output()
            assert harness.wait_for(lambda: abs(board[0].pulses[0] - want_us) < 25.0, 5.0), \
                f'after reconnect pan pulse {board[0].pulses[0]:.1f} us, want ~{want_us:.0f}'
            assert harness.wait_for(lambda: states[-1].mode == TrackerState.MODE_TRACKING, 3.0)
            assert 'Traceback' not in node.output(), node.output()
        finally:
            if camera is not None:
                camera.stop = True
                camera.join(2)
            harness.close()
            code = node.close()
            board[0].kill()
        assert code == 0, f'tracker_node exited with {code} on SIGINT\n' + node.output()
