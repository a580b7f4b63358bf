"""Hardware-in-the-loop tests in simulation: the real firmware .elf on libsimavr, driven over a pty.

Each test gets a freshly booted board (fixture `board` in conftest.py)."""
from __future__ import annotations

import time

import pytest
from conftest import expected_us, proto

TOL_US = 10.0


def _near(snap, pan_us: float, tilt_us: float) -> bool:
    return abs(snap[0] - pan_us) <= TOL_US and abs(snap[1] - tilt_us) <= TOL_US


def test_boot_pose_and_ping(board):
    rsp = board.command(proto.MsgType.PING)
    assert rsp is not None and rsp.type == proto.MsgType.ACK and rsp.payload == bytes([proto.MsgType.PING])
    snap = board.wait_pulses(lambda s: _near(s, 1500, 1500))
    assert _near(snap, 1500, 1500), snap


@pytest.mark.parametrize('pan,tilt', [(4500, -4500), (9000, -9000), (-3000, 2000), (123, -77)])
def test_commanded_angles_give_pulse_widths(board, pan, tilt):
    rsp = board.command(proto.MsgType.SET_TARGET, proto.set_target_payload(pan, tilt))
    assert rsp is not None and rsp.type == proto.MsgType.ACK
    want = (expected_us(pan), expected_us(tilt))
    snap = board.wait_pulses(lambda s: _near(s, *want))
    assert _near(snap, *want), f'pulses {snap}, want {want}'
    st = board.status()
    assert (st.pan_cdeg, st.tilt_cdeg) == (pan, tilt)
    assert not st.flags & proto.StatusFlags.MOVING


def test_slew_rate_limits_the_move(board):
    rsp = board.command(proto.MsgType.SET_SPEED, proto.set_speed_payload(9000, 1000))
    assert rsp.type == proto.MsgType.ACK
    board.command(proto.MsgType.SET_TARGET, proto.set_target_payload(9000, 0))
    time.sleep(0.5)  # at 90 deg/s the 90 deg move takes 1 s: about half-way now
    st = board.status()
    assert st.flags & proto.StatusFlags.MOVING
    assert 500 < st.pan_cdeg < 8000, st  # wide: the simulator may lag wall time on a busy machine
    snap = board.wait_pulses(lambda s: _near(s, 2500, 1500))
    assert _near(snap, 2500, 1500), snap


def test_bad_crc_gives_nack_and_is_counted(board):
    assert board.status().crc_errors == 0
    bad = bytearray(proto.encode(proto.MsgType.SET_TARGET, 99, proto.set_target_payload(4500, 0)))
    bad[-1] ^= 0xFF
    board.send_raw(bytes(bad))
    reply = board.read_reply(99)
    assert isinstance(reply, proto.Frame) and reply.type == proto.MsgType.NACK
    assert reply.payload[1] == proto.ErrorCode.CRC
    st = board.status()
    assert st.crc_errors == 1
    assert st.pan_target_cdeg == 0  # the corrupted command was not executed


def test_garbage_is_skipped(board):
    board.send_raw(bytes(range(256)) + b'\xa5\xff\x00garbage')
    time.sleep(0.1)
    board.decoder.reset()
    board.port.reset_input_buffer()
    rsp = board.command(proto.MsgType.PING)
    assert rsp is not None and rsp.type == proto.MsgType.ACK
    assert board.status().frame_errors >= 1


def test_out_of_range_targets_are_clamped_or_refused(board):
    rsp = board.command(proto.MsgType.SET_LIMITS, proto.set_limits_payload(-4000, 4000, -2000, 3000))
    assert rsp.type == proto.MsgType.ACK
    # inside the servo travel but outside the configured limits: clamped, ACKed, flagged
    rsp = board.command(proto.MsgType.SET_TARGET, proto.set_target_payload(6000, -2500))
    assert rsp.type == proto.MsgType.ACK
    st = board.status()
    assert (st.pan_target_cdeg, st.tilt_target_cdeg) == (4000, -2000)
    assert st.flags & proto.StatusFlags.CLAMPED
    want = (expected_us(4000), expected_us(-2000))
    snap = board.wait_pulses(lambda s: _near(s, *want))
    assert _near(snap, *want), snap
    # beyond the servo travel: refused with RANGE, nothing moves
    rsp = board.command(proto.MsgType.SET_TARGET, proto.set_target_payload(9500, 0))
    assert rsp.type == proto.MsgType.NACK and rsp.payload[1] == proto.ErrorCode.RANGE
    assert board.status().pan_target_cdeg == 4000
    # inconsistent limits: refused
    rsp = board.command(proto.MsgType.SET_LIMITS, proto.set_limits_payload(100, 100, -1, 1))
    assert rsp.type == proto.MsgType.NACK and rsp.payload[1] == proto.ErrorCode.BAD_ARG


def test_host_silence_gives_failsafe_pose(board):
    rsp = board.command(proto.MsgType.SET_SPEED, proto.set_speed_payload(30000, 300))
    assert rsp.type == proto.MsgType.ACK
    board.command(proto.MsgType.SET_TARGET, proto.set_target_payload(4500, 3000))
    snap = board.wait_pulses(lambda s: _near(s, expected_us(4500), expected_us(3000)))
    assert _near(snap, expected_us(4500), expected_us(3000)), snap
    # host goes silent: the board returns to the safe pose by itself
    snap = board.wait_pulses(lambda s: _near(s, 1500, 1500), timeout=3.0, keepalive=False)
    assert _near(snap, 1500, 1500), snap
    st = board.status()
    assert st.flags & proto.StatusFlags.FAILSAFE
    assert (st.pan_target_cdeg, st.tilt_target_cdeg) == (0, 0)


def test_hang_is_ended_by_the_watchdog(board):
    board.command(proto.MsgType.SET_TARGET, proto.set_target_payload(4500, 0))
    assert board.wait_pulses(lambda s: _near(s, expected_us(4500), 1500))
    before = board.status()
    assert not before.flags & proto.StatusFlags.WDT_RESET
    rsp = board.command(proto.MsgType.DEBUG_HANG)
    assert rsp is not None and rsp.type == proto.MsgType.ACK
    # hung: no answers for a while
    assert board.command(proto.MsgType.PING, timeout=0.2) is None
    # the 500 ms watchdog resets the MCU; it answers again, reports the cause, rests at the safe pose
    deadline = time.monotonic() + 5.0
    rsp = None
    while rsp is None and time.monotonic() < deadline:
        rsp = board.command(proto.MsgType.PING, timeout=0.2)
    assert rsp is not None and rsp.type == proto.MsgType.ACK
    st = board.status()
    assert st.flags & proto.StatusFlags.WDT_RESET
    assert st.reset_cause & 0x08
    assert st.uptime_ms < before.uptime_ms + 5000
    snap = board.wait_pulses(lambda s: _near(s, 1500, 1500))
    assert _near(snap, 1500, 1500), snap
