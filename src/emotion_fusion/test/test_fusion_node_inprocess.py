"""FusionNode's adapter logic in process (callbacks called directly, no spinning, no peers).

Covers what the DDS test does not: audio-only output, per-face publisher lifecycle (created at a
face's first output, destroyed when its track expires), the face-id -> topic token rule, the
rejection counters as diagnostics report them, and the output timing (step_on_vision: a step in
the vision callback, max_step_rate_hz spacing with the deferred one-shot, the fallback timer
skipping, step_on_vision=false = timer only), on simulated time set by the test.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from emotion_test_tools.dds import isolated_domain
from emotion_test_tools.tiny_bundle import make_tiny_bundle

rclpy = pytest.importorskip('rclpy')

from builtin_interfaces.msg import Time as TimeMsg  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from emotion_fusion.fusion_node import FusionNode, face_topic_token  # noqa: E402
from emotion_msgs.msg import EmotionFeature  # noqa: E402
from emotion_runtime.node_kit import bring_up as kit_bring_up  # noqa: E402

NS = 1_000_000_000


@pytest.fixture(scope='module')
def bundle_path(tmp_path_factory):
    return make_tiny_bundle(tmp_path_factory.mktemp('bundle'))


@pytest.fixture
def make_node(bundle_path):
    made = []
    with isolated_domain():
        ctx = rclpy.Context()
        rclpy.init(context=ctx)

        def make(bring_up=True, **params):
            params.setdefault('model_bundle', str(bundle_path))
            node = FusionNode(context=ctx, parameter_overrides=[
                Parameter(k, value=v) for k, v in params.items()])
            made.append(node)
            if not bring_up:
                return node, []
            kit_bring_up(node)                        # configure + activate (lifecycle)
            sent = []
            node.emotion_pub.publish = sent.append   # capture instead of sending
            return node, sent
        yield make
        for node in made:
            node.destroy_node()
        rclpy.shutdown(context=ctx)


def feature(node, sid, modality, emb, age_s=0.0):
    ns = node.get_clock().now().nanoseconds - int(age_s * NS)
    m = EmotionFeature()
    m.header.stamp = TimeMsg(sec=ns // NS, nanosec=ns % NS)
    m.header.frame_id = 'mic' if modality == 2 else 'camera'
    m.source_id, m.modality, m.speech = sid, modality, True
    m.embedding = np.asarray(emb, np.float32)
    return m


def topics(node):
    return {name for name, _ in node.get_topic_names_and_types()}


def test_audio_only_output_uses_voice_id(make_node):
    node, sent = make_node(voice_only_id='voice')
    node._on_voice(feature(node, 'voice', 2, np.ones(node.engine.model.voice_embedding_size)))
    node._on_step()
    assert [(m.face_id, m.modalities, m.header.frame_id) for m in sent] == [('voice', 2, 'mic')]
    assert sent[0].expression in node.engine.labels


def test_per_face_publishers_follow_tracks(make_node):
    # timer steps only: this test is about the publishers, each _on_step is one step
    node, sent = make_node(per_face_topics=True, vision_max_age=0.2, track_timeout=0.3,
                           step_on_vision=False)
    size = node.engine.model.vision_embedding_size
    node._on_vision(feature(node, 'f1', 1, np.ones(size)))
    node._on_vision(feature(node, '7-b', 1, np.ones(size)))
    node._on_step()
    assert sorted(m.face_id for m in sent) == ['7-b', 'f1']
    assert set(node.face_pubs) == {'f1', '7-b'}
    assert {'/humans/faces/f1/emotion', '/humans/faces/id_7_b/emotion'} <= topics(node)
    time.sleep(0.4)          # both tracks pass track_timeout without a frame
    node._on_step()
    assert node.face_pubs == {}
    assert not {'/humans/faces/f1/emotion', '/humans/faces/id_7_b/emotion'} & topics(node)


def test_bad_inputs_counted_by_reason(make_node):
    node, sent = make_node()
    size = node.engine.model.vision_embedding_size
    node._on_vision(feature(node, 'f1', 1, np.full(size, np.inf)))
    node._on_vision(feature(node, 'f1', 1, np.ones(size + 1)))
    node._on_vision(feature(node, 'f1', 1, []))
    node._on_voice(feature(node, 'voice', 1, np.ones(node.engine.model.voice_embedding_size)))
    node._on_vision(feature(node, 'f1', 1, np.ones(size), age_s=5.0))
    assert node.engine.rejected == {'non_finite_embedding': 1, 'wrong_embedding_size': 1,
                                    'empty_embedding': 1, 'wrong_modality': 1}
    assert node.engine.drops()['vision.late'] == 1
    node._on_step()
    assert sent == []


@pytest.mark.parametrize('face_id,token', [('f3', 'f3'), ('3', 'id_3'), ('a-b', 'a_b'),
                                           ('', 'id_')])
def test_face_topic_token(face_id, token):
    assert face_topic_token(face_id) == token


def test_corrupt_bundle_fails_configure_and_is_reported(make_node, bundle_path, tmp_path):
    import shutil
    bad = tmp_path / 'bad'
    shutil.copytree(bundle_path, bad)
    onnx = next(bad.glob('fusion*.onnx'))
    onnx.write_bytes(onnx.read_bytes()[:100])
    node, _ = make_node(bring_up=False, model_bundle=str(bad))
    from rclpy.lifecycle import TransitionCallbackReturn
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert node.state_label == 'unconfigured' and 'sha256' in node.failure
    report = node._diagnostic_report()
    assert report.level == 2 and 'sha256' in report.message
    assert report.values['lifecycle_state'] == 'unconfigured'


def test_live_parameters_apply_at_once_and_bad_ones_are_refused(make_node):
    node, _ = make_node(hysteresis_steps=3)
    size = node.engine.model.vision_embedding_size
    node._on_vision(feature(node, 'f1', 1, np.ones(size)))
    node._on_step()
    result = node.set_parameters([Parameter('hysteresis_steps', value=1),
                                  Parameter('hysteresis_margin', value=1)])   # int for a double
    assert all(r.successful for r in result), result
    assert node.engine.cfg.hysteresis_steps == 1 and node.cfg.hysteresis_margin == 1.0
    smoother = node.engine.tracks.get('f1').state.smoother
    assert (smoother.steps, smoother.margin) == (1, 1.0)
    bad = node.set_parameters([Parameter('hysteresis_margin', value=1.5)])[0]
    assert not bad.successful and 'hysteresis_margin' in bad.reason and '(0, 1]' in bad.reason
    ro = node.set_parameters([Parameter('slop', value=2.0)])[0]
    assert not ro.successful and 'read-only' in ro.reason


# ---------------------------------------------------------------- output timing
MS = 1_000_000


def sim_node(make_node, **params):
    """A node on simulated time (no /clock publisher: the test sets the time)."""
    node, sent = make_node(use_sim_time=True, **params)
    set_time(node, 1000 * NS)
    return node, sent


def set_time(node, ns):
    from rclpy.time import Time
    clock = node.get_clock()
    clock.set_ros_time_override(Time(nanoseconds=ns, clock_type=clock.clock_type))


def caller(depth=12):
    """Names of the node methods on the current call stack (who published)."""
    import sys
    f, names = sys._getframe(1), []
    while f is not None and len(names) < depth:
        names.append(f.f_code.co_name)
        f = f.f_back
    return names


def tracing(node, sent):
    """Capture (face_id, stamp_ns, the node callback that published) instead of sending."""
    def publish(m):
        names = caller()
        cb = next((n for n in names if n in ('_on_vision', '_on_step', '_on_deferred_step',
                                             '_on_voice')), '?')
        sent.append((m.face_id, m.header.stamp.sec * NS + m.header.stamp.nanosec, cb))
    node.emotion_pub.publish = publish


def test_vision_feature_published_from_vision_callback(make_node):
    node, sent = sim_node(make_node)
    tracing(node, sent)
    size = node.engine.model.vision_embedding_size
    msg = feature(node, 'f1', 1, np.ones(size))
    node._on_vision(msg)           # no timer call, no spin: the vision callback itself publishes
    t = 1000 * NS
    assert sent == [('f1', t, '_on_vision')]
    assert node.schedule.vision_steps == 1 and node.schedule.timer_steps == 0


def test_vision_step_over_dds_spin_once(make_node):
    """Through a real subscription: the Emotion is published while running the vision callback."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    node, sent = make_node(output_rate_hz=0.1)    # the timer cannot fire during the test
    tracing(node, sent)
    peer = rclpy.create_node('peer', context=node.context)
    pub = peer.create_publisher(EmotionFeature, 'vision/features', qos_profile_sensor_data)
    ex = SingleThreadedExecutor(context=node.context)
    ex.add_node(node)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and pub.get_subscription_count() == 0:
            time.sleep(0.05)
        size = node.engine.model.vision_embedding_size
        while time.monotonic() < deadline and not sent:
            pub.publish(feature(node, 'f1', 1, np.ones(size)))
            ex.spin_once(timeout_sec=0.1)
        assert sent and sent[0][0] == 'f1' and sent[0][2] == '_on_vision', sent
    finally:
        ex.remove_node(node)
        peer.destroy_node()


