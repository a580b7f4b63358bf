"""Publish a bag into a live ROS 2 graph with rclpy (`emotion-bag replay`), without rosbag2.

Why not `ros2 bag play`: rosbag2 cannot be installed here.  Messages are published as the raw CDR
bytes stored in the bag (rclpy's `publish(bytes)`), so nothing is re-encoded and any message type
whose Python package is importable can be replayed.  Timing follows the bag's log times scaled by
`rate`; with `restamp` every header stamp is mapped onto the wall clock of the replay
(stamp' = start of this pass + (stamp - bag start) / rate), so that the nodes' latency
(`now - header.stamp`) and freshness checks are meaningful, every stream of one pass is mapped the
same way (they stay aligned with each other and with the ground truth), and stamps keep increasing
across --loop passes.  At rate 1 this is a plain shift; at other rates the audio stamps no longer
match the sample counts, so live evaluation should replay at rate 1.
"""
from __future__ import annotations

import dataclasses
import logging
import pathlib
import threading
import time
from typing import Any, Optional, Sequence

import rclpy
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from tqdm import tqdm

from .bag_io import SENSOR_TYPES, BagError, decode_image, iter_messages, open_bag, ros_class, typestore

log = logging.getLogger('emotion_bag')


def parse_remaps(items: Sequence[str]) -> dict[str, str]:
    """['old:=new', ...] -> {'/old': '/new'} (relative names are taken as absolute)."""
    out = {}
    for item in items or ():
        if ':=' not in item:
            raise BagError(f'--remap {item!r}: expected old:=new')
        old, new = (x.strip() for x in item.split(':=', 1))
        if not old or not new:
            raise BagError(f'--remap {item!r}: both names must be given')
        out['/' + old.lstrip('/')] = '/' + new.lstrip('/') if not new.startswith('~') else new
    return out


def sensor_qos():
    """Best effort, depth 5: what the camera and microphone nodes offer (DESIGN.md)."""
    return qos_profile_sensor_data


def reliable_qos(depth: int = 10):
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


@dataclasses.dataclass
class ReplayOptions:
    rate: float = 1.0
    loop: bool = False
    loops: Optional[int] = None  # with loop: stop after this many passes (None = until stopped)
    remaps: dict = dataclasses.field(default_factory=dict)
    topics: Optional[Sequence[str]] = None  # only these bag topics (None = all)
    restamp: bool = False
    delay: float = 0.0  # seconds between creating the publishers and the first message
    wait_subscribers: float = 0.0  # up to this long, wait until every publisher is matched
    progress: bool = True
    flush_timeout: float = 5.0  # at the end, wait this long for reliable subscribers' acks
    # publish a bag's CompressedImage topics (<name>/compressed) decoded, as raw bgr8 Image on
    # <name>, for a graph whose face_node reads image_raw (its default image_input)
    decompress: bool = False


