"""emotion_msgs over the real middleware: one process publishes, this one subscribes and checks.

Also checks that the `rosbags` package writes the same CDR bytes as rclpy for our types, so bags
written by our tools replay in ROS 2 (and the other way round).
"""
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from msg_samples import non_default_fields, samples, to_plain  # noqa: E402

from emotion_test_tools.dds import RosHarness, isolated_domain, loopback_only, ros_env  # noqa: E402,E501


def test_samples_set_every_field():
    """The fixture itself: a field left at its default would hide a broken field."""
    for name, msg in samples().items():
        assert non_default_fields(msg) == [], name


def test_every_type_crosses_fast_dds_between_processes():
    import os
    assert os.environ.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp') == 'rmw_fastrtps_cpp'
    if not loopback_only():
        print('note: not in a loopback-only network namespace; '
              'relying on ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST')
    expected = samples()
    with isolated_domain() as domain_id:
        proc = subprocess.Popen([sys.executable, str(HERE / 'publish_samples.py')],
                                env=ros_env(domain_id), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            with RosHarness('sample_checker') as ros:
                got = {name: ros.collect(type(msg), f'samples/{name}')
                       for name, msg in expected.items()}
                ok = ros.wait_for(lambda: all(got.values()), timeout=30)
                assert proc.poll() is None, proc.stdout.read().decode()
                assert ok, 'no message on: ' + ', '.join(n for n, v in got.items() if not v)
                for name, msg in expected.items():
                    assert to_plain(got[name][0]) == to_plain(msg), name
        finally:
            proc.terminate()
            proc.wait(10)


def typestore():
    """rosbags' Jazzy type store plus this package's .msg files (what the bag tools register)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict = {}
    for path in sorted((HERE.parent / 'msg').glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'emotion_msgs/msg/{path.stem}'))
    store.register(types)
    return store


@pytest.mark.parametrize('name', list(samples()))
def test_rosbags_cdr_matches_rclpy(name):
    from rclpy.serialization import serialize_message
    store = typestore()
    msg = samples()[name]
    type_name = f'emotion_msgs/msg/{name}'
    from cdr_layout import padding_mask
    from rclpy.serialization import deserialize_message
    rclpy_bytes = serialize_message(msg)
    rb_msg = store.deserialize_cdr(rclpy_bytes, type_name)
    rb_bytes = store.serialize_cdr(rb_msg, type_name).tobytes()
    # Same length, and every byte equal except alignment padding, which Fast CDR leaves
    # uninitialised (rosbags writes zeros there).
    assert len(rb_bytes) == len(rclpy_bytes)
    mask = padding_mask(store, type_name, rb_bytes)
    diff = [i for i, (a, b) in enumerate(zip(rb_bytes, rclpy_bytes)) if a != b and not mask[i]]
    assert diff == [], f'{name}: bytes differ outside padding at {diff[:10]}'
    assert all(rb_bytes[i] == 0 for i, pad in enumerate(mask) if pad)
    # ... and rclpy reads the rosbags bytes back into the same message
    assert to_plain(deserialize_message(rb_bytes, type(msg))) == to_plain(msg)
    # field values survive the rosbags side too
    if name == 'Emotion':
        assert rb_msg.face_id == 'f7' and list(rb_msg.labels) == ['angry', 'happy']
        assert rb_msg.modalities == 3
