"""``emotion-train voiceprint``: export of a Resemblyzer-format encoder, per-speaker calibration
of its window features and the linear head (training/emotion_training/voiceprint.py)."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('sklearn')

from emotion_runtime.speaker_calibration import SpeakerCalibration  # noqa: E402
from emotion_runtime.voiceprint import Voiceprint  # noqa: E402
from emotion_training import voiceprint as vpt  # noqa: E402


def _resemblyzer_like(path):
    """Random weights in Resemblyzer's checkpoint layout ({'model_state': lstm.*, linear.*})."""
    torch.manual_seed(0)
    lstm, linear = torch.nn.LSTM(40, 256, 3, batch_first=True), torch.nn.Linear(256, 256)
    state = {f'lstm.{k}': v for k, v in lstm.state_dict().items()}
    state.update({f'linear.{k}': v for k, v in linear.state_dict().items()})
    state['similarity_weight'] = torch.tensor([10.0])     # the GE2E loss's, not used
    torch.save({'model_state': state, 'step': 1}, str(path))
    return lstm, linear


def test_export_gives_the_runtime_the_torch_features(tmp_path):
    lstm, linear = _resemblyzer_like(tmp_path / 'pretrained.pt')
    diff = vpt.export_voiceprint(tmp_path / 'pretrained.pt', tmp_path / vpt.VOICEPRINT_FILE)
    assert diff < 1e-4
    section = dict(file=vpt.VOICEPRINT_FILE, **vpt.MEL, gain_dbfs=vpt.GAIN_DBFS, weight=0.5,
                   normalisation={}, head={'weight': [[0.0] * 512], 'bias': [0.0]})
    runtime = Voiceprint(tmp_path, section, 16000)
    rng = np.random.default_rng(0)
    wins = [0.1 * rng.standard_normal(16000).astype(np.float32) for _ in range(2)]
    got = runtime.features(wins)
    mel = torch.from_numpy(np.stack([runtime.mel(w) for w in wins]))
    with torch.no_grad():
        out, (h, _) = lstm(mel)
        ref = torch.cat([linear(h[-1]), out.mean(1)], 1).numpy()
    assert got.shape == (2, 512)
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_weights_of_another_model_are_refused_naming_the_file(tmp_path):
    torch.save({'model_state': {'conv.weight': torch.zeros(3)}}, str(tmp_path / 'other.pt'))
    with pytest.raises(SystemExit, match='other.pt: not Resemblyzer voice encoder weights'):
        vpt.export_voiceprint(tmp_path / 'other.pt', tmp_path / 'x.onnx')


