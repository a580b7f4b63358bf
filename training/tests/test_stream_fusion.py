"""`emotion-train stream-fusion`: the fusion head trained on replayed streams.

Synthetic sequences for the learning tests, a torch-exported test bundle for the head swap, and
synthetic faces and RAVDESS-named speech for the whole command (no shared data needed).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from emotion_training_helpers import LABELS6, write_ravdess

from emotion_runtime.model_bundle import ModelBundle, sha256_of
from emotion_training import stream_fusion as sfu
from emotion_training.export import export_fusion_head
from emotion_training.models.fusion_model import FusionModel
from emotion_training.splits import (
    FUSION_TRAIN,
    FUSION_VAL,
    STREAM_DEV,
    STREAM_FUSION,
    stream_faces,
    stream_half,
)
from emotion_training.synthetic import write_face_folders

EV, EA, C = 8, 6, 3


def _model(seed: int = 0) -> FusionModel:
    torch.manual_seed(seed)
    return FusionModel(EV, EA, C, [[0.0, 0.0]] * C, hidden_size=16, dropout=0.0)


def _sequence(rng, runner: str, T: int, change_every: int = 25) -> dict:
    """Labels change every ``change_every`` steps; vision says the label with noise, voice says
    it on the steps it is present (about a third)."""
    y = np.repeat(rng.integers(0, C, T // change_every + 1), change_every)[:T]
    ve = rng.normal(0, 1.0, (T, EV)).astype(np.float32)
    ae = rng.normal(0, 1.0, (T, EA)).astype(np.float32)
    ve[np.arange(T), y] += 2.0
    ae[np.arange(T), y] += 2.0
    vp = np.ones(T, np.float32) if runner != 'voice_only' else np.zeros(T, np.float32)
    ap = (rng.random(T) < 0.35).astype(np.float32) if runner != 'vision_only' \
        else np.zeros(T, np.float32)
    if runner == 'voice_only':
        ap[:] = 1.0
    al = np.zeros((T, C), np.float32)          # the vocal decision each voice window carries
    al[ap > 0] = ae[ap > 0, :C]
    return {'runner': runner, 've': ve, 'vp': vp, 'ae': ae, 'ap': ap, 'al': al,
            'y': y.astype(np.int64)}


def _sequences(seed: int, n: int = 8, T: int = 150) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [_sequence(rng, r, T) for r in sfu.RUNNERS for _ in range(n)]


def test_sequences_follow_the_engine_tracks():
    # two runners; face 0 of 'fused' restarts (fresh) at its 3rd row; rows interleaved in time
    steps = {'runner': np.array([0, 0, 1, 0, 0, 0], np.int8),
             't_ns': np.array([1, 1, 1, 2, 3, 2], np.int64),
             'face': np.array([0, 1, 0, 0, 0, 1], np.int32),
             'fresh': np.array([True, True, True, False, True, False]),
             've': np.arange(6, dtype=np.float32)[:, None] * np.ones((1, EV), np.float32),
             'vp': np.ones(6, np.float32), 'ae': np.zeros((6, EA), np.float32),
             'ap': np.zeros(6, np.float32), 'al': np.zeros((6, C), np.float32),
             'y': np.array([0, 1, 2, 0, 1, 1])}
    seqs = sfu.sequences(steps)
    got = sorted((s['runner'], tuple(s['ve'][:, 0].astype(int))) for s in seqs)
    assert got == [('fused', (0, 3)), ('fused', (1, 5)), ('fused', (4,)), ('vision_only', (2,))]


def test_stage_learns_each_runner_and_follows_label_changes(tmp_path):
    from emotion_training.engine import FitConfig, fit
    labels = ['a', 'b', 'c']
    train, val = _sequences(0), _sequences(1, n=3)
    model = _model()
    before = sfu.runner_scores(model, val, labels)
    stage = sfu.StreamFusionStage(model, labels, train, val, window=60, batch_size=16,
                                  steps_per_epoch=20, voice_dropout=0.2, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    best = fit(stage, opt, None, FitConfig(epochs=6, out_dir=tmp_path, patience=6, quiet=True),
               log=lambda m: None)
    model.load_state_dict(torch.load(tmp_path / 'best.pt', weights_only=True)['model'])
    after = sfu.runner_scores(model, val, labels)
    assert best['best_uar'] > 0.85
    for name in sfu.RUNNERS:
        assert after[name]['uar'] > 0.75, (name, before, after)
        assert after[name]['uar'] > before[name]['uar'] + 0.2, (name, before, after)
    # the fused runner follows a change of the label within a few steps
    s = next(s for s in val if s['runner'] == 'fused')
    with torch.no_grad():
        t = {k: torch.from_numpy(s[k])[None] for k in ('ve', 'vp', 'ae', 'ap')}
        pred = model(t['ve'], t['vp'], t['ae'], t['ap'])[0][0].argmax(-1).numpy()
    settled = np.array([k % 25 >= 5 for k in range(s['y'].size)])
    assert (pred[settled] == s['y'][settled]).mean() > 0.85
    # collapse diagnostics were computed on the fusion input each epoch
    header = (tmp_path / 'metrics.csv').read_text().splitlines()[0]
    assert 'var_fusion_input' in header


def test_published_logits_add_the_vocal_decision_to_face_rows_with_voice():
    """As fusion_node publishes with vocal_weight: head probabilities x vocal decision ** w,
    renormalised, only where a face row has a voice window with logits."""
    model = _model().eval()
    rng = np.random.default_rng(0)
    T = 4
    b = {'ve': rng.normal(size=(1, T, EV)), 'ae': rng.normal(size=(1, T, EA)),
         'vp': np.array([[1, 1, 0, 1]]), 'ap': np.array([[1, 0, 1, 1]]),
         'al': rng.normal(size=(1, T, C))}
    b['al'][0, 3] = 0.0                        # a window without logits
    b = {k: torch.tensor(v, dtype=torch.float32) for k, v in b.items()}
    with torch.no_grad():
        head, _ = model(b['ve'], b['vp'], b['ae'], b['ap'])
        assert torch.equal(sfu.published_logits(model, b, 0.0), head)
        got = sfu.published_logits(model, b, 0.5)
    p_head = torch.softmax(head[0, 0], -1).numpy()
    p_voc = torch.softmax(b['al'][0, 0], -1).numpy() ** 0.5
    want = p_head * p_voc / (p_head * p_voc).sum()
    assert np.allclose(torch.softmax(got[0, 0], -1).numpy(), want, atol=1e-6)
    # no voice, no face (the audio-only track publishes the decision itself), no logits
    assert torch.equal(got[0, 1:], head[0, 1:])


def test_stage_with_vocal_weight_trains_for_the_published_output(tmp_path):
    """The voice embedding is noise and the vocal decision is right: the head alone cannot
    learn the voice, the published output (head x decision) is scored and early-stopped on."""
    from emotion_training.engine import FitConfig, fit
    labels = ['a', 'b', 'c']

    def vocal_only(seqs):
        rng = np.random.default_rng(5)
        for s in seqs:
            s['ve'] = rng.normal(0, 1.0, s['ve'].shape).astype(np.float32)
            s['ae'] = rng.normal(0, 1.0, s['ae'].shape).astype(np.float32)
            if s['runner'] == 'fused':
                s['ap'] = np.ones_like(s['ap'])
            s['al'] = np.where(s['ap'][:, None] > 0,
                               3.0 * np.eye(C, dtype=np.float32)[s['y']], 0.0)
        return seqs
    train, val = vocal_only(_sequences(0)), vocal_only(_sequences(1, n=3))
    model = _model()
    stage = sfu.StreamFusionStage(model, labels, train, val, window=60, batch_size=16,
                                  steps_per_epoch=10, voice_dropout=0.0, seed=0,
                                  vocal_weight=1.0)
    b = stage._batch([s for s in train if s['runner'] == 'fused'][:4])
    with_vocal = stage.loss(b)[0].item()
    stage.vocal_weight = 0.0
    assert with_vocal < stage.loss(b)[0].item()     # the loss reads the decision
    stage.vocal_weight = 1.0
    best = fit(stage, torch.optim.AdamW(model.parameters(), lr=1e-2), None,
               FitConfig(epochs=2, out_dir=tmp_path, patience=2, quiet=True), log=lambda m: None)
    published = sfu.runner_scores(model, val, labels, vocal_weight=1.0)
    alone = sfu.runner_scores(model, val, labels)
    assert published['fused']['uar'] > 0.95 and alone['fused']['uar'] < 0.6, (published, alone)
    # early stopping scored the published output: the fused third of the validation steps is
    # right, the other two (no face with voice: the head alone on noise) at chance
    assert best['best_uar'] > 0.5


def test_stage_warns_and_skips_classes_without_steps(caplog):
    seqs = _sequences(0, n=2)
    for s in seqs:
        s['y'] = np.where(s['y'] == 2, 0, s['y'])
    stage = sfu.StreamFusionStage(_model(), ['a', 'b', 'c'], seqs, seqs, 20, 4, 1, 0.0, 0)
    assert stage.class_weight[2] == 0 and stage.class_weight[0] > 0
    assert 'no training steps of' in caplog.text
    for s in seqs:
        s['y'][:] = -1
    with pytest.raises(ValueError, match='no labelled training steps'):
        sfu.StreamFusionStage(_model(), ['a', 'b', 'c'], seqs, seqs, 20, 4, 1, 0.0, 0)


@pytest.mark.parametrize('prior_heads,head_inputs,vision_head_input',
                         [(False, False, False), (True, False, False), (False, True, False),
                          (False, False, True)])
def test_export_fusion_head_swaps_only_the_head(tmp_path, prior_heads, head_inputs,
                                                vision_head_input):
    from emotion_training.testing import make_test_bundle
    src = make_test_bundle(tmp_path / 'src', LABELS6)
    b = ModelBundle.load(src)
    torch.manual_seed(3)
    head = FusionModel(b.vision_embedding_size, b.voice_embedding_size, len(LABELS6),
                       [b.manifest['valence_arousal'][k] for k in LABELS6],
                       hidden_size=b.hidden_size, num_layers=b.num_layers,
                       prior_heads=prior_heads, head_inputs=head_inputs,
                       vision_head_input=vision_head_input).eval()
    # non-trivial heads (gains, offsets): all must reach ONNX
    if prior_heads or head_inputs or vision_head_input:
        g = torch.Generator().manual_seed(1)
        head.set_prior_heads(torch.randn(6, b.vision_embedding_size, generator=g),
                             torch.randn(6, generator=g),
                             torch.randn(6, b.voice_embedding_size, generator=g),
                             torch.randn(6, generator=g))
    if prior_heads:
        with torch.no_grad():
            head.prior_gain.uniform_(0.5, 1.5, generator=g)
            head.prior_bias.normal_(0, 0.3, generator=g)
            head.head.weight.normal_(0, 0.1, generator=g)
    if head_inputs:     # the LSTM reads 2 x 6 log-probabilities + 2 flags, not the embeddings
        assert head.proj[0].in_features == 2 * 6 + 2
        t = {k: torch.randn(1, 3, n) for k, n in (('ve', b.vision_embedding_size),
                                                  ('ae', b.voice_embedding_size))}
        x = head.step_input(t['ve'], torch.ones(1, 3), t['ae'], torch.zeros(1, 3))
        assert torch.allclose(x[..., :6].exp().sum(-1), torch.ones(1, 3))
        assert torch.all(x[..., 7:] == 0)                 # voice absent: zeros and flag 0
    if vision_head_input:   # 6 vision log-probabilities + flag, then the voice embedding + flag
        assert head.proj[0].in_features == 6 + b.voice_embedding_size + 2
        t = {k: torch.randn(1, 3, n) for k, n in (('ve', b.vision_embedding_size),
                                                  ('ae', b.voice_embedding_size))}
        x = head.step_input(t['ve'], torch.ones(1, 3), t['ae'], torch.ones(1, 3))
        want = torch.log_softmax(t['ve'] @ head.prior_vision_w.T + head.prior_vision_b, -1)
        assert torch.allclose(x[..., :6], want) and torch.all(x[..., 6] == 1)
        assert torch.allclose(x[..., 7:-1], head.voice_norm(t['ae']))
        with pytest.raises(ValueError, match='one of head_inputs and vision_head_input'):
            FusionModel(8, 8, 6, [[0, 0]] * 6, head_inputs=True, vision_head_input=True)
    out = export_fusion_head(src, tmp_path / 'new', head, {'data': 'test streams', 'x': 1})
    new = ModelBundle.load(out, expected_labels=LABELS6)
    for name in ('vision_encoder.onnx', 'vocal_encoder.onnx'):
        assert sha256_of(out / name) == sha256_of(src / name)
    assert sha256_of(out / 'fusion_step.onnx') != sha256_of(src / 'fusion_step.onnx')
    m = new.manifest
    assert m['version'] == b.manifest['version'] + '+stream'
    assert m['training']['stream_fusion']['x'] == 1
    assert m['training']['data']['fusion'] == 'test streams'
    rng = np.random.default_rng(0)
    ve = rng.standard_normal((2, b.vision_embedding_size)).astype(np.float32)
    ae = rng.standard_normal((2, b.voice_embedding_size)).astype(np.float32)
    vp, ap = np.array([1, 1], np.float32), np.array([1, 0], np.float32)
    h, c = new.initial_state(2)
    probs, _, _, _ = new.fusion_step(ve, vp, ae, ap, h, c)
    with torch.no_grad():
        ref = head.step(*(torch.from_numpy(x) for x in (ve, vp, ae, ap, h, c)))[0].numpy()
    assert np.abs(probs - ref).max() < 1e-4
    with pytest.raises(ValueError, match='another folder'):
        export_fusion_head(out, out, head, {})
    wrong = FusionModel(b.vision_embedding_size, b.voice_embedding_size, 3, [[0, 0]] * 3)
    with pytest.raises(ValueError, match='classes'):
        export_fusion_head(src, tmp_path / 'wrong', wrong, {})


def test_stream_halves_are_disjoint_and_stable(tmp_path):
    write_face_folders(tmp_path / 'v', LABELS6, per_class=40, seed=2)
    dev = stream_faces(tmp_path / 'v', LABELS6, STREAM_DEV)
    fus = stream_faces(tmp_path / 'v', LABELS6, STREAM_FUSION)
    every = stream_faces(tmp_path / 'v', LABELS6, 'all')
    assert dev and fus and not {s.path for s in dev} & {s.path for s in fus}
    assert len(dev) + len(fus) == len(every)
    assert stream_half('/a/b/PublicTest_1.jpg') == stream_half('/c/PublicTest_1.jpg')
    train = stream_faces(tmp_path / 'v', LABELS6, FUSION_TRAIN)
    val = stream_faces(tmp_path / 'v', LABELS6, FUSION_VAL)
    assert train and val and sorted(s.path for s in train + val) == sorted(s.path for s in fus)


def test_cli_records_trains_and_writes_a_bundle(tmp_path, capsys, caplog):
    from emotion_training.testing import make_test_bundle
    from emotion_training.train import main
    root = tmp_path / 'data'
    write_face_folders(root / 'fer2013' / 'validation', LABELS6, per_class=40, seed=4)
    write_ravdess(root / 'ravdess', actors=('01', '07', '10', '11'))
    bundle = make_test_bundle(tmp_path / 'b', LABELS6)
    out = tmp_path / 'out'
    args = ['stream-fusion', '--data', str(root), '--bundle', str(bundle), '--seeds', '0',
            '--val-seeds', '1', '--segments', '8', '--size', '160x120', '--fps', '5',
            '--epochs', '2', '--steps-per-epoch', '3', '--batch-size', '4', '--window', '20',
            '--threads', '1', '--quiet', '--out', str(out), '--one-track-seeds']
    assert main(args) == 0, capsys.readouterr().err
    res = json.loads((out / 'stream_fusion.json').read_text())
    assert 'fused' in res['val_per_runner'] and set(res['val_per_runner']) <= set(sfu.RUNNERS)
    new = ModelBundle.load(res['bundle'], expected_labels=LABELS6)
    assert 'RAVDESS actors 07,08,09,' in new.manifest['training']['data']['fusion']
    assert (out / 'steps' / 'fusion_val_seed1.npz').exists()
    with np.load(out / 'steps' / 'fusion_train_seed0.npz') as z:
        assert z['y'].size > 0 and set(np.unique(z['runner'])) <= {0, 1, 2}
        assert z['ve'].shape == (z['y'].size, new.vision_embedding_size)
        assert z['al'].shape == (z['y'].size, len(LABELS6))
        # the vocal decision rides with the voice windows, and only with them
        assert not z['al'][z['ap'] == 0].any()
        assert json.loads(str(z['key']))['face_params']['identity_threshold'] > 0
    # one-track seeds: face_node's re-identification off for those streams only
    assert main(args + ['--one-track-seeds', '2', '--record-only']) == 0
    with np.load(out / 'steps' / 'fusion_train_seed2.npz') as z:
        assert json.loads(str(z['key']))['face_params']['identity_threshold'] == 0.0
    assert main(args + ['--one-track-seeds', '0']) == 2      # a seed in both lists
    # --vocal-weight: trained for the published output; the manifest says for which weight
    assert main(args + ['--vocal-weight', '1']) == 0
    res = json.loads((out / 'stream_fusion.json').read_text())
    trained = ModelBundle.load(res['bundle']).manifest['training']['stream_fusion']
    assert trained['vocal_weight'] == 1.0
    assert 'fused' in trained['val_step_uar_per_runner_with_vocal']
    # a second run reuses the recorded steps
    caplog.clear()
    with caplog.at_level('INFO', logger='emotion_train'):
        assert main(args + ['--record-only']) == 0
    assert 'recorded rows from' in caplog.text
    # --params: the streams are replayed with those node parameters, and the steps say so
    yaml_file = tmp_path / 'span.yaml'
    yaml_file.write_text('vocal_node:\n  ros__parameters:\n    span_pooling: all\n')
    caplog.clear()
    with caplog.at_level('INFO', logger='emotion_train'):
        assert main(args + ['--record-only', '--params', str(yaml_file)]) == 0
    assert 'replayed in' in caplog.text          # another setting: recorded again
    with np.load(out / 'steps' / 'fusion_train_seed0.npz') as z:
        assert json.loads(str(z['key']))['vocal_params']['span_pooling'] == 'all'
    assert main(args[:1] + ['--data', str(tmp_path / 'none')] + args[3:]) == 2
    assert 'fer2013/validation does not exist' in capsys.readouterr().err


def test_streams_recorded_by_jobs_equal_those_recorded_one_at_a_time(tmp_path, capsys):
    from emotion_training.testing import make_test_bundle
    from emotion_training.train import main
    root = tmp_path / 'data'
    write_face_folders(root / 'fer2013' / 'validation', LABELS6, per_class=20, seed=4)
    write_ravdess(root / 'ravdess', actors=('07', '10'))
    bundle = make_test_bundle(tmp_path / 'b', LABELS6)
    args = ['stream-fusion', '--data', str(root), '--bundle', str(bundle), '--seeds', '0', '3',
            '--val-seeds', '--one-track-seeds', '5', '--segments', '4', '--size', '160x120',
            '--fps', '5', '--quiet', '--record-only']
    for jobs in ('1', '3'):
        assert main(args + ['--out', str(tmp_path / f'j{jobs}'), '--jobs', jobs]) == 0, \
            capsys.readouterr().err
    for name in ('fusion_train_seed0', 'fusion_train_seed3', 'fusion_train_seed5'):
        with np.load(tmp_path / 'j1' / 'steps' / f'{name}.npz') as a, \
                np.load(tmp_path / 'j3' / 'steps' / f'{name}.npz') as b:
            assert sorted(a.files) == sorted(b.files) and a['y'].size > 0
            for k in a.files:
                assert np.array_equal(a[k], b[k]), (name, k)
    with np.load(tmp_path / 'j3' / 'steps' / 'fusion_train_seed5.npz') as z:   # one track
        assert json.loads(str(z['key']))['face_params']['identity_threshold'] == 0.0
    assert main(args + ['--out', str(tmp_path / 'bad'), '--jobs', '0']) == 2
    assert '--jobs 0' in capsys.readouterr().err


def test_linear_heads_recover_the_encoders_heads(tmp_path):
    """On a float test bundle the fitted maps reproduce the encoders' logits; a model with
    prior_heads and a zero LSTM head then says what vision head + voice head say."""
    from emotion_training.stream_bench import load_speech_spec
    from emotion_training.testing import make_test_bundle
    root = tmp_path / 'data'
    write_face_folders(root / 'fer2013' / 'validation', LABELS6, per_class=40, seed=4)
    write_ravdess(root / 'ravdess', actors=('01', '02'), per_label=4)
    b = ModelBundle.load(make_test_bundle(tmp_path / 'b', LABELS6))
    faces = stream_faces(root / 'fer2013' / 'validation', LABELS6, 'all')
    speech = load_speech_spec('ravdess', root, LABELS6)
    heads = sfu.linear_heads(b, faces, speech)
    for name in ('vision', 'voice'):
        assert heads['fit'][name]['argmax_agreement'] == 1.0, heads['fit']
        assert heads['fit'][name]['max_abs_logit_error'] < 1e-3, heads['fit']
    e, lg = b.encode_faces([np.full((48, 48), 90, np.uint8)])
    w, bias = heads['vision']
    assert np.abs(e @ w.T + bias - lg).max() < 1e-3
    m = FusionModel(b.vision_embedding_size, b.voice_embedding_size, 6, [[0, 0]] * 6,
                    hidden_size=8, prior_heads=True).eval()
    m.set_prior_heads(*heads['vision'], *heads['voice'])
    with torch.no_grad():
        out, _ = m(torch.from_numpy(e)[None], torch.ones(1, 1), torch.zeros(1, 1,
                   b.voice_embedding_size), torch.zeros(1, 1))
    assert np.abs(out[0, 0].numpy() - lg[0]).max() < 1e-3
    with pytest.raises(ValueError, match='without prior_heads'):
        _model().set_prior_heads(*heads['vision'], *heads['voice'])
