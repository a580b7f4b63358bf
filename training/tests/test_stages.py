"""Each stage learns a small learnable task in seconds: loss falls and accuracy beats chance."""
from __future__ import annotations

import csv
import json

from emotion_training_helpers import LABELS3, TINY_VISION, TINY_VOCAL

CHANCE = 1 / len(LABELS3)


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_vision_stage_learns(trained):
    rows = _rows(trained['out'] / 'vision' / 'metrics.csv')
    assert float(rows[-1]['train_loss']) < float(rows[0]['train_loss'])
    res = json.loads((trained['out'] / 'vision' / 'result.json').read_text())
    assert res['best_uar'] > CHANCE + 0.2, res
    assert (trained['out'] / 'vision' / 'command.txt').read_text().startswith('emotion-train')


def test_vocal_stage_learns_speaker_independent(trained):
    rows = _rows(trained['out'] / 'vocal' / 'metrics.csv')
    assert float(rows[-1]['train_loss']) < float(rows[0]['train_loss'])
    res = json.loads((trained['out'] / 'vocal' / 'result.json').read_text())
    assert res['best_uar'] > CHANCE + 0.2, res


def test_fusion_stage_learns(trained):
    rows = _rows(trained['out'] / 'fusion' / 'metrics.csv')
    assert float(rows[-1]['train_loss']) < float(rows[0]['train_loss'])
    res = json.loads((trained['out'] / 'fusion' / 'result.json').read_text())
    assert res['best_uar'] > CHANCE + 0.2, res
    assert float(rows[-1]['var_fusion_input']) > 1e-3


def test_end2end_runs_and_freezes(trained, tmp_path):
    import torch

    from emotion_training.engine import load_checkpoint
    from emotion_training.train import main
    out = trained['out']
    assert main(['end2end', *trained['common'], '--init-vision', str(out / 'vision' / 'best.pt'),
                 '--init-vocal', str(out / 'vocal' / 'best.pt'),
                 '--init-fusion', str(out / 'fusion' / 'best.pt'), '--val-speakers', '10',
                 '--freeze', 'vocal', '--fusion-hidden', '16', '--epochs', '1',
                 '--steps-per-epoch', '3', '--batch-size', '8', '--optimizer', 'adamw',
                 '--lr', '1e-4', '--out', str(tmp_path / 'e2e')]) == 0
    before, after = load_checkpoint(out / 'vocal' / 'best.pt'), load_checkpoint(
        tmp_path / 'e2e' / 'last.pt')
    k = next(iter(before['model']))
    # frozen vocal encoder unchanged; the vision encoder was trained
    assert torch.equal(before['model'][k], after['model']['vocal.' + k])
    v0 = load_checkpoint(out / 'vision' / 'best.pt')['model']
    changed = [n for n, t in v0.items() if t.is_floating_point() and
               not torch.equal(t, after['model']['vision.' + n])]
    assert changed


def test_resume_continues_from_checkpoint(syn_data, tmp_path):
    from emotion_training.train import main
    common = ['--data', str(syn_data), '--labels', ','.join(LABELS3), '--quiet',
              '--threads', '1', *TINY_VISION, '--max-faces', '120', '--batch-size', '32',
              '--out', str(tmp_path / 'v')]
    assert main(['vision', *common, '--epochs', '1']) == 0
    assert main(['vision', *common, '--epochs', '2', '--resume',
                 str(tmp_path / 'v' / 'last.pt')]) == 0
    rows = _rows(tmp_path / 'v' / 'metrics.csv')
    assert [r['epoch'] for r in rows] == ['0', '1']


