"""Fixtures for the simulated hardware-in-the-loop tests: the real test firmware image runs in
build/simharness (libsimavr); the tests talk to it over its pty with pyserial, using the host's
own protocol module (src/robot_tracker/robot_tracker/protocol.py), and read the servo pulse
widths the harness measures on the pins."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

FW = Path(__file__).resolve().parents[1]
BUILD = FW / 'build'
sys.path.insert(0, str(FW.parent / 'src' / 'robot_tracker'))

from robot_tracker import protocol as proto  # noqa: E402

serial = pytest.importorskip('serial', reason='pyserial is not installed')


def _ensure_built() -> Optional[str]:
    """Build with make; return a skip reason when the simulator cannot be built."""
    if not (BUILD / 'simharness').exists() or not (BUILD / 'pantilt_test.elf').exists():
        subprocess.run(['make', '-C', str(FW), 'all'], check=False, capture_output=True)
    if not (BUILD / 'pantilt_test.elf').exists():
        return 'firmware test image could not be built (avr-gcc missing?)'
    if not (BUILD / 'simharness').exists():
        return 'simulator harness could not be built (libsimavr-dev / libelf-dev missing)'
    return None


class SimBoard:
    """One simulated board: harness process + pyserial port + pulse-width monitor."""

    def __init__(self, elf: Path) -> None:
        self.proc = subprocess.Popen([str(BUILD / 'simharness'), str(elf)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.pulses: Dict[int, float] = {}
        self.history: List[Tuple[float, int, float]] = []
        self._lock = threading.Lock()
        path = None
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith('PTY '):
                path = line.split()[1]
                break
        assert path, 'harness did not print its pty'
        self.path = path
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self.port = serial.Serial(path, 115200, timeout=0.05)
        self.decoder = proto.FrameDecoder()
        self.seq = 0

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if len(parts) == 4 and parts[0] == 'PULSE':
                with self._lock:
                    self.pulses[int(parts[1])] = float(parts[2])
                    self.history.append((time.monotonic(), int(parts[1]), float(parts[2])))

    def close(self) -> None:
        try:
            self.port.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def send_raw(self, data: bytes) -> None:
        self.port.write(data)

    def read_reply(self, seq: int, timeout: float = 1.0) -> Optional[object]:
        """Next frame (or DecodeError) with this seq, None on timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for item in self.decoder.feed(self.port.read(64)):
                if getattr(item, 'seq', None) == seq:
                    return item
        return None

    def command(self, msg_type: int, payload: bytes = b'', timeout: float = 1.0) -> Optional[proto.Frame]:
        self.seq = (self.seq + 1) & 0xFF
        self.send_raw(proto.encode(msg_type, self.seq, payload))
        reply = self.read_reply(self.seq, timeout)
        assert reply is None or isinstance(reply, proto.Frame), reply
        return reply

    def status(self) -> proto.Status:
        rsp = self.command(proto.MsgType.GET_STATUS)
        assert rsp is not None and rsp.type == proto.MsgType.STATUS, rsp
        return proto.Status.from_payload(rsp.payload)

    def wait_pulses(self, pred: Callable[[Dict[int, float]], bool], timeout: float = 3.0,
                    keepalive: bool = True) -> Dict[int, float]:
        """Wait until pred(latest widths) holds; pings meanwhile so the failsafe stays quiet."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                snap = dict(self.pulses)
            if len(snap) == 2 and pred(snap):
                return snap
            if keepalive:
                self.command(proto.MsgType.PING, timeout=0.2)
            else:
                time.sleep(0.02)
        with self._lock:
            return dict(self.pulses)


@pytest.fixture
def board():
    reason = _ensure_built()
    if reason:
        pytest.skip(reason)
    b = SimBoard(BUILD / 'pantilt_test.elf')
    try:
        yield b
    finally:
        b.close()


def expected_us(cdeg: int) -> float:
    """Pulse width the firmware must produce for an angle: 1500 us +- 1000 us over +-90 deg."""
    return 1500.0 + cdeg / 9.0
