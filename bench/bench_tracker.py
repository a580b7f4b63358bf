#!/usr/bin/env python3
"""Benchmark of the tracker pipeline without DDS. Prints figures; asserts nothing.

  1. latency: FaceArray in -> SET_TARGET bytes written to the serial port (p50/p95), through the
     same code as tracker_node's faces callback (face_from_box -> TrackerCore -> SerialTransport),
     against the simulated firmware (firmware/build/simharness, if built) or a Python fake board;
  2. control loop: rate achieved by a 50 Hz loop of TrackerCore.step + send, and the cost of a step;
  3. step response on the plant models (camera 30 fps + 33 ms latency, servo 300 deg/s + 30 ms lag):
     a 20 deg step, settling time (to within 1 deg for good) and overshoot.

Run: python bench/bench_tracker.py [--board sim|fake] [--samples N]
"""
from __future__ import annotations

import argparse
import math
import os
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'src' / 'robot_tracker'))

from robot_tracker import protocol as proto  # noqa: E402
from robot_tracker.controller import ControllerConfig, PanTiltController  # noqa: E402
from robot_tracker.search import LostTargetBehaviour, SearchConfig  # noqa: E402
from robot_tracker.sim_model import CameraModel, ServoModel  # noqa: E402
from robot_tracker.target_selection import TargetSelector, face_from_box  # noqa: E402
from robot_tracker.tracker_core import TrackerCore  # noqa: E402
from robot_tracker.transports import LinkState, NoneTransport, SerialConfig, SerialTransport  # noqa: E402


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100.0 * (len(s) - 1))))]


