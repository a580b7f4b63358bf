"""health_monitor over real DDS: a node whose diagnostics stop, or an output that stops, is
flagged STALE on `health` within its timeout, and clears when it comes back; a WARN that the
node later reports as OK is OK again on `health`."""
from __future__ import annotations

import time

import pytest

from emotion_test_tools.dds import NodeProcess, RosHarness, isolated_domain, ros_env

DIAG_TIMEOUT = 1.0
MAX_AGE = 0.5
PERIOD = 0.2
SLACK = 2.0     # discovery and scheduling on a loaded 2-core machine


@pytest.fixture()
def monitor():
    from diagnostic_msgs.msg import DiagnosticArray
    with isolated_domain() as domain_id:
        proc = NodeProcess('emotion_bringup', 'health_monitor', env=ros_env(domain_id),
                           params={'topics': f'probe={MAX_AGE}',
                                   'diagnostics_timeout': DIAG_TIMEOUT,
                                   'expected_nodes': 'fake_node', 'startup_grace': 1.0,
                                   'publish_period': PERIOD})
        with proc, RosHarness('health_check') as ros:
            health = ros.collect(DiagnosticArray, 'health')
            yield proc, ros, health


def _latest(health, name):
    for msg in reversed(list(health)):
        for st in msg.status:
            if st.name == name:
                return st.level[0], st.message
    return None, ''


def _wait_level(ros, health, name, level, timeout):
    t0 = time.monotonic()
    ok = ros.wait_for(lambda: _latest(health, name)[0] == level, timeout)
    return ok, time.monotonic() - t0


def test_stale_node_and_topic_are_flagged_and_recover(monitor):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from std_msgs.msg import String
    proc, ros, health = monitor
    diag = ros.publisher(DiagnosticArray, '/diagnostics', 10)
    probe = ros.publisher(String, 'probe', 10)
    state = {'diag': True, 'probe': True, 'level': 1}

    def tick():
        if state['diag']:
            st = DiagnosticStatus(level=bytes([state['level']]), name='fake_node: probe',
                                  message='warned' if state['level'] else 'fine')
            diag.publish(DiagnosticArray(status=[st]))
        if state['probe']:
            probe.publish(String(data='x'))
    ros.node.create_timer(0.1, tick)

    assert ros.wait_for(lambda: health, 30), 'no health message\n' + proc.output()
    ok, _ = _wait_level(ros, health, 'node fake_node', 1, 20)
    assert ok, f'WARN not seen: {_latest(health, "node fake_node")}\n{proc.output()}'
    ok, _ = _wait_level(ros, health, 'topic probe', 0, 20)
    assert ok, f'probe not seen: {_latest(health, "topic probe")}\n{proc.output()}'

    state['level'] = 0                         # the WARN clears when the node reports OK
    ok, _ = _wait_level(ros, health, 'node fake_node', 0, 1 + SLACK)
    assert ok, _latest(health, 'node fake_node')
    assert _wait_level(ros, health, 'health', 0, 1 + SLACK)[0], _latest(health, 'health')

    state['diag'] = False                      # the node stops: STALE within the timeout
    ok, took = _wait_level(ros, health, 'node fake_node', 3, DIAG_TIMEOUT + PERIOD + SLACK)
    assert ok, f'not STALE after {took:.1f} s: {_latest(health, "node fake_node")}'
    assert took >= DIAG_TIMEOUT * 0.5, f'STALE too early ({took:.2f} s)'
    level, message = _latest(health, 'health')
    assert level == 3 and 'fake_node' in message
    state['diag'] = True                       # and recovers
    assert _wait_level(ros, health, 'node fake_node', 0, 1 + SLACK)[0]

    state['probe'] = False                     # the output stops
    ok, took = _wait_level(ros, health, 'topic probe', 3, MAX_AGE + PERIOD + SLACK)
    assert ok, f'topic not STALE after {took:.1f} s: {_latest(health, "topic probe")}'
    state['probe'] = True
    assert _wait_level(ros, health, 'topic probe', 0, 1 + SLACK)[0]
    assert _wait_level(ros, health, 'health', 0, 1 + SLACK)[0], _latest(health, 'health')
    assert proc.alive(), proc.output()
