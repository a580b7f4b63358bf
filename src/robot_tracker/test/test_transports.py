"""SerialTransport against a fake board on a pty: acks, unplug -> DOWN, replug -> UP, garbage."""
import time

import pytest

pytest.importorskip('serial')

from fake_board import FakeBoard  # noqa: E402

from robot_tracker import protocol as proto  # noqa: E402
from robot_tracker.transports import LinkState, SerialConfig, SerialTransport, make_transport  # noqa: E402


def wait_for(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return False


def cfg(port):
    return SerialConfig(port=str(port), ack_timeout=0.05, retries=1, reconnect_interval=0.1,
                        keepalive_interval=0.1, boot_timeout=0.3)


def test_up_ack_unplug_replug(tmp_path):
    link = tmp_path / 'ttyBOARD'
    board = FakeBoard(link)
    logs = []
    t = SerialTransport(cfg(link), logger=lambda lvl, msg: logs.append((lvl, msg)))
    try:
        assert wait_for(lambda: t.status().state == LinkState.UP), t.status()
        kinds = [f.type for f in board.received]
        assert proto.MsgType.SET_SPEED in kinds and proto.MsgType.SET_LIMITS in kinds
        t.send(-0.1, 0.05)
        assert wait_for(lambda: board.targets)
        assert board.targets[-1] == proto.set_target_payload(proto.rad_to_cdeg(-0.1), proto.rad_to_cdeg(0.05))
        board.unplug()
        assert wait_for(lambda: t.status().state == LinkState.DOWN), t.status()
        assert str(link) in t.status().detail
        t.send(0.2, 0.0)  # must not raise while down
        t.send(float('nan'), 0.0)  # bad upstream value: logged, not sent, no crash
        assert any(lvl == 'error' and 'invalid' in m for lvl, m in logs)
        board = FakeBoard(link)
        assert wait_for(lambda: t.status().state == LinkState.UP), t.status()
        # the last target is resent after reconnect, then new ones flow again
        assert wait_for(lambda: board.targets)
        t.send(0.3, 0.0)
        assert wait_for(lambda: board.targets[-1] == proto.set_target_payload(proto.rad_to_cdeg(0.3), 0))
        assert t.status().reconnects >= 1
        assert any('DOWN' in m for _, m in logs) and any('UP' in m for _, m in logs)
    finally:
        t.close()
        board.unplug()


def test_garbage_from_board_is_tolerated(tmp_path):
    link = tmp_path / 'ttyNOISY'
    board = FakeBoard(link, garbage=b'\xa5\x05\x80\x01junk\x00')
    t = SerialTransport(cfg(link))
    try:
        assert wait_for(lambda: t.status().state == LinkState.UP), t.status()
        t.send(0.1, 0.1)
        assert wait_for(lambda: board.targets)
        assert t.status().state == LinkState.UP
    finally:
        t.close()
        board.unplug()


def test_silent_board_and_missing_port_are_down_with_reason(tmp_path):
    t = SerialTransport(cfg(tmp_path / 'nothing'))
    try:
        assert wait_for(lambda: 'cannot open' in t.status().detail)
        assert t.status().state == LinkState.DOWN
    finally:
        t.close()
    link = tmp_path / 'ttySILENT'
    board = FakeBoard(link, silent=True)
    t = SerialTransport(cfg(link))
    try:
        assert wait_for(lambda: 'no answer' in t.status().detail), t.status()
        assert t.status().state == LinkState.DOWN
    finally:
        t.close()
        board.unplug()


def test_nan_command_is_not_sent_and_other_transports():
    assert make_transport('none').status().state == LinkState.NONE
    assert make_transport('microros').status().state == LinkState.NONE
    with pytest.raises(ValueError):
        make_transport('can-bus')
