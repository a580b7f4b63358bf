"""FusionRunner on explicit times: when steps run, the one-shot's due time, tracks, latency."""
import numpy as np
from fakes import FakeFusion, onehot

from emotion_fusion.config import FusionConfig
from emotion_fusion.features import MODALITY_VISION, MODALITY_VOICE, Feature, RejectReason
from emotion_fusion.fusion_engine import FaceBox
from emotion_fusion.fusion_runner import MIN_ONE_SHOT_NS, FusionRunner

S = 1_000_000_000
MS = 1_000_000
HAPPY, SAD = 1, 3


def runner(**cfg):
    base = dict(hysteresis_steps=1, hysteresis_margin=1.0, max_step_rate_hz=25.0)   # 40 ms
    base.update(cfg)
    return FusionRunner(FusionConfig.from_mapping(base), FakeFusion())


def vis(fid, t, label=HAPPY, received=None):
    return Feature(t, fid, MODALITY_VISION, onehot(label, 8), frame_id='cam',
                   received_ns=t if received is None else received)


def test_vision_steps_at_once_and_a_second_face_arms_the_one_shot():
    r = runner()
    t0 = 10 * S
    reason, step = r.on_vision(vis('f1', t0), t0)
    assert reason is None and step.kind == 'vision' and step.t_ns == t0
    assert [e.face_id for e in step.estimates] == ['f1']
    assert r.deferred_due_ns is None
    # f2 of the same frame 1 ms later: within the spacing, pending; the one-shot is due at t0+40
    reason, step = r.on_vision(vis('f2', t0, SAD), t0 + MS)
    assert reason is None and step is None
    assert r.deferred_due_ns == t0 + 40 * MS and r.schedule.pending
    # another arrival before it fires does not re-arm it
    assert r.on_vision(vis('f1', t0 + 20 * MS), t0 + 20 * MS) == (None, None)
    assert r.deferred_due_ns == t0 + 40 * MS
    step = r.on_deferred(t0 + 40 * MS)
    assert step.kind == 'deferred' and {e.face_id for e in step.estimates} == {'f1', 'f2'}
    assert r.deferred_due_ns is None and not r.schedule.pending
    assert (r.schedule.vision_steps, r.schedule.deferrals) == (2, 1)


def test_one_shot_after_an_earlier_step_finds_nothing_or_rearms():
    r = runner()
    t0 = 10 * S
    r.on_vision(vis('f1', t0), t0)
    r.on_vision(vis('f2', t0), t0 + MS)                       # pending, due t0 + 40
    _, step = r.on_vision(vis('f1', t0 + 41 * MS), t0 + 41 * MS)
    assert step.kind == 'vision'                             # after the spacing: steps, fuses f2
    assert r.deferred_due_ns == t0 + 40 * MS                 # still armed, as a ROS timer is
    assert r.on_deferred(t0 + 42 * MS) is None and r.deferred_due_ns is None
    # pending again, and the one-shot fires early (clock jitter): armed again for the due time
    r.on_vision(vis('f2', t0 + 50 * MS), t0 + 50 * MS)
    assert r.deferred_due_ns == t0 + 81 * MS
    assert r.on_deferred(t0 + 80 * MS) is None
    assert r.deferred_due_ns == t0 + 81 * MS
    early = t0 + 81 * MS - 500                               # never less than 1 us ahead
    assert r.on_deferred(early) is None
    assert r.deferred_due_ns == early + MIN_ONE_SHOT_NS
    assert r.on_deferred(early + MIN_ONE_SHOT_NS).kind == 'deferred'


def test_timer_skips_after_vision_and_steps_when_frames_stop():
    r = runner(output_rate_hz=10.0)
    t0 = 10 * S
    r.on_vision(vis('f1', t0), t0)
    assert r.on_timer(t0 + 50 * MS) is None                  # a vision step within 100 ms
    step = r.on_timer(t0 + 150 * MS)
    assert step.kind == 'timer' and [e.face_id for e in step.estimates] == ['f1']
    assert (r.schedule.timer_skips, r.schedule.timer_steps) == (1, 1)


def test_step_on_vision_false_only_the_timer_steps():
    r = runner(step_on_vision=False)
    t0 = 10 * S
    assert r.on_vision(vis('f1', t0), t0) == (None, None)
    assert r.deferred_due_ns is None
    assert r.on_timer(t0 + MS).kind == 'timer'
    assert r.on_timer(t0 + 2 * MS).kind == 'timer'


def test_rejected_input_does_not_step_and_voice_never_steps():
    r = runner()
    t0 = 10 * S
    bad = Feature(t0, 'f1', MODALITY_VISION, np.ones(3, np.float32), frame_id='cam')
    assert r.on_vision(bad, t0) == (RejectReason.WRONG_SIZE, None)
    voice = Feature(t0, 'voice', MODALITY_VOICE, onehot(SAD, 6), speech=True, frame_id='mic')
    assert r.on_voice(voice, t0) is None
    r.on_faces([FaceBox('f1', 10.0), FaceBox('', 5.0)], t0)
    r.on_tracker('f1', t0)
    assert r.schedule.vision_steps == 0 and r.schedule.timer_steps == 0
    step = r.on_timer(t0 + MS)                               # audio-only output
    assert [e.face_id for e in step.estimates] == ['voice']


def test_first_use_once_per_input_and_removed_tracks():
    r = runner(track_timeout=0.5, vision_max_age=0.5)
    t0 = 10 * S
    _, step = r.on_vision(vis('f1', t0, received=t0 + 2 * MS), t0 + 2 * MS)
    assert [e.received_ns for e in step.first_use] == [t0 + 2 * MS]
    step = r.on_timer(t0 + 200 * MS)                         # the held frame again
    assert step.estimates and step.first_use == []
    step = r.on_timer(t0 + 2 * S)                            # f1 gone
    assert step.removed == ['f1'] and step.estimates == []
    _, step = r.on_vision(vis('f1', t0 + 3 * S), t0 + 3 * S)
    assert len(step.first_use) == 1                          # a new track: counted again