def _speakers_data(seed=0, per=40):
    """Two classes separable after each speaker's offset is removed, not before."""
    rng = np.random.default_rng(seed)
    feats, labels, speakers, owner = [], [], [], []
    for s, offset in enumerate([-3.0, 0.0, 3.0]):
        for i in range(per):
            y = i % 2
            feats.append(rng.normal(offset + (0.8 if y else -0.8), 0.3, size=4))
            labels.append(y)
            speakers.append(f'spk{s}')
            owner.append(s * per + i // 2)          # two windows per file
    return (np.asarray(feats, np.float32), np.asarray(labels), np.asarray(speakers),
            np.asarray(owner))


def test_online_calibration_is_the_runtime_one_file_by_file():
    x, _, spk, owner = _speakers_data()
    norm = {'type': 'speaker', 'mean': [0.0] * 4, 'std': [1.0] * 4, 'prior_frames': 10.0}
    got = vpt.calibrated(x, owner, spk, norm, 'online')
    cal = SpeakerCalibration.from_manifest(norm)
    first = owner == 0
    cal.update(x[first].T)
    np.testing.assert_allclose(got[first], cal.normalise(x[first].T).T, atol=1e-5)
    offline = vpt.calibrated(x, owner, spk, norm, 'offline')
    one = spk == 'spk2'
    cal = SpeakerCalibration.from_manifest(norm)
    cal.update(x[one].T)
    np.testing.assert_allclose(offline[one], cal.normalise(x[one].T).T, atol=1e-5)
    assert not np.allclose(got[first], offline[first], atol=1e-2)


@pytest.mark.parametrize('mode', ['offline', 'online', 'both'])
def test_head_reads_the_calibrated_features_and_absent_labels_never_win(mode):
    x, y, spk, owner = _speakers_data()
    norm, weight, bias = vpt.fit_head(x, y, owner, spk, num_labels=3, C=1.0, calibration=mode)
    assert norm['type'] == 'speaker' and len(norm['mean']) == 4
    assert norm['prior_frames'] == vpt.PRIOR_WINDOWS
    assert weight.shape == (3, 4) and bias[2] == -30.0 and not weight[2].any()
    xt, yt, st, ot = _speakers_data(seed=1)
    z = vpt.calibrated(xt, ot, st, norm, 'offline')
    pred = (z @ weight.T + bias).argmax(1)
    assert (pred == yt).mean() > 0.9


def test_emotion_train_voiceprint_writes_a_bundle_the_runtime_and_eval_read(tmp_path):
    """The command end to end on generated EmoDB- and RAVDESS-named speech: the new bundle
    verifies, carries the member with its source and training record, scores speech through
    ``emotion-eval``'s code, and a second run on it replaces the member instead of stacking."""
    from emotion_runtime.model_bundle import ModelBundle
    from emotion_test_tools.tiny_bundle import make_tiny_bundle
    from emotion_training.evaluate import speech_logits
    from emotion_training.stages.vocal import load_speech
    from emotion_training.synthetic import write_emodb, write_ravdess
    labels = ['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise']
    data = tmp_path / 'data'
    write_emodb(data / 'emodb', labels[:6], ['03', '08'], per_speaker_class=1)
    write_ravdess(data / 'ravdess', labels, ['01', '02', '03'], per_actor_class=1)
    norm = {'type': 'speaker', 'mean': [-6.0] * 64, 'std': [4.0] * 64, 'prior_frames': 100.0}
    base = make_tiny_bundle(tmp_path / 'base', vocal_normalisation=norm)
    _resemblyzer_like(tmp_path / 'pretrained.pt')
    args = ['--data', str(data), '--bundle', str(base), '--weights', str(tmp_path / 'pretrained.pt'),
            '--train-speakers', 'emodb:03,emodb:08,ravdess:01,ravdess:02', '--weight', '0.4',
            '--version', '9.9.9']
    assert vpt.main(args + ['--out', str(tmp_path / 'vp')]) == 0
    b = ModelBundle.load(tmp_path / 'vp')
    section = b.manifest['vocal']['voiceprint']
    assert b.manifest['version'] == '9.9.9' and section['weight'] == 0.4
    assert np.asarray(section['head']['weight']).shape == (7, 512)
    assert section['training']['speakers'] == ['emodb:03', 'emodb:08', 'ravdess:01', 'ravdess:02']
    assert 'Apache-2.0' in section['source']['licence'] and len(section['source']['weights_sha256']) == 64
    speech = load_speech(argparse.Namespace(speech='emodb,ravdess', data=str(data)), labels)
    test = [s for s in speech if s.speaker == 'ravdess:03']
    _, logits, y, kept = speech_logits(b, test, False, 'online')
    assert logits.shape == (len(test), 7) and len(kept) == len(test)
    _, alone, _, _ = speech_logits(ModelBundle.load(base), test, False, 'online')
    assert not np.allclose(logits, alone, atol=1e-3)     # the member moves the decision
    # built again on the new bundle: one member, one note
    assert vpt.main(args + ['--bundle', str(tmp_path / 'vp'), '--out', str(tmp_path / 'vp2')]) == 0
    note = ModelBundle.load(tmp_path / 'vp2').manifest['vocal']['outputs_note']
    assert note.count('voiceprint head') == 1
    with pytest.raises(SystemExit, match='exists and is not empty'):
        vpt.main(args + ['--out', str(tmp_path / 'vp')])
    with pytest.raises(SystemExit, match='--weight 1.5: must be in'):
        vpt.main(args[:-4] + ['--weight', '1.5', '--out', str(tmp_path / 'vp3')])
    # noisy copies: every file once more in its speaker's room, calibrated as that speaker there
    assert vpt.main(args + ['--noise-copies', '1', '--noise-dbfs', '-40', '-35',
                            '--out', str(tmp_path / 'noisy')]) == 0
    noisy = ModelBundle.load(tmp_path / 'noisy').manifest['vocal']['voiceprint']
    assert noisy['training']['files'] == 2 * section['training']['files']
    assert noisy['training']['room_noise']['dbfs'] == [-40.0, -35.0]
    assert noisy['training']['speakers'][:2] == ['emodb:03', 'emodb:03~room0']
    assert not np.allclose(noisy['head']['weight'], section['head']['weight'], atol=1e-4)
    with pytest.raises(SystemExit, match=r"--noise-kinds 'white,rain': \['rain'\] unknown"):
        vpt.main(args + ['--noise-copies', '1', '--noise-kinds', 'white,rain',
                         '--out', str(tmp_path / 'vp4')])
