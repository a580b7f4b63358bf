"""Actuator links: `serial` (the framed protocol to the Uno/Nano), `microros`, `none`.

The serial link runs on its own thread so a slow or unplugged board can never stall the control
loop: the loop drops its newest command into a one-slot mailbox (older ones are obsolete anyway)
and reads the link status. The thread handles acks, timeouts, retries, keepalives and reconnects
after an unplug, and reports UP/DOWN with a human-readable detail.
"""
from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Callable, Optional, Tuple

from . import protocol as proto

Logger = Callable[[str, str], None]  # (level: 'info'|'warn'|'error', message)


class LinkState(IntEnum):
    """Mirrors emotion_msgs/TrackerState LINK_*."""

    NONE = 0
    UP = 1
    DOWN = 2


@dataclass(frozen=True)
class LinkStatus:
    """Snapshot of a link for TrackerState and /diagnostics."""

    state: LinkState
    detail: str
    commands_sent: int = 0
    acks: int = 0
    nacks: int = 0
    timeouts: int = 0
    reconnects: int = 0
    rx_crc_errors: int = 0
    board: Optional[proto.Status] = None


class Transport(ABC):
    """An actuator link. send() must never block the caller for long."""

    kind = 'abstract'

    @abstractmethod
    def send(self, pan: float, tilt: float, max_velocity: float = 0.0) -> None:
        """Command a pose [rad, REP-103] with an optional slew limit [rad/s, 0 = board default]."""

    @abstractmethod
    def status(self) -> LinkStatus:
        """Current link status."""

    @abstractmethod
    def close(self) -> None:
        """Release the link."""


class NoneTransport(Transport):
    """No actuator: the node still computes and publishes commands (dry run, simulation)."""

    kind = 'none'

    def send(self, pan: float, tilt: float, max_velocity: float = 0.0) -> None:
        pass

    def status(self) -> LinkStatus:
        return LinkStatus(LinkState.NONE, 'no actuator (transport "none")')

    def close(self) -> None:
        pass  # nothing to release


class MicroRosTransport(NoneTransport):
    """A micro-ROS board subscribes to the node's pan_tilt/command itself; nothing to send here."""

    kind = 'microros'

    def status(self) -> LinkStatus:
        return LinkStatus(LinkState.NONE, 'micro-ROS: the board subscribes to pan_tilt/command')


@dataclass
class SerialConfig:
    """Serial link settings (angles in rad, times in s)."""

    port: str = '/dev/ttyACM0'
    baud: int = 115200
    ack_timeout: float = 0.05
    retries: int = 2
    reconnect_interval: float = 1.0
    keepalive_interval: float = 0.2
    status_interval: float = 1.0
    boot_timeout: float = 3.0  # an Uno resets when the port opens; its bootloader needs ~1.5 s
    pan_limits: Tuple[float, float] = (math.radians(-80), math.radians(80))
    tilt_limits: Tuple[float, float] = (math.radians(-30), math.radians(45))
    board_speed: float = math.radians(300)  # rad/s, the board's own slew limit
    failsafe_ms: int = 1000

    def validate(self) -> None:
        """Raise ValueError for impossible settings."""
        if not self.port:
            raise ValueError('serial port must not be empty')
        if self.baud <= 0 or self.ack_timeout <= 0 or self.retries < 0:
            raise ValueError('baud and ack_timeout must be > 0, retries >= 0')
        if self.reconnect_interval <= 0 or self.keepalive_interval <= 0:
            raise ValueError('reconnect_interval and keepalive_interval must be > 0')
        if self.keepalive_interval * 1000.0 >= self.failsafe_ms:
            raise ValueError('keepalive_interval must be shorter than the board failsafe timeout, '
                             'or the head would fall into failsafe while tracking a still face')
        if not proto_fits_failsafe(self.failsafe_ms):
            raise ValueError('failsafe_ms must be in [50, 60000]')


def proto_fits_failsafe(ms: int) -> bool:
    """The board accepts failsafe timeouts of 50..60000 ms."""
    return 50 <= ms <= 60000


class _LinkDown(Exception):
    """Internal: the board stopped answering or the port failed."""