def test_max_step_rate_spacing_and_deferred_one_shot(make_node):
    node, sent = sim_node(make_node, max_step_rate_hz=25.0, output_rate_hz=10.0)   # 40 ms
    tracing(node, sent)
    steps = []
    engine_step = node.engine.step
    node.engine.step = lambda now: (steps.append(now), engine_step(now))[1]
    size = node.engine.model.vision_embedding_size
    t0 = 1000 * NS
    node._on_vision(feature(node, 'f1', 1, np.ones(size)))
    assert sent == [('f1', t0, '_on_vision')]
    # 10 ms later: a new frame and a second face, both within the 40 ms spacing -> deferred
    set_time(node, t0 + 10 * MS)
    node._on_vision(feature(node, 'f1', 1, np.ones(size)))
    node._on_vision(feature(node, 'f2', 1, np.ones(size)))
    assert len(sent) == 1
    assert node.schedule.pending and node.schedule.due_ns == t0 + 40 * MS
    timer = node._deferred_timer
    assert not timer.is_canceled() and timer.timer_period_ns == 30 * MS   # armed for the due time
    # the one-shot firing early (before the spacing) does not step, and re-arms
    set_time(node, t0 + 39 * MS)
    node._on_deferred_step()
    assert len(sent) == 1 and not timer.is_canceled()
    set_time(node, t0 + 40 * MS)
    node._on_deferred_step()
    assert sent[1:] == [('f1', t0 + 10 * MS, '_on_deferred_step'),
                        ('f2', t0 + 10 * MS, '_on_deferred_step')]
    assert timer.is_canceled() and not node.schedule.pending
    # a frame after the spacing steps at once in the vision callback
    set_time(node, t0 + 80 * MS)
    node._on_vision(feature(node, 'f1', 1, np.ones(size)))
    assert sent[3:] == [('f1', t0 + 80 * MS, '_on_vision'), ('f2', t0 + 10 * MS, '_on_vision')]
    assert steps == [t0, t0 + 40 * MS, t0 + 80 * MS]    # at least 1 / max_step_rate_hz apart
    assert node.schedule.vision_steps == 3 and node.schedule.deferrals == 1


