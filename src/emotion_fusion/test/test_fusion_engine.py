"""The engine with a deterministic fake model: masks, voice policy, bad inputs, tracks."""
import numpy as np
import pytest
from fakes import LABELS, FakeFusion, onehot

from emotion_fusion.config import FusionConfig
from emotion_fusion.features import MODALITY_VISION, MODALITY_VOICE, Feature, RejectReason
from emotion_fusion.fusion_engine import FaceBox, FusionEngine

S = 1_000_000_000
MS = 1_000_000
ANGRY, HAPPY, NEUTRAL, SAD = range(4)


def engine(**cfg):
    base = dict(hysteresis_steps=1, hysteresis_margin=1.0)
    base.update(cfg)
    model = FakeFusion()
    return FusionEngine(FusionConfig.from_mapping(base), model), model


def vis(fid, t, label, frame='camera'):
    return Feature(t, fid, MODALITY_VISION, onehot(label, 8), frame_id=frame)


def voc(t, label, speech=True):
    return Feature(t, 'voice', MODALITY_VOICE, onehot(label, 6), speech=speech, frame_id='mic')


def by_id(result):
    return {e.face_id: e for e in result.estimates}


def test_two_faces_vision_only():
    eng, model = engine()
    now = 10 * S
    eng.add_vision(vis('f1', now - 10 * MS, HAPPY), now)
    eng.add_vision(vis('f2', now - 20 * MS, SAD), now)
    out = by_id(eng.step(now))
    assert set(out) == {'f1', 'f2'}
    assert out['f1'].expression == 'happy' and out['f2'].expression == 'sad'
    assert out['f1'].modalities == MODALITY_VISION
    assert out['f1'].stamp_ns == now - 10 * MS and out['f1'].frame_id == 'camera'
    assert out['f1'].labels == LABELS
    assert abs(float(out['f1'].probabilities.sum()) - 1.0) < 1e-5
    assert out['f1'].confidence == pytest.approx(float(out['f1'].probabilities[HAPPY]))
    assert list(model.calls[-1]['ap']) == [0.0, 0.0]   # voice masked out


def test_voice_goes_to_tracker_target_and_stamp_is_newest_input():
    eng, model = engine(voice_assignment='target')
    now = 10 * S
    eng.add_vision(vis('f1', now - 50 * MS, NEUTRAL), now)
    eng.add_vision(vis('f2', now - 50 * MS, NEUTRAL), now)
    eng.add_voice(voc(now - 20 * MS, ANGRY), now)
    eng.set_target('f2', now)
    out = by_id(eng.step(now))
    assert out['f2'].modalities == MODALITY_VISION | MODALITY_VOICE
    assert out['f1'].modalities == MODALITY_VISION
    assert out['f2'].stamp_ns == now - 20 * MS        # the voice window is the newer input
    assert out['f2'].valence == 1.0 and out['f2'].arousal == 1.0   # fake: va = (vp, ap)


def test_stale_target_falls_back_to_largest_face():
    eng, _ = engine(voice_assignment='target', target_timeout=1.0)
    now = 10 * S
    eng.set_target('f2', now - 2 * S)                 # stale
    eng.set_faces([FaceBox('f1', 900.0), FaceBox('f2', 100.0)], now)
    eng.add_vision(vis('f1', now, NEUTRAL), now)
    eng.add_vision(vis('f2', now, NEUTRAL), now)
    eng.add_voice(voc(now, ANGRY), now)
    out = by_id(eng.step(now))
    assert out['f1'].modalities == 3 and out['f2'].modalities == 1


def test_all_policy_gives_voice_to_every_face():
    eng, _ = engine(voice_assignment='all')
    now = 10 * S
    eng.add_vision(vis('f1', now, NEUTRAL), now)
    eng.add_vision(vis('f2', now, NEUTRAL), now)
    eng.add_voice(voc(now, ANGRY), now)
    assert {e.modalities for e in eng.step(now).estimates} == {3}


def test_ambiguous_owner_leaves_voice_unfused_and_counts_it():
    eng, _ = engine(voice_assignment='largest')
    now = 10 * S
    eng.add_vision(vis('f1', now, NEUTRAL), now)
    eng.add_vision(vis('f2', now, NEUTRAL), now)
    eng.add_voice(voc(now, ANGRY), now)
    assert {e.modalities for e in eng.step(now).estimates} == {1}
    assert eng.voice_unassigned_steps == 1