class FakeBoard(threading.Thread):
    """ACKs every frame on a pty, like the firmware does."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.stop = False

    def run(self) -> None:
        dec = proto.FrameDecoder()
        while not self.stop:
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            for fr in dec.feed(os.read(self.master, 256)):
                if isinstance(fr, proto.Frame):
                    t = proto.MsgType.STATUS if fr.type == proto.MsgType.GET_STATUS else proto.MsgType.ACK
                    os.write(self.master, proto.encode(t, fr.seq, bytes(20) if t == proto.MsgType.STATUS
                                                       else bytes([fr.type])))


def open_board(kind: str):
    """Returns (port path, closer, description)."""
    harness = ROOT / 'firmware' / 'build' / 'simharness'
    elf = ROOT / 'firmware' / 'build' / 'pantilt.elf'
    if kind == 'sim' and not (harness.exists() and elf.exists()):
        subprocess.run(['make', '-C', str(ROOT / 'firmware'), 'all'], capture_output=True)
    if kind == 'sim' and harness.exists() and elf.exists():
        link = Path(tempfile.mkdtemp()) / 'ttySIM'
        proc = subprocess.Popen([str(harness), '--link', str(link), str(elf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if link.is_symlink():
                break
            time.sleep(0.01)
        return str(link), proc.terminate, 'simulated ATmega328P (libsimavr), 115200 baud'
    board = FakeBoard()
    board.start()
    return board.path, lambda: setattr(board, 'stop', True), 'Python fake board on a pty'


def make_core() -> TrackerCore:
    return TrackerCore(TargetSelector(), PanTiltController(ControllerConfig()),
                       LostTargetBehaviour(SearchConfig()), 0.5)


def bench_latency(kind: str, samples: int):
    port, close, desc = open_board(kind)
    transport = SerialTransport(SerialConfig(port=port, boot_timeout=3.0))
    writes = []
    transport.on_write = (lambda t, msg_type:
                          writes.append(t) if msg_type == proto.MsgType.SET_TARGET else None)
    try:
        end = time.monotonic() + 10
        while transport.status().state != LinkState.UP and time.monotonic() < end:
            time.sleep(0.01)
        if transport.status().state != LinkState.UP:
            return None, desc + ' (link did not come up: ' + transport.status().detail + ')'
        core = make_core()
        lat = []
        for i in range(samples):
            ex = 0.3 * math.sin(i * 0.2)  # the face moves: every frame changes the command
            x = (ex + 1) / 2 * 640 - 40
            n0 = len(writes)
            t0 = time.perf_counter()
            # what tracker_node._on_faces does with one FaceArray:
            faces = [face_from_box('f1', x, 200, 80, 80, 640, 480, 0.9)]
            now = time.monotonic()
            core.on_faces(faces, now, now)
            r = core.step(now)
            transport.send(r.pan, r.tilt, math.radians(180))
            deadline = time.perf_counter() + 0.5
            while len(writes) == n0 and time.perf_counter() < deadline:
                time.sleep(0.0002)
            if len(writes) > n0:
                lat.append((writes[n0] - t0) * 1000.0)
            time.sleep(1.0 / 30.0)  # camera rate
        return lat, desc
    finally:
        transport.close()
        close()


def bench_loop(duration: float = 3.0, rate: float = 50.0):
    """A 50 Hz loop like the node's timer (a sleeping loop here, rclpy's timer in the node)."""
    core, tr = make_core(), NoneTransport()
    period = 1.0 / rate
    costs, ticks = [], 0
    t_start = time.monotonic()
    nxt = t_start
    core.on_faces([face_from_box('f1', 300, 200, 80, 80, 640, 480, 0.9)], t_start, t_start)
    while time.monotonic() - t_start < duration:
        nxt += period
        c0 = time.perf_counter()
        r = core.step(time.monotonic())
        tr.send(r.pan, r.tilt)
        costs.append((time.perf_counter() - c0) * 1000.0)
        ticks += 1
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return ticks / (time.monotonic() - t_start), costs


def bench_step(step_deg: float = 20.0, rate: float = 50.0, duration: float = 2.0):
    cfg = ControllerConfig()
    core = make_core()
    servo, cam = ServoModel(), CameraModel(hfov=cfg.hfov)
    bearing = math.radians(-step_deg)
    dt = 1.0 / rate
    t, next_frame, frames, samples = 0.0, 0.0, [], []
    while t < duration:
        if t >= next_frame - 1e-9:
            frames.append((t, cam.error_x(bearing, servo.angle)))
            next_frame += 1.0 / 30.0
        while frames and frames[0][0] + cam.latency <= t + 1e-9:
            ts, ex = frames.pop(0)
            x, y, w, h = cam.box(ex)
            core.on_faces([face_from_box('f1', x, y, w, h, cam.width, cam.height, 0.9)], ts, t)
        r = core.step(t)
        # the servo follows at a finer time step than the loop
        for _ in range(10):
            servo.step(r.pan, dt / 10)
        samples.append((t, servo.angle))
        t += dt
    band = math.radians(1.0)
    settle = 0.0
    for ts, a in samples:
        if abs(a - bearing) > band:
            settle = ts + dt
    peak = min(a for _, a in samples)
    overshoot = max(0.0, (bearing - peak) / bearing * -1.0) if bearing < 0 else 0.0
    overshoot = max(0.0, (abs(peak) - abs(bearing)) / abs(bearing)) * 100.0
    return settle, overshoot, math.degrees(samples[-1][1] - bearing)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--board', choices=['sim', 'fake'], default='sim')
    ap.add_argument('--samples', type=int, default=300)
    args = ap.parse_args()

    lat, desc = bench_latency(args.board, args.samples)
    rate, costs = bench_loop()
    settle, overshoot, final_err = bench_step()

    rows = [('stage', 'figure', 'target', 'measured')]
    if lat:
        rows.append(('FaceArray -> bytes written', 'latency p50', '-', f'{statistics.median(lat):.2f} ms'))
        rows.append(('FaceArray -> bytes written', 'latency p95', '<= 5 ms', f'{pct(lat, 95):.2f} ms'))
        rows.append(('FaceArray -> bytes written', 'latency max', '-', f'{max(lat):.2f} ms'))
    else:
        rows.append(('FaceArray -> bytes written', 'latency p95', '<= 5 ms', 'n/a: ' + desc))
    rows.append(('control loop (50 Hz timer)', 'rate achieved', '>= 30 Hz', f'{rate:.1f} Hz'))
    rows.append(('control loop', 'step cost p95', '-', f'{pct(costs, 95) * 1000:.0f} us'))
    rows.append(('20 deg step (face+servo model)', 'settling to 1 deg', '<= 0.5 s', f'{settle:.2f} s'))
    rows.append(('20 deg step (face+servo model)', 'overshoot', '<= 10 %', f'{overshoot:.1f} %'))
    rows.append(('20 deg step (face+servo model)', 'final error', '-', f'{final_err:+.2f} deg'))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f'robot_tracker bench ({desc}; {len(lat or [])} latency samples)')
    for i, r in enumerate(rows):
        print('  '.join(c.ljust(w) for c, w in zip(r, widths)))
        if i == 0:
            print('  '.join('-' * w for w in widths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
