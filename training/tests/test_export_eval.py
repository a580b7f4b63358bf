"""Export round trip, bundle verification errors and the emotion-eval CLI contract."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from emotion_runtime.model_bundle import BundleError, ModelBundle
from emotion_runtime.preprocess import face_to_input
from emotion_training.evaluate import main as eval_main
from emotion_training.export import main as export_main
from emotion_training.synthetic import write_face_folders


def test_export_round_trip_torch_vs_onnxruntime(trained, tmp_path):
    from emotion_training.export import models_from_checkpoints
    out = trained['out']
    ck = [str(out / s / 'best.pt') for s in ('vision', 'vocal', 'fusion')]
    assert export_main(['--vision', ck[0], '--vocal', ck[1], '--fusion', ck[2],
                        '--out', str(tmp_path / 'b')]) == 0
    bundle = ModelBundle.load(tmp_path / 'b', expected_labels=['happy', 'neutral', 'sad'])
    labels, vision, vpre, vocal, apre, fusion, _ = models_from_checkpoints(*ck)
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (60, 50, 3), dtype=np.uint8) for _ in range(3)]
    emb, logits = bundle.encode_faces(crops)
    x = torch.from_numpy(np.stack([face_to_input(c, vpre) for c in crops]))
    with torch.no_grad():
        te, tl = vision.eval()(x)
    assert np.allclose(emb, te.numpy(), atol=1e-4) and np.allclose(logits, tl.numpy(), atol=1e-4)
    w = (0.1 * rng.standard_normal(bundle.window_samples)).astype(np.float32)
    ae, al = bundle.encode_voice_window(w, bundle.sample_rate)
    with torch.no_grad():
        re, rl = vocal.eval()(torch.from_numpy(bundle.voice_input(w, bundle.sample_rate)[None]))
    assert np.allclose(ae, re[0].numpy(), atol=1e-4) and np.allclose(al, rl[0].numpy(), atol=1e-4)
    h, c = bundle.initial_state(3)
    p, va, h, c = bundle.fusion_step(emb, np.ones(3), np.tile(ae, (3, 1)), [1, 0, 1], h, c)
    assert np.allclose(p.sum(1), 1, atol=1e-5)
    assert np.allclose(va, p @ bundle.va_table, atol=1e-5)


def test_corrupt_bundle_and_label_order(bundle_dir, tmp_path):
    b = tmp_path / 'b'
    shutil.copytree(bundle_dir, b)
    with pytest.raises(BundleError, match='label order'):
        ModelBundle.load(b, expected_labels=['sad', 'happy', 'angry', 'disgust', 'fear',
                                             'neutral'])
    with open(b / 'vision_encoder.onnx', 'r+b') as f:
        f.seek(100)
        f.write(b'\x00\x01\x02')
    with pytest.raises(BundleError, match='vision_encoder.onnx: sha256 mismatch'):
        ModelBundle.load(b)
    shutil.copy(bundle_dir / 'vision_encoder.onnx', b / 'vision_encoder.onnx')
    ModelBundle.load(b)
    (b / 'vocal_encoder.onnx').unlink()
    with pytest.raises(BundleError, match='vocal_encoder.onnx is missing'):
        ModelBundle.load(b)


def _json_line(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    return json.loads(lines[0])


def test_eval_faces_contract_and_plot(bundle_dir, tmp_path, capsys):
    write_face_folders(tmp_path / 'faces', ['happy', 'sad'], 3, size=64, colour=True)
    (tmp_path / 'faces' / 'happy').rename(tmp_path / 'faces' / 'happiness')
    write_face_folders(tmp_path / 'faces', ['neutral'], 2)
    (tmp_path / 'faces' / 'neutral').rename(tmp_path / 'faces' / 'contempt')
    assert eval_main(['faces', '--bundle', str(bundle_dir), '--plot', str(tmp_path / 'cm.png'),
                      str(tmp_path / 'faces')]) == 0
    res = _json_line(capsys.readouterr().out)
    assert res['n'] == 6 and res['skipped_classes'] == {'contempt': 2}   # reported, not scored
    assert set(res) >= {'n', 'accuracy', 'uar', 'macro_f1', 'per_class_recall', 'labels',
                        'confusion'}
    assert (tmp_path / 'cm.png').stat().st_size > 1000


def test_eval_unreadable_image_names_file(bundle_dir, tmp_path, capsys):
    write_face_folders(tmp_path / 'faces', ['sad'], 1)
    (tmp_path / 'faces' / 'sad' / 'broken.png').write_bytes(b'not an image')
    with pytest.raises(SystemExit, match='broken.png'):
        eval_main(['faces', '--bundle', str(bundle_dir), str(tmp_path / 'faces')])
    assert eval_main(['faces', '--bundle', str(bundle_dir), '--skip-unreadable',
                      str(tmp_path / 'faces')]) == 0
    assert _json_line(capsys.readouterr().out)['n'] == 1


def test_eval_speech_emodb_names_and_unreadable(bundle_dir, syn_data, tmp_path, capsys):
    assert eval_main(['speech', '--bundle', str(bundle_dir), str(syn_data / 'emodb' / 'wav')]) == 0
    assert _json_line(capsys.readouterr().out)['n'] == 4 * 4 * 3
    (tmp_path / 'sad').mkdir()
    (tmp_path / 'sad' / 'x.wav').write_bytes(b'RIFF0000WAVEjunk')
    with pytest.raises(SystemExit, match='x.wav'):
        eval_main(['speech', '--bundle', str(bundle_dir), str(tmp_path)])


def test_eval_missing_bundle_is_clear(tmp_path):
    with pytest.raises(SystemExit, match='does not exist'):
        eval_main(['faces', '--bundle', str(tmp_path / 'nope'), str(tmp_path)])


def test_shipped_bundle_on_real_validation_subset(data_root, tmp_path, capsys):
    """Smoke check of the committed bundle on a few real validation faces."""
    from emotion_runtime.model_bundle import default_bundle_path
    if not (default_bundle_path() / 'manifest.json').is_file():
        pytest.skip('no shipped bundle yet')
    src = data_root / 'fer2013' / 'validation'
    for cls in ('happy', 'sad'):
        (tmp_path / cls).mkdir()
        for f in sorted((src / cls).glob('*.jpg'))[:20]:
            (tmp_path / cls / f.name).symlink_to(f)
    assert eval_main(['faces', str(tmp_path)]) == 0
    res = _json_line(capsys.readouterr().out)
    assert res['n'] == 40 and res['accuracy'] > 0.4


def test_flip_tta_export_is_mirror_invariant(tmp_path):
    from emotion_training.config import VISION_PREPROCESS, VOCAL_PREPROCESS
    from emotion_training.export import export_bundle
    from emotion_training.labels import DEFAULT_LABELS
    from emotion_training.testing import tiny_models
    vision, vocal, fusion = tiny_models()
    vision.set_flip_tta(True)
    b = ModelBundle.load(export_bundle(tmp_path / 'b', list(DEFAULT_LABELS), vision,
                                       dict(VISION_PREPROCESS), vocal, dict(VOCAL_PREPROCESS),
                                       fusion))
    assert b.manifest['vision']['test_time_augmentation'] != 'none'
    face = np.random.default_rng(0).integers(0, 255, (48, 48), dtype=np.uint8)
    e1, l1 = b.encode_faces([face])
    e2, l2 = b.encode_faces([face[:, ::-1].copy()])
    assert np.allclose(l1, l2, atol=1e-5) and np.allclose(e1, e2, atol=1e-5)


def test_export_takes_encoders_from_args_not_fusion_checkpoint(trained, tmp_path):
    """A fusion checkpoint contains frozen encoder copies; --vocal must still win."""
    from emotion_training.engine import load_checkpoint, save_checkpoint
    out = trained['out']
    ck = load_checkpoint(out / 'vocal' / 'best.pt')
    ck['model'] = {k: (v * 0.5 if v.is_floating_point() and v.ndim > 1 else v)
                   for k, v in ck['model'].items()}
    save_checkpoint(tmp_path / 'vocal_changed.pt', ck)
    args = ['--vision', str(out / 'vision' / 'best.pt'), '--fusion',
            str(out / 'fusion' / 'best.pt')]
    export_main([*args, '--vocal', str(out / 'vocal' / 'best.pt'), '--out', str(tmp_path / 'a')])
    export_main([*args, '--vocal', str(tmp_path / 'vocal_changed.pt'), '--out',
                 str(tmp_path / 'b')])
    w = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    ea, _ = ModelBundle.load(tmp_path / 'a').encode_voice_window(w, 16000)
    eb, _ = ModelBundle.load(tmp_path / 'b').encode_voice_window(w, 16000)
    assert not np.allclose(ea, eb)


def test_eval_speech_any_rate_and_length_in_class_folders(trained_bundle, tmp_path, capsys):
    import soundfile as sf

    from emotion_training.synthetic import tone
    rng = np.random.default_rng(5)
    for lab, rate, secs in (('happiness', 8000, 3.3), ('sadness', 44100, 0.4),
                            ('neutral', 16000, 1.0)):
        (tmp_path / lab).mkdir()
        canon = {'happiness': 'happy', 'sadness': 'sad'}.get(lab, lab)
        sf.write(str(tmp_path / lab / 'a.wav'), tone(canon, rng, secs, rate), rate)
    sf.write(str(tmp_path / 'neutral' / 'stereo.wav'),
             np.stack([tone('neutral', rng, 2.0, 22050)] * 2, axis=1), 22050)
    assert eval_main(['speech', '--bundle', str(trained_bundle), str(tmp_path)]) == 0
    res = _json_line(capsys.readouterr().out)
    assert res['n'] == 4 and res['labels'] == ['happy', 'neutral', 'sad']


def test_speaker_normalised_vocal_stage_matches_emotion_eval_and_ignores_gain(
        syn_data, trained, tmp_path, capsys):
    """--vocal-normalisation speaker: the bundle carries the population prior, emotion-eval
    calibrates per speaker and reproduces the stage's own validation score, and a held-out
    speaker recorded 20 dB quieter is read the same (the point of calibrating)."""
    import csv

    import soundfile as sf
    from emotion_training_helpers import LABELS3, TINY_VOCAL

    from emotion_training.audio_io import read_mono
    from emotion_training.train import main as train_main
    out = trained['out']
    assert train_main(['vocal', *trained['common'], *TINY_VOCAL, '--epochs', '6',
                       '--batch-size', '16', '--optimizer', 'adamw', '--lr', '0.01',
                       '--val-speakers', '10', '--vocal-normalisation', 'speaker',
                       '--speaker-prior-seconds', '0', '--out', str(tmp_path / 'v')]) == 0
    assert export_main(['--vision', str(out / 'vision' / 'best.pt'), '--vocal',
                        str(tmp_path / 'v' / 'last.pt'), '--fusion',
                        str(out / 'fusion' / 'best.pt'), '--out', str(tmp_path / 'b')]) == 0
    norm = ModelBundle.load(tmp_path / 'b').manifest['vocal']['normalisation']
    assert norm['type'] == 'speaker' and len(norm['mean']) == len(norm['std']) == 64
    loud, quiet = tmp_path / 'loud', tmp_path / 'quiet'
    loud.mkdir()
    quiet.mkdir()
    for f in sorted((syn_data / 'emodb' / 'wav').glob('10*.wav')):
        shutil.copy(f, loud / f.name)
        audio, rate = read_mono(f)
        sf.write(str(quiet / f.name), 0.1 * audio, rate)
    results = {}
    for name, folder in (('loud', loud), ('quiet', quiet)):
        assert eval_main(['speech', '--bundle', str(tmp_path / 'b'), str(folder)]) == 0
        results[name] = _json_line(capsys.readouterr().out)
    with open(tmp_path / 'v' / 'metrics.csv') as f:
        last = list(csv.DictReader(f))[-1]
    assert results['loud']['n'] == 4 * len(LABELS3)
    assert results['loud']['accuracy'] == pytest.approx(float(last['val_accuracy']), abs=1e-6)
    assert results['loud']['uar'] > 1.0 / len(LABELS3)
    assert results['quiet']['confusion'] == results['loud']['confusion']
    assert 'per speaker' in results['loud']['speaker_calibration']
    assert eval_main(['speech', '--calibration', 'none', '--bundle', str(tmp_path / 'b'),
                      str(quiet)]) == 0
    assert _json_line(capsys.readouterr().out)['speaker_calibration'].startswith('none')
    # online, as the node: the first file is scored with little of the speaker heard, yet the
    # quiet speaker is read like the loud one once the calibration has learnt it
    online = {}
    for name, folder in (('loud', loud), ('quiet', quiet)):
        assert eval_main(['speech', '--calibration', 'online', '--bundle', str(tmp_path / 'b'),
                          str(folder)]) == 0
        online[name] = _json_line(capsys.readouterr().out)
    assert 'learnt while scoring' in online['loud']['speaker_calibration']
    assert online['quiet']['confusion'] == online['loud']['confusion']