def test_single_face_gets_voice_without_faces_topic():
    eng, _ = engine(voice_assignment='largest')
    now = 10 * S
    eng.add_vision(vis('f1', now, NEUTRAL), now)
    eng.add_voice(voc(now, ANGRY), now)
    assert [e.modalities for e in eng.step(now).estimates] == [3]


def test_audio_only_publishes_for_voice_id():
    eng, model = engine(voice_only_id='voice')
    now = 10 * S
    eng.add_voice(voc(now - 100 * MS, ANGRY), now)
    out = eng.step(now).estimates
    assert [(e.face_id, e.modalities, e.expression, e.frame_id) for e in out] == \
        [('voice', MODALITY_VOICE, 'angry', 'mic')]
    assert list(model.calls[-1]['vp']) == [0.0]


@pytest.mark.parametrize('setting', ['vocal', 'fusion'])
def test_audio_only_output_is_the_vocal_decision_or_the_heads(setting):
    """voice_only_output "vocal": the audio-only row publishes softmax(the feature's logits) with
    valence/arousal from the bundle's table, while the head still steps its state; a face's row
    and a feature without logits keep the head's output."""
    eng, model = engine(voice_only_output=setting, vocal_weight=0.0)
    model.va_table = np.array([[-0.5, 0.8], [0.8, 0.5], [0.0, 0.0], [-0.6, -0.4]], np.float32)
    now = 10 * S
    logits = np.array([0.0, 0.0, 0.0, 2.0], np.float32)       # the encoder says sad
    eng.add_voice(Feature(now - 100 * MS, 'voice', MODALITY_VOICE, onehot(ANGRY, 6),
                          frame_id='mic', labels=tuple(LABELS), logits=logits), now)
    (est,) = eng.step(now).estimates
    assert len(model.calls) == 1 and model.calls[0]['h'].shape == (1, 1, 4)   # the head ran
    assert eng.tracks.get('voice').state.h[0, 0, 0] == 1.0
    if setting == 'vocal':
        p = np.exp(logits - logits.max())
        p /= p.sum()
        assert est.expression == 'sad' and est.modalities == MODALITY_VOICE
        np.testing.assert_allclose(est.probabilities, p, atol=1e-6)
        assert (est.valence, est.arousal) == pytest.approx(tuple(p @ model.va_table), abs=1e-6)
    else:                         # the fake head reads the embedding: angry, va = (vp, ap)
        assert est.expression == 'angry' and (est.valence, est.arousal) == (0.0, 1.0)
    # a face in view (its row also gets the voice): the head's output whatever the setting
    # (vocal_weight 0; see the next test)
    eng.add_vision(Feature(now + 50 * MS, 'f1', MODALITY_VISION, onehot(HAPPY, 8, 2.0),
                           frame_id='camera'), now + 60 * MS)
    (face,) = eng.step(now + 60 * MS).estimates
    assert face.face_id == 'f1' and face.modalities == MODALITY_VISION | MODALITY_VOICE
    assert face.expression == 'happy' and (face.valence, face.arousal) == (1.0, 1.0)
    # a voice feature without logits gets the head's output
    eng2, m2 = engine(voice_only_output=setting)
    m2.va_table = model.va_table
    eng2.add_voice(voc(now - 100 * MS, ANGRY), now)
    assert eng2.step(now).estimates[0].expression == 'angry'


