"""Room noise for the voice model (``room_noise``): levels, training copies (one room per speaker
and copy, through ``voice_data.file_windows``), ``emotion-train vocal --noise-copies`` and
``emotion-eval speech --noise-dbfs``."""
import json
import pathlib

import numpy as np
import pytest

from emotion_training.datasets import load_emodb
from emotion_training.room_noise import NOISE_KINDS, add_room_noise, room_noise
from emotion_training.voice_data import file_windows, noisy_copies


@pytest.mark.parametrize('kind', NOISE_KINDS)
def test_noise_has_the_asked_level_and_repeats_with_its_seed(kind):
    x = room_noise(kind, 32000, -60.0, np.random.default_rng(0))
    assert x.dtype == np.float32 and x.size == 32000
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1e-3, rel=0.02)
    speech = np.zeros(16000, np.float32)
    a = add_room_noise(speech, 16000, kind, -40.0, seed=3)
    assert np.array_equal(a, add_room_noise(speech, 16000, kind, -40.0, seed=3))
    assert not np.array_equal(a, add_room_noise(speech, 16000, kind, -40.0, seed=4))
    assert np.abs(add_room_noise(np.ones(100, np.float32), 16000, kind, 0.0, seed=1)).max() <= 1.0
    with pytest.raises(ValueError, match='noise kind'):
        room_noise('rain', 10, -60.0, np.random.default_rng(0))


def test_noisy_copies_give_each_speaker_one_room_per_copy(syn_data):
    from emotion_training_helpers import LABELS3

    from emotion_training.config import VOCAL_PREPROCESS
    samples = load_emodb(syn_data / 'emodb', LABELS3)
    copies = noisy_copies(samples, 2, (-50.0, -30.0), ['white', 'fan'], seed=1)
    assert len(copies) == 2 * len(samples)
    rooms = {}
    for c, s in zip(copies, samples * 2):
        assert c.label == s.label and c.path == s.path and c.speaker.startswith(s.speaker + '~room')
        kind, dbfs, _seed = c.extra['room_noise']
        assert kind in ('white', 'fan') and -50.0 <= dbfs <= -30.0
        rooms.setdefault(c.speaker, set()).add((kind, dbfs))
    assert len(rooms) == 2 * len({s.speaker for s in samples})
    assert all(len(r) == 1 for r in rooms.values())               # one room per speaker and copy
    assert 'room_noise' not in samples[0].extra                    # the originals are untouched
    # the windows of a noisy copy are the clean file's with the noise in them
    vocal = dict(VOCAL_PREPROCESS, normalisation={'type': 'none'})
    clean, _, _ = file_windows(samples[:1], LABELS3, vocal, 0.5, 'clean')
    noisy, _, _ = file_windows(copies[:1], LABELS3, vocal, 0.5, 'noisy')
    assert noisy.shape[1:] == clean.shape[1:] and len(noisy) >= len(clean)
    quiet = clean[0].min()                            # the quietest log-mel bin of the clean file
    assert noisy[0].min() > quiet + 1.0               # the noise floor lifts it


def test_vocal_training_with_noisy_copies_and_eval_in_noise(syn_data, trained, trained_bundle,
                                                            tmp_path, capsys):
    from emotion_training_helpers import TINY_VOCAL

    from emotion_training.evaluate import main as eval_main
    from emotion_training.train import main as train_main
    assert train_main(['vocal', *trained['common'], *TINY_VOCAL, '--epochs', '1',
                       '--batch-size', '16', '--val-speakers', '10', '--noise-copies', '1',
                       '--noise-dbfs', '-50', '-40', '--log-floor', '2e-5',
                       '--out', str(tmp_path / 'v')]) == 0
    log = capsys.readouterr().err
    assert '1 noisy copy of the training files' in log and "['white', 'fan']" in log
    n_clean = int(log.split('train files -> ')[1].split()[0])
    assert train_main(['vocal', *trained['common'], *TINY_VOCAL, '--epochs', '1',
                       '--batch-size', '16', '--val-speakers', '10',
                       '--out', str(tmp_path / 'v0')]) == 0
    n0 = int(capsys.readouterr().err.split('train files -> ')[1].split()[0])
    assert n_clean == 2 * n0                          # every training window, clean and noisy
    # the checkpoint and a bundle made from it say how the encoder was trained
    from emotion_runtime.model_bundle import ModelBundle
    from emotion_training.engine import load_checkpoint
    from emotion_training.export import main as export_main
    noise = {'copies': 1, 'kinds': ['white', 'fan'], 'dbfs': [-50.0, -40.0]}
    assert load_checkpoint(tmp_path / 'v' / 'last.pt')['room_noise'] == noise
    assert 'room_noise' not in load_checkpoint(tmp_path / 'v0' / 'last.pt')
    assert export_main(['--from-bundle', str(trained_bundle), '--vocal',
                        str(tmp_path / 'v' / 'last.pt'), '--out', str(tmp_path / 'b')]) == 0
    made = ModelBundle.load(tmp_path / 'b')
    text = json.dumps(made.manifest['training'])
    assert '1 noisy copy (white/fan room noise at -50 to -40 dBFS)' in text
    assert made.manifest['vocal']['log_floor'] == 2e-5    # the front end the encoder learnt on
    silent = made.voice_logmel(np.zeros(made.window_samples, np.float32), made.sample_rate)
    np.testing.assert_allclose(silent, np.log(2e-5), atol=1e-5)
    with pytest.raises(SystemExit, match='--log-floor must be > 0'):
        train_main(['vocal', *trained['common'], *TINY_VOCAL, '--epochs', '1',
                    '--log-floor', '0', '--out', str(tmp_path / 'x')])
    with pytest.raises(SystemExit, match='noise-kinds'):
        train_main(['vocal', *trained['common'], *TINY_VOCAL, '--epochs', '1',
                    '--noise-copies', '1', '--noise-kinds', 'rain', '--out', str(tmp_path / 'x')])

    wav = str(syn_data / 'emodb' / 'wav')
    assert eval_main(['speech', '--bundle', str(trained_bundle), wav]) == 0
    clean = _json_line(capsys.readouterr().out)
    assert 'room_noise' not in clean
    assert eval_main(['speech', '--bundle', str(trained_bundle), '--noise-dbfs', '-3',
                      '--noise-kind', 'fan', wav]) == 0
    loud = _json_line(capsys.readouterr().out)
    assert loud['room_noise'] == {'kind': 'fan', 'dbfs': -3.0} and loud['n'] == clean['n']
    assert loud['confusion'] != clean['confusion']    # the noise reaches the encoder


def _json_line(out: str) -> dict:
    return json.loads([ln for ln in out.splitlines() if ln.startswith('{')][-1])


def test_noise_kind_choices_match_the_module():
    from emotion_training.evaluate import build_parser
    args = build_parser().parse_args(['speech', '--noise-dbfs', '-60', str(pathlib.Path('.'))])
    assert args.noise_kind == 'white' and args.noise_dbfs == -60.0