def test_resume_gives_what_an_uninterrupted_run_gives(syn_data, tmp_path, monkeypatch):
    """A run stopped after its first epoch and resumed from last.pt ends with the weights and
    the validation figures of the same run left alone (shuffling, augmentation and dropout
    draw the same numbers: the checkpoint carries the random state)."""
    import pytest
    import torch

    from emotion_training import engine
    from emotion_training.train import main

    def common(out):
        return ['vision', '--data', str(syn_data), '--labels', ','.join(LABELS3), '--quiet',
                '--threads', '1', *TINY_VISION, '--max-faces', '120', '--batch-size', '32',
                '--epochs', '3', '--out', str(tmp_path / out)]

    assert main(common('whole')) == 0

    class Stopped(Exception):
        pass

    save = engine.save_checkpoint

    def save_then_stop(path, payload):
        save(path, payload)
        if path.name == 'last.pt' and payload['epoch'] == 0:
            raise Stopped
    monkeypatch.setattr(engine, 'save_checkpoint', save_then_stop)
    with pytest.raises(Stopped):
        main(common('parts'))
    monkeypatch.setattr(engine, 'save_checkpoint', save)
    assert main([*common('parts'), '--resume', str(tmp_path / 'parts' / 'last.pt')]) == 0

    whole = engine.load_checkpoint(tmp_path / 'whole' / 'last.pt')
    parts = engine.load_checkpoint(tmp_path / 'parts' / 'last.pt')
    assert whole['epoch'] == parts['epoch'] == 2
    for k, t in whole['model'].items():
        assert torch.equal(t, parts['model'][k]), k
    keep = ('epoch', 'train_loss', 'train_acc', 'val_accuracy', 'val_uar')
    assert ([{k: r[k] for k in keep} for r in _rows(tmp_path / 'whole' / 'metrics.csv')]
            == [{k: r[k] for k in keep} for r in _rows(tmp_path / 'parts' / 'metrics.csv')])


def test_random_state_survives_a_checkpoint(tmp_path):
    """What the checkpoint stores of the random state loads back with weights_only and puts
    every generator where it was: python, numpy and torch globals, and a stage's torch and numpy
    generators (the fusion stage samples its pairs with a numpy one)."""
    import random
    from types import SimpleNamespace

    import numpy as np
    import torch

    from emotion_training.engine import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
    stage = SimpleNamespace(gen=torch.Generator().manual_seed(5), rng=np.random.default_rng(6))

    def draw():
        return (random.random(), float(np.random.normal()), float(torch.rand(1)),
                float(torch.rand(1, generator=stage.gen)), float(stage.rng.random()))
    draw()
    save_checkpoint(tmp_path / 'ck.pt', {'rng': rng_state(stage)})
    first = draw()
    assert draw() != first
    restore_rng_state(stage, load_checkpoint(tmp_path / 'ck.pt')['rng'])
    assert draw() == first


def test_vocal_cross_validation_reports_pooled(syn_data, tmp_path, capsys):
    from emotion_training.train import main
    assert main(['vocal', '--cv', '--cv-folds', '2', '--data', str(syn_data), '--labels',
                 ','.join(LABELS3), '--quiet', '--threads', '1', *TINY_VOCAL, '--epochs', '2',
                 '--batch-size', '16', '--out', str(tmp_path / 'cv')]) == 0
    res = json.loads((tmp_path / 'cv' / 'cv_result.json').read_text())
    assert len(res['folds']) == 2
    assert res['pooled']['n'] == 4 * 4 * 3
    assert {tuple(f['test_speakers']) for f in res['folds']} == {('03', '09'), ('08', '10')}


def test_train_help(capsys):
    import pytest

    from emotion_training.train import main
    with pytest.raises(SystemExit):
        main(['--help'])
    assert 'vision' in capsys.readouterr().out


def test_fusion_trains_on_real_pairs(trained, syn_data, tmp_path):
    """CREMA-D layout with video: real-pair sequences are built and mixed into training."""
    from emotion_training.synthetic import write_cremad
    from emotion_training.train import main
    crema = write_cremad(tmp_path / 'crema', LABELS3, ['1001', '1002', '1003', '1004', '1005'],
                         seconds=1.6)
    out = trained['out']
    assert main(['fusion', *trained['common'], '--init-vision', str(out / 'vision' / 'best.pt'),
                 '--init-vocal', str(out / 'vocal' / 'best.pt'), '--val-speakers', '10',
                 '--pairs', str(crema), '--pairs-fraction', '0.5', '--epochs', '2',
                 '--steps-per-epoch', '10', '--batch-size', '16', '--seq-steps', '3',
                 '--optimizer', 'adamw', '--lr', '0.01', '--fusion-hidden', '16',
                 '--out', str(tmp_path / 'f')]) == 0
    assert json.loads((tmp_path / 'f' / 'result.json').read_text())['best_uar'] > 0