@pytest.mark.parametrize('weight', [0.0, 0.5, 1.0])
def test_vocal_weight_mixes_the_vocal_decision_into_face_rows_with_voice(weight):
    """vocal_weight w: a face row fused with a voice window publishes head x vocal ** w
    (renormalised; valence/arousal from the table); a face without voice keeps the head's."""
    eng, model = engine(vocal_weight=weight, voice_assignment='largest')
    model.scale = 1.0                                   # soft head probabilities
    model.va_table = np.array([[-0.5, 0.8], [0.8, 0.5], [0.0, 0.0], [-0.6, -0.4]], np.float32)
    now = 10 * S
    logits = np.array([0.0, 0.0, 0.0, 3.0], np.float32)
    eng.add_voice(Feature(now - 100 * MS, 'voice', MODALITY_VOICE, onehot(ANGRY, 6),
                          frame_id='mic', labels=tuple(LABELS), logits=logits), now)
    eng.set_faces([FaceBox('f1', 100.0), FaceBox('f2', 10.0)], now)
    eng.add_vision(vis('f1', now, HAPPY), now)
    eng.add_vision(vis('f2', now, HAPPY), now)
    out = by_id(eng.step(now))
    score = np.zeros(4)
    score[HAPPY] += 1.0
    head_f2 = np.exp(score) / np.exp(score).sum()      # vision only
    score[ANGRY] += 1.0
    head_f1 = np.exp(score) / np.exp(score).sum()      # vision + voice (the fake head)
    vocal = np.exp(logits) / np.exp(logits).sum()
    want = head_f1 * vocal ** weight
    want /= want.sum()
    np.testing.assert_allclose(out['f1'].probabilities, want, atol=1e-5)
    np.testing.assert_allclose(out['f2'].probabilities, head_f2, atol=1e-5)
    if weight:
        assert (out['f1'].valence, out['f1'].arousal) == pytest.approx(
            tuple(want @ model.va_table), abs=1e-5)
    else:
        assert (out['f1'].valence, out['f1'].arousal) == (1.0, 1.0)   # the fake's (vp, ap)


@pytest.mark.parametrize('vision_w, vocal_w', [(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)])
def test_vision_weight_mixes_the_face_decision_into_face_rows(vision_w, vocal_w):
    """vision_weight w: a face row publishes head x (softmax of the face feature's logits) ** w,
    with or without a voice window (x vocal ** vocal_weight where it has one); a face feature
    without logits, and the audio-only row, keep what they published before."""
    eng, model = engine(vision_weight=vision_w, vocal_weight=vocal_w,
                        voice_assignment='largest', voice_only_output='fusion')
    model.scale = 1.0
    model.va_table = np.array([[-0.5, 0.8], [0.8, 0.5], [0.0, 0.0], [-0.6, -0.4]], np.float32)
    now = 10 * S
    face_z = np.array([0.0, 0.0, 3.0, 0.0], np.float32)      # the face encoder says neutral
    voice_z = np.array([0.0, 0.0, 0.0, 3.0], np.float32)     # the vocal encoder says sad
    eng.add_voice(Feature(now - 100 * MS, 'voice', MODALITY_VOICE, onehot(ANGRY, 6),
                          frame_id='mic', labels=tuple(LABELS), logits=voice_z), now)
    eng.set_faces([FaceBox('f1', 100.0), FaceBox('f2', 10.0), FaceBox('f3', 5.0)], now)
    for fid in ('f1', 'f2'):
        eng.add_vision(Feature(now, fid, MODALITY_VISION, onehot(HAPPY, 8), frame_id='camera',
                               labels=tuple(LABELS), logits=face_z), now)
    eng.add_vision(vis('f3', now, HAPPY), now)                # no logits
    out = by_id(eng.step(now))

    def soft(z):
        e = np.exp(z - z.max())
        return e / e.sum()

    def mix(head, *terms):
        p = head.copy()
        for q, w in terms:
            p = p * q ** w
        return p / p.sum()

    score = np.zeros(4)
    score[HAPPY] += 1.0
    head_alone = soft(score)                                   # f2, f3: vision only
    score[ANGRY] += 1.0
    head_voice = soft(score)                                   # f1: the fake head reads both
    np.testing.assert_allclose(out['f1'].probabilities, mix(
        head_voice, (soft(face_z), vision_w), (soft(voice_z), vocal_w)), atol=1e-5)
    np.testing.assert_allclose(out['f2'].probabilities,
                               mix(head_alone, (soft(face_z), vision_w)), atol=1e-5)
    np.testing.assert_allclose(out['f3'].probabilities, head_alone, atol=1e-5)
    if vision_w:
        assert out['f2'].expression == 'neutral'             # the head alone: happy
        assert (out['f2'].valence, out['f2'].arousal) == pytest.approx(
            tuple(out['f2'].probabilities @ model.va_table), abs=1e-5)
    else:
        assert (out['f2'].valence, out['f2'].arousal) == (1.0, 0.0)   # the fake's (vp, ap)


def test_silence_without_faces_publishes_nothing():
    eng, _ = engine(require_speech=True)
    now = 10 * S
    eng.add_voice(voc(now, ANGRY, speech=False), now)
    assert eng.step(now).estimates == []