def test_later_vision_arrival_fuses_deferred_feature(make_node):
    node, sent = sim_node(make_node, max_step_rate_hz=25.0)
    tracing(node, sent)
    size = node.engine.model.vision_embedding_size
    t0 = 1000 * NS
    node._on_vision(feature(node, 'f1', 1, np.ones(size)))
    set_time(node, t0 + 20 * MS)
    node._on_vision(feature(node, 'f2', 1, np.ones(size)))     # deferred
    set_time(node, t0 + 45 * MS)
    node._on_vision(feature(node, 'f1', 1, np.ones(size)))     # after the spacing: step
    assert [(f, c) for f, _, c in sent] == [('f1', '_on_vision'), ('f1', '_on_vision'),
                                            ('f2', '_on_vision')]
    assert not node.schedule.pending
    node._on_deferred_step()                                    # the one-shot finds nothing
    assert len(sent) == 3


def test_timer_skips_after_vision_step_then_resumes(make_node):
    node, sent = sim_node(make_node, output_rate_hz=10.0)
    tracing(node, sent)
    size = node.engine.model.vision_embedding_size
    t0 = 1000 * NS
    node._on_vision(feature(node, 'f1', 1, np.ones(size)))
    assert len(sent) == 1
    set_time(node, t0 + 99 * MS)
    node._on_step()                       # a vision step ran within 1 / output_rate_hz: skip
    assert len(sent) == 1 and node.schedule.timer_skips == 1
    set_time(node, t0 + 100 * MS)         # camera stalled for a period: the timer steps
    node._on_step()
    assert sent[1:] == [('f1', t0, '_on_step')]   # held frame, still fresh
    set_time(node, t0 + 190 * MS)         # the timer's own step does not make it skip
    node._on_step()
    assert len(sent) == 3 and node.schedule.timer_steps == 2


def test_timer_fallback_for_audio_only(make_node):
    node, sent = sim_node(make_node)
    tracing(node, sent)
    node._on_voice(feature(node, 'voice', 2, np.ones(node.engine.model.voice_embedding_size)))
    assert sent == []                      # voice never triggers a step
    node._on_step()
    assert [(f, c) for f, _, c in sent] == [('voice', '_on_step')]


def test_step_on_vision_false_is_timer_only(make_node):
    node, sent = sim_node(make_node, step_on_vision=False)
    tracing(node, sent)
    assert node._deferred_timer is None
    size = node.engine.model.vision_embedding_size
    t0 = 1000 * NS
    node._on_vision(feature(node, 'f1', 1, np.ones(size)))
    assert sent == [] and not node.schedule.pending
    node._on_step()
    set_time(node, t0 + 1 * MS)
    node._on_step()                        # never skipped, however close
    assert sent == [('f1', t0, '_on_step'), ('f1', t0, '_on_step')]
    assert node.schedule.vision_steps == 0 and node.schedule.timer_skips == 0


def test_deferred_one_shot_fires_when_spun(make_node):
    """The re-armed one-shot timer really runs under an executor (no timing asserted)."""
    from rclpy.executors import SingleThreadedExecutor
    node, sent = make_node(output_rate_hz=0.1, max_step_rate_hz=20.0)   # no fallback tick
    tracing(node, sent)
    size = node.engine.model.vision_embedding_size
    node._on_vision(feature(node, 'f1', 1, np.ones(size)))
    node._on_vision(feature(node, 'f2', 1, np.ones(size)))            # within 50 ms: deferred
    assert [c for _, _, c in sent] == ['_on_vision'] and node.schedule.pending
    ex = SingleThreadedExecutor(context=node.context)
    ex.add_node(node)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(sent) < 3:
            ex.spin_once(timeout_sec=0.1)
    finally:
        ex.remove_node(node)
    assert [(f, c) for f, _, c in sent[1:]] == [('f1', '_on_deferred_step'),
                                                ('f2', '_on_deferred_step')]
    assert node._deferred_timer.is_canceled() and not node.schedule.pending
