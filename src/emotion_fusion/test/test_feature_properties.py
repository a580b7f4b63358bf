"""Property-based tests (hypothesis) over every field of emotion_msgs/EmotionFeature as the
fusion engine takes it (source_id, modality, embedding, logits, labels, quality, speech, stamp):
an input is buffered or refused with a RejectReason, never raises, and a good input after bad
ones is still fused."""
from __future__ import annotations

import numpy as np
from fakes import LABELS, FakeFusion
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotion_fusion.config import FusionConfig
from emotion_fusion.features import MODALITY_VISION, MODALITY_VOICE, Feature, RejectReason
from emotion_fusion.fusion_engine import FusionEngine
from emotion_fusion.time_alignment import DropReason

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
NS = 1_000_000_000
NOW = 1_000 * NS
f32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
vectors = st.lists(f32, max_size=12).map(lambda v: np.asarray(v, np.float32))
label_lists = st.one_of(st.just(()), st.just(tuple(LABELS)), st.just(tuple(reversed(LABELS))),
                        st.lists(st.text(max_size=6), max_size=6).map(tuple))
features = st.builds(
    Feature,
    stamp_ns=st.one_of(st.integers(-2**63, 2**63 - 1), st.integers(NOW - 3 * NS, NOW + NS)),
    source_id=st.text(max_size=6), modality=st.integers(0, 255), embedding=vectors,
    quality=f32, speech=st.booleans(), frame_id=st.text(max_size=4),
    labels=label_lists, logits=st.one_of(st.none(), vectors))


def _good(modality: int, source: str, size: int, stamp: int) -> Feature:
    return Feature(stamp_ns=stamp, source_id=source, modality=modality,
                   embedding=np.full(size, 0.1, np.float32), labels=tuple(LABELS),
                   logits=np.zeros(len(LABELS), np.float32))


@SETTINGS
@given(bad=st.lists(st.tuples(st.booleans(), features), min_size=1, max_size=6))
def test_any_feature_is_buffered_or_refused_and_good_input_still_fuses(bad):
    model = FakeFusion()
    eng = FusionEngine(FusionConfig(), model, voice_window_s=1.0)
    for vision, f in bad:
        reason = (eng.add_vision if vision else eng.add_voice)(f, NOW)
        assert reason is None or reason in RejectReason.ALL or reason in DropReason.ALL
        eng.step(NOW)
    later = NOW + 10 * NS
    assert eng.add_vision(_good(MODALITY_VISION, 'good', 8, later), later) is None
    assert eng.add_voice(_good(MODALITY_VOICE, 'voice', 6, later), later) is None
    out = eng.step(later)
    assert [e.face_id for e in out.estimates] == ['good']
    assert np.isfinite(out.estimates[0].probabilities).all()


def test_label_order_of_the_producer_must_match_the_bundle():
    eng = FusionEngine(FusionConfig(), FakeFusion(), voice_window_s=1.0)
    swapped = Feature(stamp_ns=NOW, source_id='f1', modality=MODALITY_VISION,
                      embedding=np.zeros(8, np.float32), labels=tuple(reversed(LABELS)))
    assert eng.add_vision(swapped, NOW) == RejectReason.LABEL_MISMATCH
    assert eng.rejected[RejectReason.LABEL_MISMATCH] == 1
    unlabeled = Feature(stamp_ns=NOW, source_id='f1', modality=MODALITY_VISION,
                        embedding=np.zeros(8, np.float32))
    assert eng.add_vision(unlabeled, NOW) is None
