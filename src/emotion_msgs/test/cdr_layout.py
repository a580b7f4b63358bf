"""Which bytes of a CDR message are alignment padding.

Fast CDR (rclpy) leaves alignment padding uninitialised, so two correct serialisations of one
message can differ in those bytes only. The bag test compares every other byte exactly.
"""
from __future__ import annotations

import struct

_SIZES = {'bool': 1, 'byte': 1, 'char': 1, 'int8': 1, 'uint8': 1, 'int16': 2, 'uint16': 2,
          'int32': 4, 'uint32': 4, 'float32': 4, 'int64': 8, 'uint64': 8, 'float64': 8}


def padding_mask(store, type_name: str, data: bytes) -> list[bool]:
    """mask[i] is True where byte i of `data` (with its 4-byte encapsulation header) is padding."""
    mask = [False] * len(data)
    pos = _walk(store, type_name, data, 4, mask)
    if pos > len(data):
        raise ValueError(f'{type_name}: fields end at byte {pos}, past the {len(data)} bytes given')
    for i in range(pos, len(data)):  # trailing alignment to 4 at the end of the message
        mask[i] = True
    return mask


def _align(pos: int, size: int, mask: list[bool]) -> int:
    # CDR alignment is relative to the start of the payload (after the encapsulation header).
    while (pos - 4) % size:
        mask[pos] = True
        pos += 1
    return pos


def _base(pos: int, typ: str, data: bytes, mask: list[bool]) -> int:
    if typ == 'string':
        pos = _align(pos, 4, mask)
        (length,) = struct.unpack_from('<I', data, pos)
        return pos + 4 + length
    size = _SIZES[typ]
    return _align(pos, size, mask) + size


def _field(store, desc, pos: int, data: bytes, mask: list[bool]) -> int:
    kind, arg = desc
    kind = getattr(kind, 'name', kind)
    if kind == 'BASE':
        return _base(pos, arg[0], data, mask)
    if kind == 'NAME':
        return _walk(store, arg, data, pos, mask)
    if kind in ('SEQUENCE', 'ARRAY'):
        elem, count = arg
        if kind == 'SEQUENCE':
            pos = _align(pos, 4, mask)
            (count,) = struct.unpack_from('<I', data, pos)
            pos += 4
        for _ in range(count):
            pos = _field(store, elem, pos, data, mask)
        return pos
    raise ValueError(f'unknown node type {kind}')


def _walk(store, type_name: str, data: bytes, pos: int, mask: list[bool]) -> int:
    _consts, fields = store.fielddefs[type_name]
    for _name, desc in fields:
        pos = _field(store, desc, pos, data, mask)
    return pos