def test_real_pair_clip_sequence(tmp_path):
    import numpy as np

    from emotion_training.config import VISION_PREPROCESS, VOCAL_PREPROCESS
    from emotion_training.datasets import load_cremad
    from emotion_training.real_pairs import clip_sequence
    from emotion_training.synthetic import write_cremad
    crema = write_cremad(tmp_path, ['sad'], ['1001'], seconds=1.6)
    s = load_cremad(crema, LABELS3)[0]
    seq = clip_sequence(s, 2, VISION_PREPROCESS, VOCAL_PREPROCESS, steps=4)
    # 1.6 s at 1 s windows / 0.5 s hop -> windows at 0, 0.5 and end-aligned 0.6 s; 4th padded
    assert seq['fp'].tolist() == [1, 1, 1, 0] and seq['vp'][:3].all() and seq['vp'][3] == 0
    assert seq['faces'].shape == (4, 1, 48, 48) and np.abs(seq['faces'][0]).sum() > 0


def test_real_pairs_are_calibrated_per_actor(tmp_path):
    """A speaker-normalised bundle's real pairs: each actor's speech windows are normalised by
    that actor's own statistics (per band mean 0), whatever its recording level."""
    import numpy as np
    import soundfile as sf

    from emotion_training.config import VISION_PREPROCESS, VOCAL_PREPROCESS
    from emotion_training.datasets import load_cremad
    from emotion_training.real_pairs import load_real_sequences
    from emotion_training.synthetic import write_cremad
    crema = write_cremad(tmp_path, LABELS3, ['1001', '1002'], seconds=1.6)
    for f in (crema / 'AudioWAV').glob('1002_*.wav'):          # actor 1002 recorded 26 dB lower
        audio, rate = sf.read(str(f), dtype='float32')
        sf.write(str(f), 0.05 * audio, rate)
    samples = load_cremad(crema, LABELS3)
    norm = {'type': 'speaker', 'mean': [-6.0] * 64, 'std': [4.0] * 64, 'prior_frames': 0.0}
    seqs = load_real_sequences(samples, LABELS3, VISION_PREPROCESS,
                               dict(VOCAL_PREPROCESS, normalisation=norm), steps=3)
    for actor in ('1001', '1002'):
        v = np.concatenate([q['voice'][q['vp'] > 0] for q, s in zip(seqs, samples)
                            if s.speaker == actor])
        np.testing.assert_allclose(v.mean(axis=(0, 1, 3)), 0.0, atol=1e-3)


def test_checkpoints_record_their_split_and_leaky_warm_starts_warn(trained, syn_data, tmp_path,
                                                                    capfd):
    """A warm start whose checkpoint learnt this run's validation faces or speakers is flagged."""
    from emotion_training.engine import load_checkpoint
    from emotion_training.splits import face_split
    from emotion_training.train import main
    out, common = trained['out'], trained['common']
    vision_ck = load_checkpoint(out / 'vision' / 'best.pt')
    assert vision_ck['split'] == face_split(syn_data / 'fer2013' / 'train', None, 0.1, 0)
    assert load_checkpoint(out / 'vocal' / 'best.pt')['split'] == {
        'train_speakers': ['03', '08', '09']}
    tiny = [*TINY_VISION, '--epochs', '1', '--max-batches', '1', '--batch-size', '16']
    capfd.readouterr()
    # same split: no warning
    assert main(['vision', *common, *tiny, '--init-vision', str(out / 'vision' / 'best.pt'),
                 '--out', str(tmp_path / 'same')]) == 0
    assert 'WARNING' not in capfd.readouterr().err
    # another holdout seed: the checkpoint trained on part of this validation set
    reseeded = [a if a != '0' else '1' for a in common]
    assert main(['vision', *reseeded, *tiny, '--init-vision', str(out / 'vision' / 'best.pt'),
                 '--out', str(tmp_path / 'reseeded')]) == 0
    assert 'trained on another face split' in capfd.readouterr().err
    # fusion validating on a speaker the vocal encoder heard
    assert main(['fusion', *common, '--init-vision', str(out / 'vision' / 'best.pt'),
                 '--init-vocal', str(out / 'vocal' / 'best.pt'), '--val-speakers', '08',
                 '--epochs', '1', '--steps-per-epoch', '1', '--batch-size', '8',
                 '--fusion-hidden', '16', '--out', str(tmp_path / 'fusion')]) == 0
    err = capfd.readouterr().err
    assert "trained on validation speakers ['08']" in err and 'face split' not in err