def test_voice_stop_switches_to_vision_only_without_gap():
    eng, _ = engine(slop=0.3, voice_max_age=2.0)
    t = 10 * S
    mods = []
    for k in range(30):
        now = t + k * 100 * MS
        eng.add_vision(vis('f1', now, HAPPY), now)
        if k < 10:
            eng.add_voice(voc(now, ANGRY), now)
        out = eng.step(now).estimates
        assert len(out) == 1        # one estimate every step: no gap
        mods.append(out[0].modalities)
    assert mods[:10] == [3] * 10
    first_vision_only = mods.index(1)
    assert mods[first_vision_only:] == [1] * (30 - first_vision_only)
    assert first_vision_only <= 14  # voice leaves once it is more than slop from the frame


@pytest.mark.parametrize('make,reason', [
    (lambda: Feature(1, 'f1', MODALITY_VISION, np.zeros(0, np.float32)), RejectReason.EMPTY),
    (lambda: Feature(1, 'f1', MODALITY_VISION, np.ones(7, np.float32)), RejectReason.WRONG_SIZE),
    (lambda: Feature(1, 'f1', MODALITY_VISION, np.array([np.nan] + [0.0] * 7, np.float32)),
     RejectReason.NOT_FINITE),
    (lambda: Feature(1, 'f1', MODALITY_VISION, np.array([np.inf] + [0.0] * 7, np.float32)),
     RejectReason.NOT_FINITE),
    (lambda: Feature(1, 'f1', MODALITY_VOICE, np.ones(8, np.float32)), RejectReason.WRONG_MODALITY),
    (lambda: Feature(1, '', MODALITY_VISION, np.ones(8, np.float32)), RejectReason.NO_SOURCE),
])
def test_bad_vision_inputs_rejected_and_counted(make, reason):
    eng, model = engine()
    assert eng.add_vision(make(), 1) == reason
    assert eng.rejected == {reason: 1}
    assert eng.step(1).estimates == [] and model.calls == []


def test_bad_voice_size_rejected():
    eng, _ = engine()
    bad = Feature(1, 'voice', MODALITY_VOICE, np.ones(8, np.float32))
    assert eng.add_voice(bad, 1) == RejectReason.WRONG_SIZE


def test_state_per_face_persists_and_resets_after_timeout():
    eng, model = engine(track_timeout=1.0)
    now = 10 * S
    for k in range(3):
        t = now + k * 100 * MS
        eng.add_vision(vis('f1', t, HAPPY), t)
        eng.step(t)
    assert model.calls[-1]['h'][0, 0, 0] == 2.0        # third step sees two earlier steps
    later = now + 5 * S
    res = eng.step(later)
    assert res.removed == ['f1'] and len(eng.tracks) == 0
    eng.add_vision(vis('f1', later, HAPPY), later)
    eng.step(later)
    assert model.calls[-1]['h'][0, 0, 0] == 0.0        # fresh state


def test_track_limit_bounds_rows_and_evicts_least_recent():
    eng, _ = engine(max_tracks=2, track_timeout=5.0)
    now = 10 * S
    eng.add_vision(vis('a', now, HAPPY), now)
    eng.add_vision(vis('b', now, HAPPY), now)
    eng.step(now)
    t = now + 1 * S
    eng.add_vision(vis('c', t, HAPPY), t)
    res = eng.step(t)
    assert [e.face_id for e in res.estimates] == ['c']
    assert len(res.removed) == 1 and res.removed[0] in ('a', 'b')
    assert len(eng.tracks) == 2


def test_hysteresis_applies_per_face():
    eng, _ = engine(hysteresis_steps=3, hysteresis_margin=1.0)
    t = 10 * S
    labels = []
    for k, lab in enumerate([HAPPY, SAD, SAD, SAD, SAD]):
        now = t + k * 100 * MS
        eng.add_vision(vis('f1', now, lab), now)
        labels.append(eng.step(now).estimates[0].expression)
    assert labels == ['happy', 'happy', 'happy', 'sad', 'sad']


def test_no_model_means_no_output_but_inputs_counted():
    eng = FusionEngine(FusionConfig())
    assert eng.add_vision(Feature(1, 'f1', MODALITY_VISION, np.zeros(0, np.float32)), 1) == \
        RejectReason.EMPTY
    eng.add_vision(Feature(1, 'f1', MODALITY_VISION, np.ones(3, np.float32)), 1)
    assert eng.step(1).estimates == []


