"""Record topics of a live graph into a bag with rclpy + rosbags (`emotion-bag record`).

Why: the live evaluation needs /emotion (and the ground truth replayed next to it) captured with
the time each message arrived; rosbag2 is not installable here.  Subscriptions are raw (the CDR
bytes go to the bag unchanged) and each message's log time is its receive time on the wall clock,
so `log time - header.stamp` in the recorded bag is the end-to-end latency as a subscriber sees it.
"""
from __future__ import annotations

import dataclasses
import logging
import pathlib
import threading
import time
from typing import Any, Optional, Sequence

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import ReliabilityPolicy
from rosbags.rosbag2 import Writer

from .bag_io import SENSOR_TYPES, BagError, ros_class
from .bag_make import storage_plugin
from .bag_replay import reliable_qos, sensor_qos
from .bag_types import add_connection, typestore

log = logging.getLogger('emotion_bag')


@dataclasses.dataclass
class RecordOptions:
    topics: Sequence[str]
    types: dict = dataclasses.field(default_factory=dict)  # topic -> 'pkg/msg/Type' if known
    storage: str = 'mcap'
    duration: Optional[float] = None  # seconds after the first subscription (None = until stop)
    max_messages: Optional[int] = None  # stop once this many messages were written in total
    discovery_timeout: float = 10.0  # how long to wait for a topic's type to be discoverable
    # also record every topic under these prefixes, as publishers appear (per-id REP-155
    # topics such as /humans/faces/<id>/expression, whose ids are not known in advance)
    prefixes: Sequence[str] = ()


# Streams the graph publishes best effort (features) or that are large (images, audio).
STREAM_TYPES = SENSOR_TYPES | {'emotion_msgs/msg/EmotionFeature'}


def _qos_for(node: Any, topic: str, msgtype: str):
    """Best effort for streams and for a topic with a best-effort publisher; else reliable.

    Why: a reliable subscription does not match a best-effort publisher (nothing would arrive),
    while a best-effort one matches both; reliable is still preferred where every publisher offers
    it because it does not drop /emotion messages under load.
    """
    if msgtype in STREAM_TYPES:
        return sensor_qos()
    infos = node.get_publishers_info_by_topic(topic)
    if any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos):
        return sensor_qos()
    return reliable_qos(depth=100)


def record(out: str | pathlib.Path, options: RecordOptions, node: Any = None,
           stop: Optional[threading.Event] = None, ready: Optional[threading.Event] = None) -> dict:
    """Subscribe to `options.topics`, write every message until stopped; returns counts.

    `ready` is set once every subscription exists (tests and scripts start publishing then).
    """
    out = pathlib.Path(out)
    if out.exists():
        raise BagError(f'output bag {out} exists already; remove it or choose another path')
    if not options.topics and not options.prefixes:
        raise BagError('record needs at least one topic (--topics /emotion ...)')
    plugin = storage_plugin(options.storage)
    typestore()     # fail early when the .msg files cannot be found
    own = node is None
    context = None
    if own:
        context = rclpy.Context()
        rclpy.init(args=[], context=context)  # our argv is not ROS args (old:=new)
        node = rclpy.create_node('emotion_bag_record', context=context)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    stop = stop or threading.Event()
    lock = threading.Lock()
    counts: dict[str, int] = {}
    writer = Writer(out, version=9, storage_plugin=plugin)
    writer.open()
    try:
        # Resolve each topic's type: given, or discovered from the graph.
        names = ['/' + t.lstrip('/') for t in options.topics]
        types = {'/' + k.lstrip('/'): v for k, v in options.types.items()}
        deadline = time.monotonic() + options.discovery_timeout
        while True:
            graph = dict(node.get_topic_names_and_types())
            for n in names:
                if n not in types and graph.get(n):
                    types[n] = graph[n][0]
            missing = [n for n in names if n not in types]
            if not missing or time.monotonic() > deadline or stop.is_set():
                break
            executor.spin_once(timeout_sec=0.1)
        if missing:
            raise BagError(f'cannot find the type of {missing} within '
                           f'{options.discovery_timeout} s '
                           '(no publisher yet?); give it with --type TOPIC:=pkg/msg/Type')
        total = [0]

        def make_cb(conn: Any, topic: str):
            def cb(raw: bytes) -> None:
                now = time.time_ns()
                with lock:
                    if stop.is_set():
                        return
                    writer.write(conn, now, raw)
                    counts[topic] += 1
                    total[0] += 1
                    if options.max_messages and total[0] >= options.max_messages:
                        stop.set()
            return cb

        def subscribe(n: str, msgtype: str) -> None:
            try:
                with lock:
                    conn = add_connection(writer, n, msgtype)
            except Exception as exc:  # noqa: BLE001 - unknown to the type store
                raise BagError(f'cannot record {n}: type {msgtype} is unknown to the bag type '
                               f'store ({exc})') from exc
            counts[n] = 0
            node.create_subscription(ros_class(msgtype), n, make_cb(conn, n),
                                     _qos_for(node, n, msgtype), raw=True)

        for n in names:
            subscribe(n, types[n])
        prefixes = ['/' + p.strip('/') + '/' for p in options.prefixes]
        next_scan = 0.0
        if ready is not None:
            ready.set()
        t_end = None if options.duration is None else time.monotonic() + options.duration
        while not stop.is_set() and (t_end is None or time.monotonic() < t_end):
            if prefixes and time.monotonic() >= next_scan:   # new per-id topics under a prefix
                next_scan = time.monotonic() + 0.5
                for n, ts_ in node.get_topic_names_and_types():
                    if n not in counts and ts_ and any(n.startswith(p) for p in prefixes):
                        try:
                            subscribe(n, ts_[0])
                            types[n] = ts_[0]
                        except BagError as exc:
                            log.warning('%s', exc)
                            counts[n] = 0
            executor.spin_once(timeout_sec=0.05)
        stop.set()
        return {'bag': str(out), 'counts': dict(counts),
                'types': {n: types[n] for n in counts if n in types}}
    finally:
        stop.set()
        with lock:
            writer.close()
        executor.shutdown()
        if own:
            node.destroy_node()
            rclpy.try_shutdown(context=context)