def _restamp(raw: bytes, msgtype: str, bag_start: int, wall_start: int, rate: float) -> bytes:
    """Map header.stamp of a CDR message onto the replay clock (no header: passed as is)."""
    ts = typestore()
    msg = ts.deserialize_cdr(raw, msgtype)
    hdr = getattr(msg, 'header', None)
    if hdr is None or not hasattr(hdr, 'stamp'):
        return bytes(raw)
    ns = int(hdr.stamp.sec) * 1_000_000_000 + int(hdr.stamp.nanosec)
    ns = wall_start + int(round((ns - bag_start) / rate))
    hdr.stamp.sec, hdr.stamp.nanosec = int(ns // 1_000_000_000), int(ns % 1_000_000_000)
    return bytes(ts.serialize_cdr(msg, msgtype))


COMPRESSED_TYPE, IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage', 'sensor_msgs/msg/Image'


def _decompressed(raw: bytes) -> bytes:
    """A CompressedImage (JPEG/PNG) CDR message as a bgr8 Image CDR message, same header."""
    ts = typestore()
    msg = ts.deserialize_cdr(raw, COMPRESSED_TYPE)
    bgr = decode_image(msg)
    h, w = bgr.shape[:2]
    image = ts.types[IMAGE_TYPE](header=msg.header, height=h, width=w, encoding='bgr8',
                                 is_bigendian=0, step=w * 3, data=bgr.reshape(-1))
    return bytes(ts.serialize_cdr(image, IMAGE_TYPE))


def replay(bag: str | pathlib.Path, options: Optional[ReplayOptions] = None,
           node: Any = None, stop: Optional[threading.Event] = None) -> dict:
    """Publish the bag's messages at their (scaled) times; returns counts per output topic.

    `node`: an existing rclpy node to publish from (else one is created in its own context).
    `stop`: an Event that ends the replay early (Ctrl-C does too, through the CLI).
    """
    opts = options or ReplayOptions()
    if opts.rate <= 0:
        raise BagError(f'--rate must be > 0, got {opts.rate}')
    reader = open_bag(bag)
    own = node is None
    context = None
    try:
        conns = [c for c in reader.connections
                 if opts.topics is None or c.topic in {'/' + t.lstrip('/') for t in opts.topics}]
        if not conns:
            have = sorted({c.topic for c in reader.connections})
            raise BagError(f'bag {bag}: nothing to replay (asked for {opts.topics}, '
                           f'bag has {have})')
        if own:
            context = rclpy.Context()
            rclpy.init(args=[], context=context)  # our argv is not ROS args (old:=new)
            node = rclpy.create_node('emotion_bag_replay', context=context)
        pubs: dict[int, Any] = {}
        out_topic: dict[int, str] = {}
        by_topic: dict[str, Any] = {}
        decoded: set = set()       # connections published decompressed (opts.decompress)
        for c in conns:
            topic, msgtype = c.topic, c.msgtype
            if opts.decompress and msgtype == COMPRESSED_TYPE and topic.endswith('/compressed'):
                topic, msgtype = topic[:-len('/compressed')], IMAGE_TYPE
                decoded.add(c.id)
            name = opts.remaps.get(c.topic, opts.remaps.get(topic, topic))
            if name not in by_topic:
                qos = sensor_qos() if msgtype in SENSOR_TYPES else reliable_qos()
                by_topic[name] = node.create_publisher(ros_class(msgtype), name, qos)
            pubs[c.id] = by_topic[name]
            out_topic[c.id] = name
        if opts.wait_subscribers > 0:
            deadline = time.monotonic() + opts.wait_subscribers
            while time.monotonic() < deadline and not all(
                    p.get_subscription_count() > 0 for p in by_topic.values()):
                time.sleep(0.05)
            unmatched = [t for t, p in by_topic.items() if p.get_subscription_count() == 0]
            if unmatched:
                log.warning('no subscriber on %s after %.1f s; replaying anyway', unmatched,
                            opts.wait_subscribers)
        if opts.delay > 0:
            time.sleep(opts.delay)
        bag_start, bag_end = reader.start_time, reader.end_time
        span = max(0, bag_end - bag_start)
        total = sum(c.msgcount for c in conns)
        counts = {t: 0 for t in by_topic}
        passes = 0
        late_max = 0.0
        t_begin = time.monotonic()
        while True:
            wall0 = time.monotonic()
            wall_start_ns = time.time_ns()
            bar = tqdm(total=total, desc=f'replay pass {passes + 1}', unit='msg',
                       disable=not opts.progress, leave=False)
            for conn, t_ns, raw in iter_messages(reader, conns, bag):
                if stop is not None and stop.is_set():
                    break
                due = wall0 + (t_ns - bag_start) / 1e9 / opts.rate
                wait = due - time.monotonic()
                if wait > 0:
                    if stop is not None:
                        if stop.wait(wait):
                            break
                    else:
                        time.sleep(wait)
                else:
                    late_max = max(late_max, -wait)
                msgtype = conn.msgtype
                if conn.id in decoded:
                    raw, msgtype = _decompressed(raw), IMAGE_TYPE
                data = (_restamp(raw, msgtype, bag_start, wall_start_ns, opts.rate)
                        if opts.restamp else bytes(raw))
                pubs[conn.id].publish(data)
                counts[out_topic[conn.id]] += 1
                bar.update(1)
            bar.close()
            passes += 1
            if stop is not None and stop.is_set():
                break
            if not opts.loop or (opts.loops is not None and passes >= opts.loops):
                break
            # Keep the loop's period: the next pass starts one message interval after the end.
            time.sleep(min(0.1, span / 1e9 / opts.rate / max(1, total)))
        # Reliable subscribers get everything: wait for their acknowledgements before the
        # publishers go away (a process that exits right after the last publish loses it).
        unacked = [t for t, p in by_topic.items()
                   if not p.wait_for_all_acked(Duration(seconds=opts.flush_timeout))]
        if unacked:
            log.warning('not every reliable subscriber acknowledged %s within %.1f s', unacked,
                        opts.flush_timeout)
        return {'bag': str(bag), 'passes': passes, 'counts': counts, 'rate': opts.rate,
                'restamp': opts.restamp, 'wall_s': round(time.monotonic() - t_begin, 3),
                'bag_s': round(span / 1e9, 3), 'max_lateness_s': round(late_max, 4)}
    finally:
        reader.close()
        if own and node is not None:
            node.destroy_node()
            rclpy.try_shutdown(context=context)
