"""robot_tracker.protocol against the C implementation's vectors and against bad input."""
import json
import math
import random
from pathlib import Path

import pytest

from robot_tracker import protocol as proto

VECTORS = Path(__file__).resolve().parents[3] / 'firmware' / 'tests' / 'vectors.json'


@pytest.fixture(scope='module')
def vectors():
    if not VECTORS.exists():
        pytest.skip(f'{VECTORS} not found (package used outside the workspace)')
    return json.loads(VECTORS.read_text())


def test_crc_check_value():
    assert proto.crc16(b'123456789') == 0x29B1


def test_encode_matches_c_vectors(vectors):
    assert len(vectors) >= 9
    for v in vectors:
        assert proto.encode(v['type'], v['seq'], bytes.fromhex(v['payload'])).hex() == v['frame'], v['name']


def test_decode_c_vectors_byte_by_byte(vectors):
    dec = proto.FrameDecoder()
    got = []
    for v in vectors:
        for b in bytes.fromhex(v['frame']):
            got += dec.feed(bytes([b]))
    assert [(f.type, f.seq, f.payload.hex()) for f in got] == \
        [(v['type'], v['seq'], v['payload']) for v in vectors]


def test_status_vector(vectors):
    v = next(v for v in vectors if v['name'] == 'status')
    st = proto.Status.from_payload(bytes.fromhex(v['payload']))
    assert (st.pan_cdeg, st.tilt_cdeg, st.pan_target_cdeg, st.tilt_target_cdeg) == (900, -700, 1500, -700)
    assert st.flags & proto.StatusFlags.WDT_RESET and st.flags & proto.StatusFlags.MOVING
    assert (st.uptime_ms, st.crc_errors, st.frame_errors, st.rx_overflows) == (987654, 3, 258, 1)
    with pytest.raises(ValueError):
        proto.Status.from_payload(b'\x00' * 19)


def test_payload_helpers_match_vectors(vectors):
    by = {v['name']: v for v in vectors}
    assert proto.set_target_payload(4500, -1234).hex() == by['set_target']['payload']
    assert proto.set_limits_payload(-6000, 6000, -3000, 4500).hex() == by['set_limits']['payload']
    assert proto.set_speed_payload(30000, 1000).hex() == by['set_speed']['payload']


def test_decoder_survives_garbage_and_reports_bad_frames():
    good = proto.encode(proto.MsgType.ACK, 7, b'\x02')
    bad = bytearray(proto.encode(proto.MsgType.ACK, 8, b'\x02'))
    bad[4] ^= 0x10
    dec = proto.FrameDecoder()
    out = dec.feed(b'\x00\xff\xa5\xee' + bytes(bad) + b'noise' + good)
    frames = [o for o in out if isinstance(o, proto.Frame)]
    errors = [o for o in out if isinstance(o, proto.DecodeError)]
    assert frames == [proto.Frame(proto.MsgType.ACK, 7, b'\x02')]
    assert any(e.reason == 'crc' for e in errors) and any(e.reason == 'length' for e in errors)
    assert dec.crc_errors >= 1


def test_decoder_random_noise_never_raises():
    rng = random.Random(1)
    dec = proto.FrameDecoder()
    for _ in range(2000):
        dec.feed(bytes(rng.randrange(256) for _ in range(rng.randrange(40))))
    # after noise, a good frame still comes through
    dec.reset()
    assert proto.decode_all(proto.encode(1, 2)) == [proto.Frame(1, 2, b'')]


def test_encode_rejects_oversize_and_helpers_reject_overflow():
    with pytest.raises(ValueError):
        proto.encode(1, 0, bytes(33))
    with pytest.raises(ValueError):
        proto.set_target_payload(40000, 0)
    with pytest.raises(ValueError):
        proto.set_speed_payload(-1, 1000)
    with pytest.raises(ValueError):
        proto.rad_to_cdeg(float('nan'))


def test_angle_conversion():
    assert proto.rad_to_cdeg(math.radians(45)) == 4500
    assert proto.rad_to_cdeg(-math.radians(12.345)) in (-1234, -1235)
    assert math.isclose(proto.cdeg_to_rad(9000), math.pi / 2)