class SerialTransport(Transport):
    """Framed protocol over pyserial, with a worker thread (see module docstring)."""

    kind = 'serial'

    def __init__(self, cfg: SerialConfig, logger: Optional[Logger] = None,
                 serial_factory: Optional[Callable[..., object]] = None) -> None:
        cfg.validate()
        self.cfg = cfg
        self._log = logger or (lambda level, msg: None)
        if serial_factory is None:
            import serial  # noqa: PLC0415 - pyserial: only this link needs it
            serial_factory = serial.Serial
        self._factory = serial_factory
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: Optional[bytes] = None  # SET_TARGET payload waiting to be sent
        self._stop = False
        self._port = None
        self._seq = 0
        self._decoder = proto.FrameDecoder()
        self._status = LinkStatus(LinkState.DOWN, f'{cfg.port}: not connected yet')
        self._last_target: Optional[bytes] = None
        self._reported = False
        # bench hook: (perf_counter time, message type) after each frame was written
        self.on_write: Optional[Callable[[float, int], None]] = None
        self._thread = threading.Thread(target=self._run, name='serial-link', daemon=True)
        self._thread.start()

    # --- API used by the control loop -------------------------------------------------------
    def send(self, pan: float, tilt: float, max_velocity: float = 0.0) -> None:
        try:
            payload = proto.set_target_payload(
                max(-proto.ABS_LIMIT_CDEG, min(proto.ABS_LIMIT_CDEG, proto.rad_to_cdeg(pan))),
                max(-proto.ABS_LIMIT_CDEG, min(proto.ABS_LIMIT_CDEG, proto.rad_to_cdeg(tilt))),
                min(0xFFFF, max(0, proto.rad_to_cdeg(max_velocity))))
        except ValueError as exc:  # NaN from upstream: never send it, never crash
            self._safe_log('error', f'not sending invalid command pan={pan} tilt={tilt}: {exc}')
            return
        with self._wake:
            self._pending = payload
            self._wake.notify()

    def status(self) -> LinkStatus:
        with self._lock:
            return self._status

    def close(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._thread.join(timeout=2.0)
        self._close_port()

    # --- worker -----------------------------------------------------------------------------
    def _set_status(self, **changes) -> None:
        with self._lock:
            old = self._status
            self._status = replace(old, **changes)
            new = self._status
        if old.state != new.state or (not self._reported and 'state' in changes):
            self._reported = True  # the first outcome is logged even if it is DOWN again
            level = 'info' if new.state == LinkState.UP else 'warn'
            self._safe_log(level, f'serial link {new.state.name}: {new.detail}')

    def _safe_log(self, level: str, msg: str) -> None:
        """A failing logger must not kill the link thread."""
        try:
            self._log(level, msg)
        except Exception:  # noqa: BLE001
            pass

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001 - closing a dead port may raise anything
                pass

    def _run(self) -> None:
        """Worker thread; it must survive anything, or the link would silently stay stuck."""
        while True:
            try:
                self._loop()
                return
            except Exception as exc:  # noqa: BLE001 - last line of defence, keep the link alive
                self._close_port()
                self._set_status(state=LinkState.DOWN, detail=f'{self.cfg.port}: internal error: {exc!r}')
                self._safe_log('error', f'serial link thread error (recovering): {exc!r}')
                time.sleep(self.cfg.reconnect_interval)

    def _loop(self) -> None:
        next_status = 0.0
        while True:
            with self._wake:
                if self._stop:
                    return
            if self._port is None:
                if not self._connect():
                    with self._wake:
                        self._wake.wait_for(lambda: self._stop, timeout=self.cfg.reconnect_interval)
                    continue
                next_status = 0.0
            with self._wake:
                self._wake.wait_for(lambda: self._stop or self._pending is not None,
                                    timeout=self.cfg.keepalive_interval)
                if self._stop:
                    return
                payload, self._pending = self._pending, None
            try:
                if payload is not None:
                    self._transact(proto.MsgType.SET_TARGET, payload)
                    self._last_target = payload
                    self._set_status(commands_sent=self.status().commands_sent + 1)
                elif time.monotonic() >= next_status:
                    self._poll_status()
                    next_status = time.monotonic() + self.cfg.status_interval
                else:
                    self._transact(proto.MsgType.PING)  # keepalive: holds off the board's failsafe
            except _LinkDown as exc:
                self._close_port()
                self._set_status(state=LinkState.DOWN, detail=f'{self.cfg.port}: {exc}')

    def _connect(self) -> bool:
        cfg = self.cfg
        try:
            self._port = self._factory(cfg.port, cfg.baud, timeout=0.005, write_timeout=0.5)
        except Exception as exc:  # noqa: BLE001 - SerialException, OSError, ValueError ...
            self._port = None
            self._set_status(state=LinkState.DOWN, detail=f'{cfg.port}: cannot open: {exc}')
            return False
        self._decoder.reset()
        try:
            try:
                self._port.reset_input_buffer()
            except Exception:  # noqa: BLE001 - not all ports support it
                pass
            self._handshake()
            self._transact(proto.MsgType.SET_SPEED, proto.set_speed_payload(
                min(0xFFFF, proto.rad_to_cdeg(cfg.board_speed)), cfg.failsafe_ms), config=True)
            self._transact(proto.MsgType.SET_LIMITS, proto.set_limits_payload(
                proto.rad_to_cdeg(cfg.pan_limits[0]), proto.rad_to_cdeg(cfg.pan_limits[1]),
                proto.rad_to_cdeg(cfg.tilt_limits[0]), proto.rad_to_cdeg(cfg.tilt_limits[1])),
                config=True)
            if self._last_target is not None:  # resume where we were (the board rebooted to home)
                self._transact(proto.MsgType.SET_TARGET, self._last_target)
            self._poll_status()
        except _LinkDown as exc:
            self._close_port()
            self._set_status(state=LinkState.DOWN, detail=f'{cfg.port}: {exc}')
            return False
        st = self.status()
        self._set_status(state=LinkState.UP, reconnects=st.reconnects + (1 if st.acks else 0))
        return True

    def _handshake(self) -> None:
        """Ping until the board answers; it may be in its bootloader right after the port opened."""
        end = time.monotonic() + self.cfg.boot_timeout
        while True:
            try:
                self._transact(proto.MsgType.PING, retries=0)
                return
            except _LinkDown:
                if time.monotonic() >= end:
                    raise _LinkDown('no answer to PING (wrong port, baud, or firmware?)') from None

    def _poll_status(self) -> None:
        reply = self._transact(proto.MsgType.GET_STATUS)
        try:
            board = proto.Status.from_payload(reply.payload)
        except ValueError as exc:
            self._safe_log('warn', f'bad STATUS from board: {exc}')
            return
        detail = (f'{self.cfg.port} up; board uptime {board.uptime_ms / 1000:.1f} s, '
                  f'flags {board.flags!s}, crc_errors {board.crc_errors}, '
                  f'frame_errors {board.frame_errors}')
        if board.flags & proto.StatusFlags.WDT_RESET:
            detail += ' (last reset by watchdog)'
        self._set_status(board=board, detail=detail)

    def _transact(self, msg_type: int, payload: bytes = b'', retries: Optional[int] = None,
                  config: bool = False) -> proto.Frame:
        """Send one command and wait for its ACK/NACK/STATUS; retry on timeout."""
        retries = self.cfg.retries if retries is None else retries
        port = self._port
        if port is None:
            raise _LinkDown('port closed')
        for _attempt in range(retries + 1):
            self._seq = (self._seq + 1) & 0xFF
            seq = self._seq
            frame = proto.encode(msg_type, seq, payload)
            try:
                port.write(frame)
                if self.on_write is not None:
                    self.on_write(time.perf_counter(), msg_type)
                reply = self._await(port, seq)
            except _LinkDown:
                raise
            except Exception as exc:  # noqa: BLE001 - SerialException/OSError on unplug
                raise _LinkDown(f'I/O error: {exc}') from None
            if reply is None:
                self._set_status(timeouts=self.status().timeouts + 1)
                continue
            if reply.type == proto.MsgType.NACK:
                code = reply.payload[1] if len(reply.payload) > 1 else -1
                self._set_status(nacks=self.status().nacks + 1)
                if code == proto.ErrorCode.CRC:
                    continue  # corrupted on the wire: resend
                name = proto.ErrorCode(code).name if code in proto.ErrorCode._value2member_map_ else code
                msg = f'board refused {proto.MsgType(msg_type).name}: {name}'
                if config:
                    raise _LinkDown(msg + ' (check the limits/speed parameters)')
                self._safe_log('warn', msg)
                return reply
            self._set_status(acks=self.status().acks + 1)
            return reply
        raise _LinkDown(f'no reply to {proto.MsgType(msg_type).name} after {retries + 1} tries '
                        f'({self.cfg.ack_timeout * 1000:.0f} ms each)')

    def _await(self, port, seq: int) -> Optional[proto.Frame]:
        end = time.monotonic() + self.cfg.ack_timeout
        while time.monotonic() < end:
            data = port.read(1)  # returns as soon as a byte is there (port timeout is 5 ms)
            if not data:
                continue
            waiting = port.in_waiting
            if waiting:
                data += port.read(waiting)
            for item in self._decoder.feed(data):
                if isinstance(item, proto.DecodeError):
                    self._set_status(rx_crc_errors=self.status().rx_crc_errors + 1)
                    continue
                if item.seq == seq and item.type >= proto.MsgType.ACK:
                    return item
        return None


def make_transport(kind: str, serial_cfg: Optional[SerialConfig] = None,
                   logger: Optional[Logger] = None) -> Transport:
    """Build a transport by name; ValueError for unknown kinds."""
    if kind == 'serial':
        return SerialTransport(serial_cfg or SerialConfig(), logger)
    if kind == 'microros':
        return MicroRosTransport()
    if kind == 'none':
        return NoneTransport()
    raise ValueError(f'transport {kind!r} not one of serial, microros, none')
