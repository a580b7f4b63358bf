"""Tests of the bundle loader and preprocessing, on a tiny bundle built without torch
(emotion_test_tools.tiny_bundle).

emotion_test_tools is not a <test_depend> of this package: it depends on emotion_runtime (its
generator writes bundles in this package's format), and colcon refuses a dependency cycle.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from emotion_runtime import preprocess
from emotion_runtime.model_bundle import BundleError, ModelBundle, default_bundle_path, load_manifest
from emotion_runtime.voice_windows import active_mask, aggregate, utterance_logits, window_starts, windows
from emotion_test_tools import tiny_bundle as testing

#: classes of the tiny bundle (the shipped bundle's labels)
C = len(testing.DEFAULT_LABELS)


@pytest.fixture(scope='module')
def bundle_dir(tmp_path_factory):
    return testing.make_tiny_bundle(tmp_path_factory.mktemp('b') / 'bundle')


def test_load_and_properties(bundle_dir):
    b = ModelBundle.load(bundle_dir, expected_labels=list(testing.DEFAULT_LABELS))
    assert b.labels == list(testing.DEFAULT_LABELS)
    assert b.face_input_size == 48 and b.sample_rate == 16000
    assert b.window_seconds == 1.0 and b.hop_seconds == 0.5
    assert b.vision_embedding_size > 0 and b.voice_embedding_size > 0


def test_summary_says_how_each_encoder_is_built(bundle_dir):
    test = ModelBundle.load(bundle_dir).summary
    assert 'bundle 0.0.0-test' in test and str(bundle_dir) in test
    assert 'vision single model float32' in test and 'vocal single model float32' in test
    assert ','.join(testing.DEFAULT_LABELS) in test
    # The shipped bundle: its manifest says ensembles, mirror TTA and an int8 vision graph.
    m = load_manifest(default_bundle_path())
    shipped = ModelBundle.load(default_bundle_path()).summary
    n_vision = len(m['vision']['architecture'].get('members', [])) or 1
    assert (f'{n_vision}-member ensemble' in shipped) == (n_vision > 1)
    assert ('int8' in shipped) == isinstance(m['vision'].get('quantization'), dict)
    assert '8-bit weights' not in shipped
    old = ModelBundle.load(default_bundle_path())
    old.manifest['vision']['quantization'].pop('weight_bound')      # as bundles before 0.8.1
    assert 'int8 with 8-bit weights' in old.summary and '--vision-7bit-weights' in old.summary


def test_encode_faces_any_size_grey_or_bgr(bundle_dir):
    b = ModelBundle.load(bundle_dir)
    crops = [np.zeros((30, 40), np.uint8), np.full((120, 90, 3), 200, np.uint8),
             np.full((48, 48, 4), 10, np.uint8)]
    emb, logits = b.encode_faces(crops)
    assert emb.shape == (3, b.vision_embedding_size) and logits.shape == (3, C)
    e0, l0 = b.encode_faces([])
    assert e0.shape == (0, b.vision_embedding_size) and l0.shape == (0, C)


def test_encode_voice_resamples(bundle_dir):
    b = ModelBundle.load(bundle_dir)
    rng = np.random.default_rng(0)
    e1, l1 = b.encode_voice_window(0.1 * rng.standard_normal(44100).astype(np.float32), 44100)
    e2, l2 = b.encode_voice_window(0.1 * rng.standard_normal(16000).astype(np.float32), 16000)
    assert e1.shape == e2.shape == (b.voice_embedding_size,) and l1.shape == (C,)


def test_fusion_step_state_and_va(bundle_dir):
    b = ModelBundle.load(bundle_dir)
    h, c = b.initial_state(2)
    assert h.shape == (1, 2, b.manifest['fusion']['hidden_size'])
    ve = np.ones((2, b.vision_embedding_size), np.float32)
    ae = np.ones((2, b.voice_embedding_size), np.float32)
    p, va, h2, c2 = b.fusion_step(ve, [1, 0], ae, [0, 1], h, c)
    assert p.shape == (2, C) and va.shape == (2, 2) and h2.shape == h.shape
    assert np.allclose(p.sum(1), 1, atol=1e-5)
    assert np.allclose(va, p @ b.va_table, atol=1e-5)
    assert not np.allclose(h2, 0)
    with pytest.raises(ValueError, match='state must be'):
        b.fusion_step(ve, [1, 0], ae, [0, 1], *b.initial_state(3))


def test_manifest_errors(bundle_dir, tmp_path):
    b = tmp_path / 'b'
    shutil.copytree(bundle_dir, b)
    m = json.loads((b / 'manifest.json').read_text())
    bad = dict(m, format='emotion-bundle/0')
    (b / 'manifest.json').write_text(json.dumps(bad))
    with pytest.raises(BundleError, match='"format"'):
        load_manifest(b)
    bad = dict(m)
    bad['vocal'] = {k: v for k, v in m['vocal'].items() if k != 'n_mels'}
    (b / 'manifest.json').write_text(json.dumps(bad))
    with pytest.raises(BundleError, match="lacks field.*n_mels"):
        load_manifest(b)
    bad = dict(m, labels=m['labels'][::-1])
    (b / 'manifest.json').write_text(json.dumps(bad))
    with pytest.raises(BundleError, match='label order'):
        ModelBundle.load(b, expected_labels=m['labels'])
    for floor in (0, -1e-6, 'x', True):
        bad = dict(m, vocal=dict(m['vocal'], log_floor=floor))
        (b / 'manifest.json').write_text(json.dumps(bad))
        with pytest.raises(BundleError, match='vocal.log_floor must be > 0'):
            load_manifest(b)
    for spec in ({'fraction': 0.1, 'over': 1.5}, {'fraction': 2, 'over': 1.5, 'floor': 0.02}, 'on'):
        bad = dict(m, vocal=dict(m['vocal'], noise_subtraction=spec))
        (b / 'manifest.json').write_text(json.dumps(bad))
        with pytest.raises(BundleError, match='vocal.noise_subtraction'):
            load_manifest(b)
    (b / 'manifest.json').write_text('{not json')
    with pytest.raises(BundleError, match='not readable JSON'):
        load_manifest(b)
    with pytest.raises(BundleError, match='does not exist'):
        load_manifest(tmp_path / 'missing')


def test_sha_mismatch_and_input_shape_mismatch(bundle_dir, tmp_path):
    b = tmp_path / 'b'
    shutil.copytree(bundle_dir, b)
    (b / 'fusion_step.onnx').write_bytes((b / 'fusion_step.onnx').read_bytes() + b'x')
    with pytest.raises(BundleError, match='fusion_step.onnx: sha256 mismatch'):
        ModelBundle.load(b)
    shutil.rmtree(b)
    shutil.copytree(bundle_dir, b)
    m = json.loads((b / 'manifest.json').read_text())
    m['vision']['input_size'] = 64                    # ONNX was exported for 48x48
    (b / 'manifest.json').write_text(json.dumps(m))
    with pytest.raises(BundleError, match="input 'image' has shape"):
        ModelBundle.load(b).encode_faces([np.zeros((48, 48), np.uint8)])


def test_model_card_names_the_shipped_bundle_and_its_files():
    """The model card beside the shipped bundle states its version and every file's sha256, so
    the card cannot describe another bundle than the one that loads."""
    path = default_bundle_path()
    card = (path / 'MODEL_CARD.md').read_text(encoding='utf-8')
    m = load_manifest(path)
    assert card.splitlines()[0].endswith(f'bundle {m["version"]}')
    for name, digest in m['files'].items():
        assert f'| `{name}` | `{digest}` |' in card, name


def test_default_bundle_path_env(monkeypatch, tmp_path):
    monkeypatch.setenv('EMOTION_MODEL_BUNDLE', str(tmp_path))
    assert default_bundle_path() == tmp_path
    monkeypatch.delenv('EMOTION_MODEL_BUNDLE')
    assert default_bundle_path().parts[-2:] == ('models', 'default')


def test_face_to_input_normalises():
    vision = {'input_size': 48, 'channels': 1, 'mean': 0.5, 'std': 0.25}
    x = preprocess.face_to_input(np.full((100, 80, 3), 255, np.uint8), vision)
    assert x.shape == (1, 48, 48) and x.dtype == np.float32 and np.allclose(x, 2.0)
    with pytest.raises(ValueError, match='shape'):
        preprocess.face_to_input(np.zeros((4, 4, 2), np.uint8), vision)


def test_logmel_and_resample():
    vocal = {'sample_rate': 16000, 'n_mels': 64, 'n_fft': 512, 'win_length': 400,
             'hop_length': 160, 'fmin': 50.0, 'fmax': 8000.0, 'window_seconds': 1.0,
             'hop_seconds': 0.5, 'normalisation': {'type': 'global', 'mean': -6.0, 'std': 4.0}}
    t = np.arange(16000) / 16000
    m = preprocess.logmel(np.sin(2 * np.pi * 440 * t).astype(np.float32), 16000, vocal)
    assert m.shape == (64, preprocess.logmel_frames(vocal)) and m.dtype == np.float32
    t2 = np.arange(22050) / 22050
    m2 = preprocess.logmel(np.sin(2 * np.pi * 440 * t2).astype(np.float32), 22050, vocal)
    assert m2.shape == m.shape
    assert int(m.mean(1).argmax()) == int(m2.mean(1).argmax())   # same dominant band
    assert preprocess.resample(np.zeros(22050, np.float32), 22050, 16000).shape == (16000,)


def test_voice_windows():
    assert window_starts(100, 40, 20) == [0, 20, 40, 60]
    assert window_starts(90, 40, 20) == [0, 20, 40, 50]          # end-aligned tail
    assert window_starts(10, 40, 20) == [0]
    w = windows(np.ones(5, np.float32), 10, 1.0, 0.5)
    assert len(w) == 1 and w[0].shape == (10,)                   # zero-padded
    loud, quiet = np.ones(10, np.float32), np.zeros(10, np.float32)
    assert active_mask([loud, quiet]).tolist() == [True, False]
    assert active_mask([quiet, quiet]).tolist() == [True, False]  # keep loudest if all silent
    assert aggregate(np.array([[1.0, 3.0], [3.0, 1.0]])).tolist() == [2.0, 2.0]


def test_utterance_logits(bundle_dir):
    b = ModelBundle.load(bundle_dir)
    rng = np.random.default_rng(0)
    x = np.concatenate([0.2 * rng.standard_normal(30000), np.zeros(20000)]).astype(np.float32)
    lg = utterance_logits(b, x, 22050)
    assert lg.shape == (C,)


def test_tiny_bundle_graphs_have_the_shipped_interface(bundle_dir):
    """The torch-free test bundle stands in for an exported one: every graph has the shipped
    graph's input and output names, element types and ranks, dynamic batch axes in the same
    places, and is deterministic (same seed, same bytes)."""
    tiny, shipped = ModelBundle.load(bundle_dir), ModelBundle.load(default_bundle_path())
    for key in ('vision', 'vocal', 'fusion'):
        for kind in ('get_inputs', 'get_outputs'):
            got = getattr(tiny.session(key), kind)()
            want = getattr(shipped.session(key), kind)()
            assert [a.name for a in got] == [b.name for b in want], (key, kind)
            for a, b in zip(got, want):
                assert a.type == b.type == 'tensor(float)', (key, a.name)
                assert len(a.shape) == len(b.shape), (key, a.name, a.shape, b.shape)
                assert ([isinstance(d, int) for d in a.shape]
                        == [isinstance(d, int) for d in b.shape]), (key, a.name, a.shape, b.shape)
    again = testing.make_tiny_bundle(bundle_dir.parent / 'again')
    assert load_manifest(again)['files'] == load_manifest(bundle_dir)['files']


def test_tiny_bundle_labels_follow_the_input(bundle_dir):
    """Random weights, but outputs depend on the input: different faces and sounds give different
    embeddings, and the same input the same output."""
    b = ModelBundle.load(bundle_dir)
    dark, bright = np.zeros((48, 48), np.uint8), np.full((48, 48), 255, np.uint8)
    emb, logits = b.encode_faces([dark, bright, dark])
    assert not np.allclose(emb[0], emb[1]) and np.array_equal(emb[0], emb[2])
    assert logits[0].argmax() != logits[1].argmax()
    rng = np.random.default_rng(3)
    noise = 0.1 * rng.standard_normal(16000).astype(np.float32)
    tone = (0.3 * np.sin(2 * np.pi * 300 * np.arange(16000) / 16000)).astype(np.float32)
    e1, _ = b.encode_voice_window(noise, 16000)
    e2, _ = b.encode_voice_window(tone, 16000)
    assert not np.allclose(e1, e2)
