"""health_monitor: one node that watches the whole graph and says what is stale.

Subscribes /diagnostics (every node of the graph publishes there at ~1 Hz) and the graph's main
outputs (parameter ``topics``: topic=max age in s), and publishes
  - ``health`` (diagnostic_msgs/DiagnosticArray, every ``publish_period`` s): first the aggregate
    ("health", the worst level of all items), then one status per node ("node <name>": its latest
    level and message, STALE when its diagnostics stopped) and per topic ("topic <name>": OK, or
    STALE when no message came within its max age);
  - its own /diagnostics entry (the node kit's), with the aggregate's level and message.
The logic (staleness, clearing, aggregation) is the rclpy-free emotion_bringup.health.

Topics are subscribed by type as found on the graph (raw, never deserialised, best effort so that
they match reliable and best-effort publishers); a topic that is not on the graph yet is looked up
again every second. Arrival times use the monitor's own monotonic clock, not header stamps.
"""
from __future__ import annotations

import importlib
import threading
import time
from typing import Any, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from emotion_runtime.node_kit import ConfigureError, KitNode, run_node
from emotion_runtime.params import ParameterError, ParamSpec, positive
from emotion_runtime.stats import StatusReport

from .health import DEFAULT_TOPICS, LEVEL_NAMES, HealthModel, Item, parse_names, parse_topics

SPECS = [
    ParamSpec('topics', DEFAULT_TOPICS,
              'Watched outputs, "<topic>=<max age in s>, ...": a topic whose last message is '
              'older than its max age is STALE. Relative names resolve in the node\'s '
              'namespace. vision/features and emotion come only while a face is in view.'),
    ParamSpec('diagnostics_timeout', 5.0,
              'Seconds without a /diagnostics status from a node before it is STALE (nodes '
              'publish at ~1 Hz).', positive),
    ParamSpec('expected_nodes', '',
              'Nodes that must report on /diagnostics, comma- or space-separated (the graph '
              'passes its node names); a node that never reports is STALE after startup_grace. '
              "'' = watch whichever nodes report."),
    ParamSpec('startup_grace', 30.0,
              'Seconds after activation during which a node or topic that has not appeared yet '
              'is "waiting" (OK) rather than STALE: model loading and warm-up.', positive),
    ParamSpec('publish_period', 1.0, 'Seconds between two messages on the health topic.',
              positive),
]

_QOS = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE,
                  history=HistoryPolicy.KEEP_LAST, depth=1)
_DIAG_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                       depth=50)


def message_class(type_name: str) -> Any:
    """'sensor_msgs/msg/Image' -> the Python class."""
    package, _, name = type_name.replace('/msg/', '/').partition('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def to_status(item: Item, hardware_id: str) -> DiagnosticStatus:
    return DiagnosticStatus(level=bytes([item.level]), name=item.name, message=item.message,
                            hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=str(v)) for k, v in item.values.items()])


class HealthMonitor(KitNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__('health_monitor', SPECS, 'graph health', **kwargs)
        self.model: Optional[HealthModel] = None
        self._lock = threading.Lock()
        self._subs: dict = {}          # resolved topic -> subscription
        self._names: dict = {}         # resolved topic -> name as configured
        self._last: Optional[Item] = None

    def check_parameters(self, values: dict) -> None:
        try:
            parse_topics(values['topics'])
        except ValueError as exc:
            raise ParameterError(str(exc)) from None

    def configure(self) -> None:
        p = self.p
        try:
            topics = parse_topics(p['topics'])
        except ValueError as exc:
            raise ConfigureError(str(exc)) from None
        self._names = {self._resolve(t): t for t in topics}
        self.health_pub = self.lifecycle_publisher(DiagnosticArray, 'health', 10)

    def activate(self) -> None:
        p = self.p
        self.model = HealthModel({t: a for t, a in parse_topics(p['topics']).items()},
                                 p['diagnostics_timeout'], p['startup_grace'],
                                 parse_names(p['expected_nodes']),
                                 ignore_nodes=[self.get_name()])
        self._group = MutuallyExclusiveCallbackGroup()
        self.active_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                 _DIAG_QOS, callback_group=self._group)
        self._subs = {}
        self._subscribe_found()
        self.active_timer(1.0, self._subscribe_found, callback_group=self._group)
        self.active_timer(p['publish_period'], self._publish, callback_group=self._group)

    def deactivate(self) -> None:
        self._subs = {}                # destroyed with the other active entities

    # ------------------------------------------------------------------ inputs
    def _resolve(self, topic: str) -> str:
        try:
            return self.resolve_topic_name(topic)
        except Exception:  # noqa: BLE001 - older rclpy: resolve by hand
            ns = self.get_namespace().rstrip('/')
            return topic if topic.startswith('/') else f'{ns}/{topic}'

    def _subscribe_found(self) -> None:
        missing = [t for t in self._names if t not in self._subs]
        if not missing:
            return
        types = dict(self.get_topic_names_and_types())
        for topic in missing:
            if not types.get(topic):
                continue
            try:
                cls = message_class(types[topic][0])
            except (ImportError, AttributeError, ValueError) as exc:
                self.get_logger().warn(f'{topic}: cannot watch type {types[topic][0]}: {exc}',
                                       throttle_duration_sec=30.0)
                continue
            name = self._names[topic]
            self._subs[topic] = self.active_subscription(
                cls, topic, lambda _msg, name=name: self._on_message(name), _QOS,
                raw=True, callback_group=self._group)
            self.get_logger().info(f'watching {topic} ({types[topic][0]}, max age '
                                   f'{self.model.topics[name]:g} s)')

    def _on_message(self, name: str) -> None:
        with self._lock:
            self.model.on_message(name, time.monotonic())

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        now = time.monotonic()
        with self._lock:
            for st in msg.status:
                level = st.level[0] if isinstance(st.level, (bytes, bytearray)) else int(st.level)
                self.model.on_status(st.name, level, st.message,
                                     {kv.key: kv.value for kv in st.values}, now)

    # ------------------------------------------------------------------ output
    def _publish(self) -> None:
        with self._lock:
            summary, items = self.model.evaluate(time.monotonic())
        previous, self._last = self._last, summary
        if previous is None or previous.level != summary.level:
            text = f'health {LEVEL_NAMES.get(summary.level)}: {summary.message}'
            if summary.level == 0:      # (rclpy: one severity per logging call site)
                self.get_logger().info(text)
            else:
                self.get_logger().warn(text)
        msg = DiagnosticArray(status=[to_status(i, 'graph health') for i in [summary] + items])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.health_pub.publish(msg)

    def report(self) -> StatusReport:
        r = StatusReport()
        summary = self._last
        if summary is None:
            r.raise_level(0, 'starting')
            return r
        r.raise_level(summary.level, summary.message)
        for k, v in summary.values.items():
            r.add(k, v)
        return r


def main(args: Optional[list] = None) -> None:
    raise SystemExit(run_node(HealthMonitor, args))


if __name__ == '__main__':
    main()