def test_vocal_training_normalisation_matches_the_node_preprocessing():
    """The vocal stage normalises raw log-mel windows itself; the node gets the same numbers from
    preprocess.logmel with the manifest section the stage writes (all normalisation kinds; for
    'speaker', once the node's calibration has heard the same windows)."""
    import numpy as np

    from emotion_runtime.preprocess import logmel, normalise_logmel
    from emotion_runtime.speaker_calibration import SpeakerCalibration
    from emotion_training.config import VOCAL_PREPROCESS
    from emotion_training.stages.vocal import _normalisation
    from emotion_training.voice_data import normalise_windows, raw_vocal_section
    rng = np.random.default_rng(0)
    rate = int(VOCAL_PREPROCESS['sample_rate'])
    t = np.arange(rate) / rate
    windows = [(0.3 * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(rate))
               .astype(np.float32) for f in (150.0, 420.0, 1300.0)]
    raw = raw_vocal_section(dict(VOCAL_PREPROCESS))
    x = np.stack([logmel(w, rate, raw)[None] for w in windows])
    quiet = [0.2 * w for w in windows]             # a quieter speaker than the population
    xq = np.stack([logmel(w, rate, raw)[None] for w in quiet])
    for kind in ('global', 'per_window', 'speaker'):
        norm = _normalisation(x, dict(VOCAL_PREPROCESS), kind, prior_seconds=1.0)
        assert norm['type'] == kind
        section = dict(VOCAL_PREPROCESS, normalisation=norm)
        trained = normalise_windows(xq, ['03'] * len(xq), norm)
        prior_only = np.stack([logmel(w, rate, section)[None] for w in quiet])
        if kind == 'speaker':
            cal = SpeakerCalibration.from_manifest(norm)
            cal.update(xq)
            node = np.stack([normalise_logmel(logmel(w, rate, raw), norm, calibration=cal)[None]
                             for w in quiet])
            # calibration removes most of the level difference that the prior alone keeps
            assert abs(trained.mean()) < 0.5 * abs(prior_only.mean())
        else:
            node = prior_only
        np.testing.assert_allclose(trained, node, rtol=1e-4, atol=1e-4)


def test_mixup_mixes_inputs_and_labels_with_one_lambda():
    import torch

    from emotion_training.stages.common import mix_batch
    x = torch.randn(6, 1, 3, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    xm, ya, yb, lam = mix_batch(x, y, 0.4, torch.Generator().manual_seed(3))
    assert 0.0 < lam < 1.0 and torch.equal(ya, y)
    partners = (xm - lam * x) / (1 - lam)     # row i = x[perm[i]]
    perm = [int(torch.cdist(p.view(1, -1), x.view(6, -1)).argmin()) for p in partners]
    assert sorted(perm) == list(range(6))
    assert torch.allclose(partners, x[perm], atol=1e-4)
    assert torch.equal(yb, y[perm])
    again = mix_batch(x, y, 0.4, torch.Generator().manual_seed(3))
    assert torch.equal(again[0], xm) and again[3] == lam


def test_vision_stage_learns_with_mixup(syn_data, tmp_path):
    from emotion_training.train import main
    assert main(['vision', '--data', str(syn_data), '--labels', ','.join(LABELS3), '--quiet',
                 '--seed', '0', '--threads', '1', *TINY_VISION, '--epochs', '6',
                 '--batch-size', '32', '--optimizer', 'adamw', '--lr', '0.01', '--augment', '0.3',
                 '--mixup', '0.4', '--out', str(tmp_path / 'vm')]) == 0
    rows = _rows(tmp_path / 'vm' / 'metrics.csv')
    assert float(rows[-1]['train_loss']) < float(rows[0]['train_loss'])
    res = json.loads((tmp_path / 'vm' / 'result.json').read_text())
    assert res['best_uar'] > CHANCE + 0.2, res


def test_device_names_resolve_and_a_missing_gpu_is_a_clear_error():
    import pytest
    import torch

    from emotion_training.train import resolve_device
    assert resolve_device('cpu') == torch.device('cpu')
    assert resolve_device('auto').type == ('cuda' if torch.cuda.is_available() else 'cpu')
    with pytest.raises(SystemExit, match='--device'):
        resolve_device('gpu0')
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='sees no CUDA GPU'):
            resolve_device('cuda')


