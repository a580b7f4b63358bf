"""The health monitor's logic (emotion_bringup.health), on a fake clock: staleness, clearing,
never-seen nodes and topics, the aggregate, and the parameter parsing."""
from __future__ import annotations

import pytest

from emotion_bringup.health import (
    DEFAULT_TOPICS,
    ERROR,
    OK,
    STALE,
    WARN,
    HealthModel,
    node_of,
    parse_names,
    parse_topics,
)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _model(clock, **kw):
    kw.setdefault('topics', {'image_raw': 1.0, 'emotion': 5.0})
    kw.setdefault('diag_timeout', 3.0)
    kw.setdefault('startup_grace', 10.0)
    return HealthModel(clock=clock, **kw)


def _items(model):
    summary, items = model.evaluate()
    return summary, {i.name: i for i in items}


def test_default_topics_cover_the_graph_outputs():
    assert set(parse_topics(DEFAULT_TOPICS)) == {'image_raw', 'audio', 'faces', 'vision/features',
                                                'voice/features', 'emotion', 'tracker/state'}


def test_parse_topics_and_names():
    assert parse_topics(' a=1, /b/c=0.5;d=2 ') == {'a': 1.0, '/b/c': 0.5, 'd': 2.0}
    assert parse_topics('') == {}
    for bad in ('a', 'a=x', 'a=0', '=1'):
        with pytest.raises(ValueError, match='topics'):
            parse_topics(bad)
    assert parse_names('a, b c,,') == ['a', 'b', 'c']
    assert node_of('face_node: camera') == 'face_node' and node_of('/x') == 'x'


def test_node_goes_stale_when_its_diagnostics_stop_and_recovers():
    clock = Clock()
    m = _model(clock, topics={})
    m.on_status('face_node: vision', OK, 'ok')
    clock.t += 2.9
    summary, items = _items(m)
    assert items['node face_node'].level == OK and summary.level == OK
    clock.t += 0.2                                   # 3.1 s without a status > 3 s
    summary, items = _items(m)
    assert items['node face_node'].level == STALE and summary.level == STALE
    assert 'face_node' in summary.values['stale'] and 'no diagnostics' in summary.message
    m.on_status('face_node: vision', OK, 'ok')
    summary, items = _items(m)
    assert items['node face_node'].level == OK and summary.level == OK
    assert summary.values['stale'] == '' and summary.values['stale_events'] == '1'


def test_a_warn_clears_when_the_node_reports_ok_again():
    clock = Clock()
    m = _model(clock, topics={})
    m.on_status('vocal_node: mic', WARN, 'irregular audio chunks lately')
    m.on_status('fusion_node: fusion', OK, '1 tracks')
    summary, items = _items(m)
    assert summary.level == WARN and 'vocal_node' in summary.message
    clock.t += 1
    m.on_status('vocal_node: mic', OK, 'ok')
    summary, items = _items(m)
    assert summary.level == OK and items['node vocal_node'].level == OK
    m.on_status('vocal_node: mic', ERROR, 'model not loaded')
    assert m.evaluate()[0].level == ERROR


def test_topic_goes_stale_after_its_max_age_and_recovers():
    clock = Clock()
    m = _model(clock)
    m.on_message('image_raw')
    m.on_message('emotion')
    clock.t += 0.9
    assert _items(m)[1]['topic image_raw'].level == OK
    clock.t += 0.2
    summary, items = _items(m)
    assert items['topic image_raw'].level == STALE and items['topic emotion'].level == OK
    assert summary.level == STALE and 'image_raw' in summary.values['stale']
    m.on_message('image_raw')
    summary, items = _items(m)
    assert summary.level == OK and items['topic image_raw'].values['messages'] == '2'


def test_never_seen_nodes_and_topics_wait_for_the_startup_grace():
    clock = Clock()
    m = _model(clock, expected_nodes=['camera_node', 'tracker_node'])
    m.on_status('camera_node: cam', OK, 'ok')
    summary, items = _items(m)
    assert summary.level == OK and 'waiting' in items['node tracker_node'].message
    assert 'waiting' in items['topic image_raw'].message
    clock.t += 10.5
    m.on_status('camera_node: cam', OK, 'ok')
    summary, items = _items(m)
    assert items['node tracker_node'].level == STALE
    assert items['topic image_raw'].level == STALE and items['topic emotion'].level == STALE
    assert items['node camera_node'].level == OK
    assert summary.level == STALE


def test_ignored_nodes_and_aggregate_values():
    clock = Clock()
    m = _model(clock, topics={'a': 1.0}, ignore_nodes=['health_monitor'])
    m.on_status('health_monitor: graph health', STALE, 'x')
    m.on_status('n1: h', OK, 'ok')
    m.on_message('a')
    summary, items = _items(m)
    assert 'node health_monitor' not in items
    assert summary.level == OK and summary.values['nodes'] == '1'
    assert summary.values['items_ok'] == '2' and summary.message.startswith('all 2')
