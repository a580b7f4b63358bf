"""Python side of the pan/tilt board protocol (firmware/PROTOCOL.md).

Pure Python, no rclpy: the same frames as firmware/core/pt_proto.c, checked byte-for-byte
against the vectors the C code generates (firmware/tests/vectors.json), so host and board cannot
drift apart silently.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import List, Optional, Union

START = 0xA5
MAX_PAYLOAD = 32
OVERHEAD = 6
ABS_LIMIT_CDEG = 9000  # +-90 deg: the servo's travel (500..2500 us)


class MsgType(IntEnum):
    """Frame types; commands < 0x80, replies >= 0x80."""

    PING = 0x01
    SET_TARGET = 0x02
    SET_LIMITS = 0x03
    SET_SPEED = 0x04
    GET_STATUS = 0x05
    DEBUG_HANG = 0x7E
    ACK = 0x80
    NACK = 0x81
    STATUS = 0x82


class ErrorCode(IntEnum):
    """NACK error codes."""

    NONE = 0
    CRC = 1
    LENGTH = 2
    UNKNOWN_CMD = 3
    RANGE = 4
    BAD_ARG = 5


class StatusFlags(IntFlag):
    """STATUS.flags bits."""

    FAILSAFE = 0x01
    MOVING = 0x02
    CLAMPED = 0x04
    WDT_RESET = 0x08
    HOST_SEEN = 0x10


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as on the board."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


@dataclass(frozen=True)
class Frame:
    """One decoded frame with a valid CRC."""

    type: int
    seq: int
    payload: bytes = b''


@dataclass(frozen=True)
class DecodeError:
    """A frame-shaped input the decoder rejected (reported so the caller can count/log it)."""

    reason: str  # 'crc' or 'length'
    seq: Optional[int] = None


def encode(msg_type: int, seq: int, payload: bytes = b'') -> bytes:
    """Build one frame: START LEN TYPE SEQ PAYLOAD CRC16(LE) over LEN..PAYLOAD."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f'payload of {len(payload)} B exceeds {MAX_PAYLOAD} B')
    body = bytes([len(payload), msg_type & 0xFF, seq & 0xFF]) + bytes(payload)
    return bytes([START]) + body + struct.pack('<H', crc16(body))


class FrameDecoder:
    """Incremental decoder; tolerates garbage between frames and resynchronises on START."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.crc_errors = 0
        self.length_errors = 0
        self.junk_bytes = 0

    def reset(self) -> None:
        """Drop a partial frame (after a timeout or reconnect)."""
        self._buf.clear()

    def feed(self, data: bytes) -> List[Union[Frame, DecodeError]]:
        """Add received bytes; return the frames (and rejected frames) completed by them."""
        self._buf.extend(data)
        out: List[Union[Frame, DecodeError]] = []
        buf = self._buf
        while buf:
            if buf[0] != START:
                idx = buf.find(START)
                drop = len(buf) if idx < 0 else idx
                self.junk_bytes += drop
                del buf[:drop]
                continue
            if len(buf) < 2:
                break
            length = buf[1]
            if length > MAX_PAYLOAD:
                self.length_errors += 1
                out.append(DecodeError('length'))
                del buf[:1]
                continue
            total = length + OVERHEAD
            if len(buf) < total:
                break
            body = bytes(buf[1:4 + length])
            rx_crc = buf[4 + length] | (buf[5 + length] << 8)
            if crc16(body) != rx_crc:
                self.crc_errors += 1
                out.append(DecodeError('crc', buf[3]))
                del buf[:1]  # the START may have been a data byte: rescan from the next byte
                continue
            out.append(Frame(buf[2], buf[3], bytes(buf[4:4 + length])))
            del buf[:total]
        return out


def decode_all(data: bytes) -> List[Frame]:
    """Decode a complete byte string into its valid frames (test/diagnostic helper)."""
    return [f for f in FrameDecoder().feed(data) if isinstance(f, Frame)]


def rad_to_cdeg(angle_rad: float) -> int:
    """Radians -> integer centidegrees (the wire unit), rounded to nearest."""
    if not math.isfinite(angle_rad):
        raise ValueError(f'angle {angle_rad!r} is not finite')
    return int(round(math.degrees(angle_rad) * 100.0))


def cdeg_to_rad(cdeg: int) -> float:
    """Centidegrees -> radians."""
    return math.radians(cdeg / 100.0)


def _i16(v: int, what: str) -> int:
    if not -32768 <= v <= 32767:
        raise ValueError(f'{what}={v} does not fit int16')
    return v


def _u16(v: int, what: str) -> int:
    if not 0 <= v <= 0xFFFF:
        raise ValueError(f'{what}={v} does not fit uint16')
    return v


def set_target_payload(pan_cdeg: int, tilt_cdeg: int, speed_cdeg_s: int = 0) -> bytes:
    """SET_TARGET payload: int16 pan, int16 tilt [cdeg], uint16 max speed [cdeg/s] (0 = board's)."""
    return struct.pack('<hhH', _i16(pan_cdeg, 'pan'), _i16(tilt_cdeg, 'tilt'),
                       _u16(speed_cdeg_s, 'speed'))


def set_limits_payload(pan_min: int, pan_max: int, tilt_min: int, tilt_max: int) -> bytes:
    """SET_LIMITS payload: int16 pan_min, pan_max, tilt_min, tilt_max [cdeg]."""
    return struct.pack('<hhhh', *(_i16(v, 'limit') for v in (pan_min, pan_max, tilt_min, tilt_max)))


def set_speed_payload(speed_cdeg_s: int, failsafe_ms: int) -> bytes:
    """SET_SPEED payload: uint16 max speed [cdeg/s] (0 = unlimited), uint16 failsafe timeout [ms]."""
    return struct.pack('<HH', _u16(speed_cdeg_s, 'speed'), _u16(failsafe_ms, 'failsafe_ms'))


@dataclass(frozen=True)
class Status:
    """Decoded STATUS reply."""

    pan_cdeg: int
    tilt_cdeg: int
    pan_target_cdeg: int
    tilt_target_cdeg: int
    flags: StatusFlags
    reset_cause: int
    uptime_ms: int
    crc_errors: int
    frame_errors: int
    rx_overflows: int

    LENGTH = 20

    @classmethod
    def from_payload(cls, payload: bytes) -> 'Status':
        """Parse the 20-byte STATUS payload; ValueError when the length is wrong."""
        if len(payload) != cls.LENGTH:
            raise ValueError(f'STATUS payload has {len(payload)} B, expected {cls.LENGTH}')
        f = struct.unpack('<hhhhBBIHHH', payload)
        return cls(f[0], f[1], f[2], f[3], StatusFlags(f[4]), f[5], f[6], f[7], f[8], f[9])
