"""The health monitor's logic, rclpy-free: per-node diagnostics and per-topic output ages in, one
level per item and an aggregate out.

Why separate from the node: staleness and clearing are pure functions of "what arrived when", so
they are unit-tested here with a fake clock; health_monitor.py only feeds it /diagnostics and the
arrival times of the watched topics.

Rules (levels are diagnostic_msgs/DiagnosticStatus levels: OK 0, WARN 1, ERROR 2, STALE 3):
  - a node's level is the level of its latest status (so a WARN clears when the node reports OK
    again), or STALE when its latest status is older than ``diag_timeout`` seconds;
  - an expected node that never reported is STALE once ``startup_grace`` seconds have passed;
  - a watched topic is STALE when its last message is older than its max age, or when none came
    within ``startup_grace`` (before that: OK, "waiting for the first message");
  - the aggregate is the worst item (STALE counts as the worst), with every item that is not OK
    named in its message.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: 'OK', WARN: 'WARN', ERROR: 'ERROR', STALE: 'STALE'}

# The graph's main outputs and the most seconds between two messages on each. vision/features
# and emotion come only while a face is in view (emotion also while someone speaks): on a robot
# that often looks at an empty room, raise or drop them (`topics` parameter).
DEFAULT_TOPICS = ('image_raw=1.0, audio=1.0, faces=1.0, vision/features=5.0, '
                  'voice/features=5.0, emotion=5.0, tracker/state=1.0')


def parse_topics(text: str) -> dict:
    """'image_raw=1.0, audio=2' -> {'image_raw': 1.0, 'audio': 2.0}; raises ValueError on a bad
    entry (a max age <= 0 or an empty name)."""
    out: dict = {}
    for item in (t.strip() for t in text.replace(';', ',').split(',')):
        if not item:
            continue
        name, sep, age = item.rpartition('=')
        if not sep or not name.strip():
            raise ValueError(f"topics: '{item}' is not <topic>=<max age in s>")
        try:
            seconds = float(age)
        except ValueError:
            raise ValueError(f"topics: '{item}': max age '{age}' is not a number") from None
        if not seconds > 0:
            raise ValueError(f"topics: '{item}': max age must be > 0")
        out[name.strip()] = seconds
    return out


def parse_names(text: str) -> list:
    """'a, b c' -> ['a', 'b', 'c']."""
    return [n for n in text.replace(',', ' ').split() if n]


def node_of(status_name: str) -> str:
    """The node a DiagnosticStatus name belongs to ('face_node: camera' -> 'face_node')."""
    return status_name.split(':', 1)[0].strip().lstrip('/') or status_name


@dataclass
class Item:
    """One line of the health report: a node or a topic."""

    name: str
    level: int
    message: str
    values: dict = field(default_factory=dict)


@dataclass
class _NodeState:
    level: int
    message: str
    seen: float
    values: dict


class HealthModel:
    """What the monitor knows; ``evaluate()`` turns it into Items and an aggregate."""

    def __init__(self, topics: dict, diag_timeout: float = 5.0, startup_grace: float = 30.0,
                 expected_nodes: Iterable[str] = (), ignore_nodes: Iterable[str] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.topics = dict(topics)
        self.diag_timeout, self.startup_grace = float(diag_timeout), float(startup_grace)
        self.expected = list(expected_nodes)
        self.ignore = set(ignore_nodes)
        self._clock = clock
        self.started = clock()
        self.nodes: dict = {}
        self.last_msg: dict = {}        # topic -> arrival time
        self.msg_count: dict = {t: 0 for t in self.topics}
        self.stale_events = 0           # transitions into STALE (nodes and topics)
        self._was_stale: set = set()

    # ------------------------------------------------------------------ inputs
    def on_status(self, name: str, level: int, message: str, values: Optional[dict] = None,
                  now: Optional[float] = None) -> None:
        node = node_of(name)
        if node in self.ignore:
            return
        self.nodes[node] = _NodeState(int(level), message, self._now(now), dict(values or {}))

    def on_message(self, topic: str, now: Optional[float] = None) -> None:
        self.last_msg[topic] = self._now(now)
        self.msg_count[topic] = self.msg_count.get(topic, 0) + 1

    # ------------------------------------------------------------------ output
    def evaluate(self, now: Optional[float] = None) -> tuple:
        """(aggregate Item, [node Items] + [topic Items])."""
        now = self._now(now)
        in_grace = now - self.started < self.startup_grace
        items = []
        for node in sorted(set(self.nodes) | set(self.expected)):
            st = self.nodes.get(node)
            if st is None:
                items.append(Item(f'node {node}', OK if in_grace else STALE,
                                  'waiting for its first diagnostics' if in_grace
                                  else f'no diagnostics since the monitor started '
                                       f'({now - self.started:.0f} s)'))
                continue
            age = now - st.seen
            values = {'age_s': f'{age:.1f}', 'level': LEVEL_NAMES.get(st.level, str(st.level))}
            if age > self.diag_timeout:
                items.append(Item(f'node {node}', STALE,
                                  f'no diagnostics for {age:.1f} s (last: {st.message})', values))
            else:
                items.append(Item(f'node {node}', min(st.level, STALE), st.message, values))
        for topic, max_age in self.topics.items():
            seen = self.last_msg.get(topic)
            values = {'max_age_s': f'{max_age:g}', 'messages': str(self.msg_count.get(topic, 0))}
            if seen is None:
                items.append(Item(f'topic {topic}', OK if in_grace else STALE,
                                  'waiting for the first message' if in_grace
                                  else f'no message since the monitor started '
                                       f'({now - self.started:.0f} s)', values))
                continue
            age = now - seen
            values['age_s'] = f'{age:.2f}'
            if age > max_age:
                items.append(Item(f'topic {topic}', STALE,
                                  f'no message for {age:.1f} s (max {max_age:g} s)', values))
            else:
                items.append(Item(f'topic {topic}', OK, f'last message {age:.2f} s ago', values))
        stale_now = {i.name for i in items if i.level == STALE}
        self.stale_events += len(stale_now - self._was_stale)
        self._was_stale = stale_now
        return self.aggregate(items), items

    def aggregate(self, items: list) -> Item:
        bad = [i for i in items if i.level != OK]
        level = max((i.level for i in items), default=OK)
        counts = {name: sum(1 for i in items if i.level == lvl)
                  for lvl, name in LEVEL_NAMES.items()}
        values = {'nodes': str(sum(1 for i in items if i.name.startswith('node '))),
                  'topics': str(len(self.topics)),
                  **{f'items_{k.lower()}': str(v) for k, v in counts.items()},
                  'stale_events': str(self.stale_events),
                  'stale': ','.join(i.name.split(' ', 1)[1] for i in items if i.level == STALE)}
        if not bad:
            message = f'all {len(items)} nodes and topics OK'
        else:
            message = '; '.join(f'{i.name} {LEVEL_NAMES.get(i.level, i.level)}: {i.message}'
                                for i in sorted(bad, key=lambda i: -i.level))
        return Item('health', level, message, values)

    def _now(self, now: Optional[float]) -> float:
        return self._clock() if now is None else float(now)