def test_learning_rate_schedule_survives_runs_of_any_length():
    """A 5-step run (e.g. 600 faces, batch 128, one epoch) once crashed OneCycleLR with a division
    by zero; every short run must train, and a full-length one must still anneal to ~0."""
    import argparse

    import torch

    from emotion_training.train import make_optimizer
    for steps in range(1, 31):
        model = torch.nn.Linear(2, 2)
        args = argparse.Namespace(optimizer='adamw', lr=0.01, weight_decay=0.0, epochs=1)
        opt, sched = make_optimizer(args, model, steps)
        used = []
        for _ in range(steps):
            used.append(opt.param_groups[0]['lr'])
            opt.step()
            sched.step()
        assert all(0 <= lr <= 0.01 for lr in used)
        assert max(used) >= 0.01 / 25 * 0.99, (steps, used)  # it does train (warm-up starts at lr/25)
        if steps >= 10:
            assert used[-1] < 1e-4, (steps, used[-1])  # the last step is annealed


def test_vocal_mel_parameters_reach_the_checkpoint_and_the_bundle(syn_data, trained, tmp_path):
    import pytest

    from emotion_runtime.model_bundle import ModelBundle
    from emotion_runtime.voice_windows import utterance_logits
    from emotion_training.audio_io import read_mono
    from emotion_training.engine import load_checkpoint
    from emotion_training.export import main as export_main
    from emotion_training.train import main
    common = ['vocal', '--data', str(syn_data), '--labels', ','.join(LABELS3), '--quiet',
              '--threads', '1', *TINY_VOCAL, '--epochs', '1', '--batch-size', '16',
              '--val-speakers', '10']
    assert main([*common, '--n-mels', '40', '--n-fft', '1024', '--win-length', '800',
                 '--out', str(tmp_path / 'm')]) == 0
    pre = load_checkpoint(tmp_path / 'm' / 'last.pt')['preprocess']
    assert (pre['n_mels'], pre['n_fft'], pre['win_length']) == (40, 1024, 800)
    out = trained['out']
    assert export_main(['--vision', str(out / 'vision' / 'best.pt'), '--vocal',
                        str(tmp_path / 'm' / 'last.pt'), '--fusion', str(out / 'fusion' / 'best.pt'),
                        '--out', str(tmp_path / 'bundle')]) == 0
    bundle = ModelBundle.load(tmp_path / 'bundle')
    assert bundle.manifest['vocal']['n_mels'] == 40
    audio, rate = read_mono(sorted((syn_data / 'emodb' / 'wav').glob('*.wav'))[0])
    assert utterance_logits(bundle, audio, rate).shape == (len(LABELS3),)
    with pytest.raises(SystemExit, match='--win-length 800 is longer than --n-fft 512'):
        main([*common, '--win-length', '800', '--out', str(tmp_path / 'bad')])


