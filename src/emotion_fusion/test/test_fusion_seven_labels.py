"""A seven-label bundle (surprise included) through the encoders and the fusion engine, without
torch and without rclpy: the engine, the Emotion fields and the REP-155 names follow the bundle's
own label list (its manifest), whatever the shipped bundle has."""
import numpy as np
import pytest

from emotion_fusion.config import FusionConfig
from emotion_fusion.features import MODALITY_VISION, MODALITY_VOICE, Feature
from emotion_fusion.fusion_engine import FusionEngine
from emotion_runtime.labels import shipped_labels
from emotion_runtime.model_bundle import BundleError, ModelBundle
from emotion_runtime.rep155 import REP155_EXPRESSIONS, expression_name
from emotion_test_tools.tiny_bundle import PROJECT_LABELS, VALENCE_AROUSAL, make_tiny_bundle

S = 1_000_000_000
SEVEN = ['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise']


def test_seven_label_bundle_through_encoders_and_fusion(tmp_path):
    assert list(PROJECT_LABELS) == SEVEN
    path = make_tiny_bundle(tmp_path / 'b7', labels=SEVEN)
    bundle = ModelBundle.load(path, expected_labels=SEVEN)
    assert bundle.labels == SEVEN
    assert bundle.manifest['valence_arousal']['surprise'] == list(VALENCE_AROUSAL['surprise'])
    if list(shipped_labels()) != SEVEN:     # the nodes' default expects the shipped order
        with pytest.raises(BundleError, match='label order'):
            ModelBundle.load(path, expected_labels=shipped_labels())
    rng = np.random.default_rng(0)
    v_emb, v_logits = bundle.encode_faces([rng.integers(0, 255, (64, 64), dtype=np.uint8)])
    a_emb, a_logits = bundle.encode_voice_window(
        (0.1 * rng.standard_normal(bundle.window_samples)).astype(np.float32), bundle.sample_rate)
    assert v_logits.shape == (1, 7) and a_logits.shape == (7,)
    cfg = FusionConfig.from_mapping({'expected_labels': ','.join(SEVEN), 'hysteresis_steps': 1,
                                     'hysteresis_margin': 1.0, 'voice_assignment': 'all'})
    engine = FusionEngine(cfg, bundle)
    now = 10 * S
    assert engine.add_vision(Feature(now, 'f1', MODALITY_VISION, v_emb[0], frame_id='cam',
                                     labels=tuple(SEVEN), logits=v_logits[0]), now) is None
    assert engine.add_voice(Feature(now, 'voice', MODALITY_VOICE, a_emb, frame_id='mic',
                                    labels=tuple(SEVEN), logits=a_logits), now) is None
    (est,) = engine.step(now).estimates
    assert est.labels == SEVEN and est.probabilities.shape == (7,)
    assert abs(float(est.probabilities.sum()) - 1.0) < 1e-5
    assert est.modalities == MODALITY_VISION | MODALITY_VOICE
    assert est.expression in SEVEN and expression_name(est.expression) in REP155_EXPRESSIONS
    # valence/arousal = probabilities @ the manifest's table, surprise row included
    table = np.array([VALENCE_AROUSAL[k] for k in SEVEN])
    assert np.allclose([est.valence, est.arousal], est.probabilities @ table, atol=1e-4)
    # a feature carrying the six-label order is refused by a seven-label engine
    six = tuple(SEVEN[:6])
    assert engine.add_vision(Feature(now, 'f1', MODALITY_VISION, v_emb[0], labels=six,
                                     logits=v_logits[0, :6]), now) is not None
