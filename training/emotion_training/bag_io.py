"""Opening bags with clear errors, and mapping bag message types to rclpy classes.

Why: every bag tool (replay, record, eval) must fail with a message naming the bag and what is
wrong with it (missing, not a bag, corrupt, lacking a topic) rather than a rosbags traceback, and
must find the rclpy class of a 'pkg/msg/Type' without rosidl_runtime_py (not installed here).
"""
from __future__ import annotations

import importlib
import pathlib
from typing import Any, Iterable

from rosbags.rosbag2 import Reader

from .bag_types import typestore

SENSOR_TYPES = frozenset({'sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage',
                          'emotion_msgs/msg/AudioChunk'})


class BagError(RuntimeError):
    """A bag is missing, unreadable or lacks what the caller needs."""


def bag_dir(path: str | pathlib.Path) -> pathlib.Path:
    """The bag directory for a path given as the directory, its metadata.yaml or a storage file."""
    p = pathlib.Path(path)
    if p.is_file() and (p.name == 'metadata.yaml' or p.suffix in ('.mcap', '.db3')):
        p = p.parent
    if not p.exists():
        raise BagError(f'bag {path} does not exist')
    if not p.is_dir():
        raise BagError(f'bag {path} is not a bag directory (expected a folder with metadata.yaml)')
    if not (p / 'metadata.yaml').is_file():
        raise BagError(f'bag {p} has no metadata.yaml: not a ROS 2 bag (or it was not closed '
                       'properly, e.g. the recorder was killed)')
    return p


def open_bag(path: str | pathlib.Path):
    """An opened rosbags Reader; BagError naming the bag when it cannot be read."""
    p = bag_dir(path)
    reader = Reader(p)
    try:
        reader.open()
    except Exception as exc:  # noqa: BLE001 - ReaderError, yaml, sqlite3 and mcap errors
        raise BagError(f'bag {p} cannot be read: {type(exc).__name__}: {exc}') from exc
    return reader


def topic_map(reader) -> dict[str, Any]:
    """topic -> list of connections of that topic (several when recorded in pieces)."""
    out: dict[str, list] = {}
    for c in reader.connections:
        out.setdefault(c.topic, []).append(c)
    return out


def find_topic(reader, name: str) -> list:
    """Connections of topic `name`, accepting it with or without the leading slash or a namespace
    prefix (a bag recorded under /robot1 has /robot1/emotion)."""
    conns = topic_map(reader)
    bare = name.lstrip('/')
    for topic, cs in conns.items():
        if topic.lstrip('/') == bare:
            return cs
    hits = [c for topic, cs in conns.items() for c in cs if topic.endswith('/' + bare)]
    return hits


def image_connections(reader, name: str) -> list:
    """Connections of the camera images: ``name`` (sensor_msgs/Image) if the bag has it, else
    ``name/compressed`` (sensor_msgs/CompressedImage, what ``emotion-bag make`` writes by
    default and image_transport's compressed plugin publishes)."""
    return find_topic(reader, name) or find_topic(reader, name.rstrip('/') + '/compressed')


def decode_image(msg: Any):
    """A rosbags-decoded Image or CompressedImage as a bgr8 numpy image (OpenCV)."""
    if hasattr(msg, 'format'):          # sensor_msgs/CompressedImage
        from emotion_perception.compressed_image import compressed_to_bgr8  # noqa: PLC0415 - cv2
        return compressed_to_bgr8(str(msg.format), bytes(msg.data))
    from emotion_perception.image_conversion import image_to_numpy, to_bgr8  # noqa: PLC0415 - cv2
    return to_bgr8(image_to_numpy(msg), str(msg.encoding))


def require_topics(reader, names: Iterable[str], path: Any) -> dict[str, list]:
    """{name: connections} for every name, else BagError listing what is missing and present."""
    found, missing = {}, []
    for n in names:
        cs = find_topic(reader, n)
        if cs:
            found[n] = cs
        else:
            missing.append(n)
    if missing:
        have = sorted(f'{c.topic} ({c.msgtype})' for c in reader.connections)
        raise BagError(f'bag {path} lacks topic(s) {missing}; it has {have}')
    return found


def iter_messages(reader, connections: list, path: Any):
    """(connection, log_time_ns, raw CDR bytes) in log-time order, BagError on corrupt data."""
    try:
        yield from reader.messages(connections=connections)
    except Exception as exc:  # noqa: BLE001
        raise BagError(f'bag {path} is corrupt while reading messages: '
                       f'{type(exc).__name__}: {exc}') from exc


def decode(raw: bytes, msgtype: str):
    """Deserialise raw CDR with rosbags' type store (no rclpy needed)."""
    return typestore().deserialize_cdr(raw, msgtype)


def ros_class(msgtype: str) -> type:
    """The rclpy message class of 'pkg/msg/Type' (importlib: pkg.msg.Type)."""
    parts = msgtype.split('/')
    if len(parts) == 2:
        parts = [parts[0], 'msg', parts[1]]
    if len(parts) != 3:
        raise BagError(f'message type {msgtype!r} is not of the form pkg/msg/Type')
    pkg, kind, name = parts
    try:
        module = importlib.import_module(f'{pkg}.{kind}')
        return getattr(module, name)
    except (ImportError, AttributeError) as exc:
        raise BagError(f'no Python class for message type {msgtype}: {exc} (is {pkg} built and '
                       'the workspace sourced? source scripts/env.sh)') from exc


def stamp_ns(msg: Any) -> int:
    """header.stamp of a rosbags-decoded message in nanoseconds."""
    s = msg.header.stamp
    return int(s.sec) * 1_000_000_000 + int(s.nanosec)