def test_model_failure_reported_not_raised():
    eng, model = engine()

    def boom(*a):
        raise RuntimeError('kaput')
    model.fusion_step = boom
    eng.add_vision(vis('f1', 1, HAPPY), 1)
    res = eng.step(1)
    assert res.estimates == [] and 'kaput' in res.error and eng.model_errors == 1


def test_input_observer_sees_what_the_model_gets():
    eng, model = engine(voice_assignment='target')
    seen = []
    eng.input_observer = seen.append
    now = 10 * S
    eng.set_target('f1', now)
    eng.add_vision(vis('f1', now - 50 * MS, HAPPY), now)
    eng.add_vision(vis('f2', now - 40 * MS, SAD), now)
    logits = np.arange(len(LABELS), dtype=np.float32)
    eng.add_voice(Feature(now - 20 * MS, 'voice', MODALITY_VOICE, onehot(ANGRY, 6), speech=True,
                          frame_id='mic', labels=tuple(LABELS), logits=logits), now)
    eng.step(now)
    eng.add_vision(vis('f1', now + 50 * MS, HAPPY), now + 100 * MS)
    eng.step(now + 100 * MS)
    first, second = seen
    assert first.t_ns == now and first.face_ids == ['f1', 'f2']
    assert first.fresh == [True, True]                   # both tracks start from zero state
    assert first.stamps_ns == [now - 20 * MS, now - 40 * MS]   # newest contributing input
    assert np.array_equal(first.vision_emb, model.calls[0]['ve'])
    assert list(first.vision_present) == [1.0, 1.0] and list(first.voice_present) == [1.0, 0.0]
    assert np.array_equal(first.voice_emb[0], onehot(ANGRY, 6))
    # the vocal decision the window carries, for the face that got it; zeros for the other
    assert first.voice_logits.shape == (2, len(LABELS))
    assert np.array_equal(first.voice_logits[0], logits) and not first.voice_logits[1].any()
    assert second.fresh[second.face_ids.index('f1')] is False   # f1 carries its state on


@pytest.mark.parametrize('in_view_only', [True, False])
def test_a_face_the_newest_faces_list_leaves_out_gets_no_estimate(in_view_only):
    """faces_in_view_only: a face that left (or became another id) stops at the first FaceArray
    without it, though its last feature is still fresh; off: it repeats its last look for up
    to vision_max_age.  A face seen again, or one whose feature is as new as the list, goes on."""
    eng, _ = engine(faces_in_view_only=in_view_only, vision_max_age=0.5)
    t = 10 * S
    eng.set_faces([FaceBox('f1', 100.0)], t, stamp_ns=t)
    eng.add_vision(vis('f1', t, SAD), t)
    assert set(by_id(eng.step(t + MS))) == {'f1'}
    # the next frame shows f2 in f1's place (face_node re-identified it)
    t2 = t + 33 * MS
    eng.set_faces([FaceBox('f2', 100.0)], t2, stamp_ns=t2)
    eng.add_vision(vis('f2', t2, HAPPY), t2)
    out = by_id(eng.step(t2 + MS))
    assert set(out) == ({'f2'} if in_view_only else {'f1', 'f2'})
    assert eng.out_of_view_skips == int(in_view_only)
    # an older faces list (out of order) changes nothing; f1 back in view goes on at once
    eng.set_faces([FaceBox('f1', 100.0)], t2, stamp_ns=t)
    t3 = t2 + 33 * MS
    eng.set_faces([FaceBox('f1', 100.0), FaceBox('f2', 100.0)], t3, stamp_ns=t3)
    eng.add_vision(vis('f1', t3, SAD), t3)
    assert set(by_id(eng.step(t3 + MS))) == {'f1', 'f2'}
    # a feature as new as the list is kept even when the list misses it (one source of truth
    # at a time: the feature of that frame says the face was there)
    t4 = t3 + 33 * MS
    eng.add_vision(vis('f1', t4, SAD), t4)
    eng.set_faces([], t4, stamp_ns=t4)
    assert set(by_id(eng.step(t4 + MS))) == ({'f1'} if in_view_only else {'f1', 'f2'})


def test_faces_without_a_frame_stamp_gate_nothing():
    """Boxes alone (the voice policy's input, or the ROS4HRI source) never hide a face."""
    eng, _ = engine()
    t = 10 * S
    eng.add_vision(vis('f1', t, SAD), t)
    eng.set_faces([FaceBox('f9', 100.0)], t + 10 * MS)
    assert set(by_id(eng.step(t + 20 * MS))) == {'f1'}