def test_semaine_segments_carry_offsets_and_valence_arousal_targets(tmp_path):
    import numpy as np

    from emotion_runtime.preprocess import logmel
    from emotion_training.audio_io import read_mono
    from emotion_training.config import VISION_PREPROCESS, VOCAL_PREPROCESS
    from emotion_training.datasets import load_semaine
    from emotion_training.labels import VALENCE_AROUSAL
    from emotion_training.real_pairs import clip_sequence, semaine_segments
    from emotion_training.synthetic import write_semaine
    from emotion_training.voice_data import raw_vocal_section
    root = write_semaine(tmp_path, LABELS3, ['7'], seconds_per_label=3.0)
    sessions = load_semaine(root)
    segs = semaine_segments(sessions, VOCAL_PREPROCESS, steps=4)
    # 9 s session, segments of 4 windows (1 s every 0.5 s = 2.5 s) every 2 s: 0, 2, 4, 6 s
    assert [s.extra['start'] for s in segs] == [0.0, 2.0, 4.0, 6.0]
    seg = segs[2]
    seq = clip_sequence(seg, -1, VISION_PREPROCESS, VOCAL_PREPROCESS, steps=4)
    assert seq['label'] == -1 and seq['fp'].all() and seq['vp'].all()
    # window centres 4.5-6.0 s lie in the second label block (3-6 s) but the last (6.0 s) on
    # its edge: the targets follow the traces there
    assert np.allclose(seq['va'], sessions[0].va_at(4.0 + np.array([0.5, 1.0, 1.5, 2.0])),
                       atol=1e-5)
    second = min(LABELS3, key=lambda k: np.abs(np.array(VALENCE_AROUSAL[k]) - seq['va'][0]).sum())
    assert np.abs(np.array(VALENCE_AROUSAL[second]) - seq['va'][0]).max() < 0.15
    audio, sr = read_mono(seg.audio)
    want = logmel(audio[4 * sr + sr // 2:5 * sr + sr // 2], sr, raw_vocal_section(VOCAL_PREPROCESS))
    assert np.allclose(seq['voice'][1, 0], want, atol=1e-4)   # the 2nd window starts at 4.5 s


def test_fusion_learns_valence_arousal_from_semaine(trained, tmp_path, capfd):
    """SEMAINE segments (no categorical labels) train the head's valence/arousal output: with
    the trace loss the validation V/A error ends lower than in the same run without it."""
    import re

    import pytest

    from emotion_training.synthetic import write_semaine
    from emotion_training.train import main
    root = write_semaine(tmp_path / 'semaine', LABELS3, ['1', '2', '3', '4', '5'],
                         seconds_per_label=2.0)
    out = trained['out']
    args = ['fusion', *trained['common'], '--init-vision', str(out / 'vision' / 'best.pt'),
            '--init-vocal', str(out / 'vocal' / 'best.pt'), '--val-speakers', '10',
            '--pairs', str(root), '--epochs', '4', '--steps-per-epoch', '15',
            '--batch-size', '16', '--seq-steps', '3', '--optimizer', 'adamw', '--lr', '0.01',
            '--fusion-hidden', '16']
    with pytest.raises(SystemExit, match='pairs-fraction'):
        main([*args, '--pairs-fraction', '1', '--out', str(tmp_path / 'x')])
    final = {}
    for weight in ('1', '0'):
        capfd.readouterr()
        assert main([*args, '--pairs-fraction', '0.5', '--va-weight', weight,
                     '--out', str(tmp_path / f'f{weight}')]) == 0
        err = capfd.readouterr().err
        errors = [float(v) for v in re.findall(r'val valence/arousal error .*? ([0-9.]+) on', err)]
        assert len(errors) == 4, err
        final[weight] = errors[-1]
        result = json.loads((tmp_path / f'f{weight}' / 'result.json').read_text())
        assert result['best_uar'] > CHANCE    # UAR from the labelled pseudo-pairs only
    assert final['1'] < final['0'] - 0.05, final


def test_vision_stage_learns_under_bf16_autocast(syn_data, tmp_path, capsys, monkeypatch):
    """--bf16 (for the GPU route) autocasts the forward pass; the weights stay float32 and the
    stage still learns.  Runs here with CPU autocast, which takes the same code path."""
    import torch

    from emotion_training.engine import load_checkpoint
    from emotion_training.stages.vision import VisionStage
    from emotion_training.train import main
    seen = []
    loss = VisionStage.loss

    def spy(self, batch):
        seen.append(torch.is_autocast_enabled('cpu'))
        return loss(self, batch)
    monkeypatch.setattr(VisionStage, 'loss', spy)
    assert main(['vision', '--data', str(syn_data), '--labels', ','.join(LABELS3), '--quiet',
                 '--seed', '0', '--threads', '1', *TINY_VISION, '--epochs', '10', '--bf16',
                 '--batch-size', '32', '--optimizer', 'adamw', '--lr', '0.01',
                 '--out', str(tmp_path / 'vb')]) == 0
    rows = _rows(tmp_path / 'vb' / 'metrics.csv')
    assert float(rows[-1]['train_loss']) < float(rows[0]['train_loss'])
    assert json.loads((tmp_path / 'vb' / 'result.json').read_text())['best_uar'] > CHANCE + 0.2
    assert 'device cpu, bf16 autocast' in capsys.readouterr().err
    assert seen and all(seen)
    weights = load_checkpoint(tmp_path / 'vb' / 'best.pt')['model']
    assert all(w.dtype == torch.float32 for w in weights.values() if w.is_floating_point())
