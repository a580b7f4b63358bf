"""Replacing parts of a bundle: a vision head grafted on the frozen embedding (six labels to
seven), a vocal encoder, the fusion head; `emotion-train vision-head` and
`emotion-export --from-bundle` end to end on synthetic faces."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from emotion_training_helpers import LABELS6

from emotion_runtime.model_bundle import ModelBundle, sha256_of
from emotion_runtime.preprocess import face_to_input
from emotion_training.config import VISION_PREPROCESS, VOCAL_PREPROCESS
from emotion_training.export import main as export_main
from emotion_training.export import replace_in_bundle
from emotion_training.labels import DEFAULT_LABELS
from emotion_training.synthetic import write_face_folders
from emotion_training.testing import make_test_bundle, tiny_models
from emotion_training.vision_head import fit_head, load_head

LABELS7 = list(DEFAULT_LABELS)


def _faces(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(n)]


def test_seven_label_bundle_from_a_six_label_one(tmp_path):
    src = make_test_bundle(tmp_path / 'src', LABELS6)
    old = ModelBundle.load(src)
    e = old.vision_embedding_size
    rng = np.random.default_rng(1)
    head = {'weight': rng.standard_normal((7, e)).astype(np.float32),
            'bias': rng.standard_normal(7).astype(np.float32), 'labels': LABELS7,
            'training': {'data': 'test head'}}
    _, vocal7, _ = tiny_models(LABELS7, seed=2)
    vocal = (vocal7, dict(VOCAL_PREPROCESS), LABELS7)
    # new labels need a vocal encoder of the same labels
    with pytest.raises(ValueError, match='vocal encoder trained on them'):
        replace_in_bundle(src, tmp_path / 'a', vision_head=head)
    _, vocal6, _ = tiny_models(LABELS6, seed=2)
    with pytest.raises(ValueError, match='vocal encoder says labels'):
        replace_in_bundle(src, tmp_path / 'b', vision_head=head,
                          vocal=(vocal6, dict(VOCAL_PREPROCESS), LABELS6))
    out = replace_in_bundle(src, tmp_path / 'new', vision_head=head, vocal=vocal,
                            vocal_record={'data': 'test voices'}, version='9.9.9')
    new = ModelBundle.load(out, expected_labels=LABELS7)
    assert new.manifest['version'] == '9.9.9'
    assert set(new.manifest['valence_arousal']) == set(LABELS7)
    assert new.manifest['vision']['architecture']['num_classes'] == 7
    # the encoder is the same up to its embedding; the logits are the grafted head's
    faces = _faces(5)
    e_old, _ = old.encode_faces(faces)
    e_new, logits = new.encode_faces(faces)
    assert np.array_equal(e_old, e_new)
    assert logits.shape == (5, 7)
    assert np.abs(logits - (e_new @ head['weight'].T + head['bias'])).max() < 1e-4
    # the vocal graph is the new encoder's
    x = np.random.default_rng(3).standard_normal(
        (2, 1, new.manifest['vocal']['n_mels'], new.manifest['vocal']['frames'])).astype(np.float32)
    emb, lg = new.session('vocal').run(['embedding', 'logits'], {'logmel': x})
    with torch.no_grad():
        ref = vocal7.eval()(torch.from_numpy(x))
    assert np.abs(lg - ref[1].numpy()).max() < 1e-3 and lg.shape == (2, 7)
    # the fusion head is a fresh 7-class one, and the manifest says it is untrained
    assert 'untrained' in new.manifest['training']['data']['fusion']
    assert new.manifest['training']['data']['speech'] == 'test voices'
    h, c = new.initial_state(1)
    probs = new.fusion_step(e_new[:1], np.ones(1, np.float32), emb[:1], np.ones(1, np.float32),
                            h, c)[0]
    assert probs.shape == (1, 7)
    # the old logits' nodes and weights are gone from the graph
    import onnx
    names = {n.name for n in onnx.load(str(out / 'vision_encoder.onnx')).graph.node}
    assert 'vision_head/MatMul' in names and '/ReduceMean' not in names


def test_same_labels_keep_every_other_file(tmp_path):
    src = make_test_bundle(tmp_path / 'src', LABELS6)
    e = ModelBundle.load(src).vision_embedding_size
    head = {'weight': np.zeros((6, e), np.float32), 'bias': np.arange(6, dtype=np.float32),
            'labels': list(LABELS6), 'training': {}}
    out = replace_in_bundle(src, tmp_path / 'new', vision_head=head)
    for name in ('vocal_encoder.onnx', 'fusion_step.onnx'):
        assert sha256_of(out / name) == sha256_of(src / name)
    _, logits = ModelBundle.load(out).encode_faces(_faces(3))
    assert (logits.argmax(1) == 5).all()
    with pytest.raises(ValueError, match='another folder'):
        replace_in_bundle(out, out, vision_head=head)


def test_a_vocal_ensemble_gets_a_fresh_head_of_its_size(tmp_path):
    """Same labels, a two-member vocal ensemble: the voice embedding doubles, so without a head
    the bundle gets an untrained one that takes it (and says so); with the old head, a refusal."""
    from emotion_training.models.vocal_encoder import VocalEnsemble
    src = make_test_bundle(tmp_path / 'src', LABELS6)
    old = ModelBundle.load(src)
    _, member, _ = tiny_models(LABELS6, seed=4)
    ens = VocalEnsemble([member.config, member.config])
    vocal = (ens, dict(VOCAL_PREPROCESS), list(LABELS6))
    out = replace_in_bundle(src, tmp_path / 'ens', vocal=vocal)
    new = ModelBundle.load(out, expected_labels=LABELS6)
    assert new.voice_embedding_size == 2 * old.voice_embedding_size
    assert new.manifest['fusion']['architecture']['voice_dim'] == new.voice_embedding_size
    assert 'voice embedding grew' in new.manifest['training']['data']['fusion']
    assert sha256_of(out / 'vision_encoder.onnx') == sha256_of(src / 'vision_encoder.onnx')
    h, c = new.initial_state(1)
    probs = new.fusion_step(np.zeros((1, new.vision_embedding_size), np.float32),
                            np.ones(1, np.float32),
                            np.zeros((1, new.voice_embedding_size), np.float32),
                            np.ones(1, np.float32), h, c)[0]
    assert probs.shape == (1, 6)
    # a head of the old voice size does not fit the ensemble
    _, _, head = tiny_models(LABELS6, seed=4)
    assert head.config['voice_dim'] == old.voice_embedding_size
    with pytest.raises(ValueError, match='voice_dim'):
        replace_in_bundle(src, tmp_path / 'bad', vocal=vocal, fusion=head)


def test_a_new_vision_encoder_replaces_the_graph_and_leaves_a_fresh_head(tmp_path):
    """`replace_in_bundle(vision=...)`: the vision graph is the new encoder's, the vocal graph
    stays byte for byte, and the fusion head (trained on the old embedding) is replaced by an
    untrained one of the new size that the manifest names; what is refused is named."""
    src = make_test_bundle(tmp_path / 'src', LABELS6)
    old = ModelBundle.load(src)
    vision, _, _ = tiny_models(LABELS6, seed=5, embedding_size=24)
    vision.eval()
    out = replace_in_bundle(src, tmp_path / 'new', vision=(vision, dict(VISION_PREPROCESS),
                                                           list(LABELS6)),
                            vision_record={'data': 'test faces'}, version='9.9.9')
    new = ModelBundle.load(out, expected_labels=LABELS6)
    assert sha256_of(out / 'vocal_encoder.onnx') == sha256_of(src / 'vocal_encoder.onnx')
    assert sha256_of(out / 'fusion_step.onnx') != sha256_of(src / 'fusion_step.onnx')
    faces = _faces(4)
    emb, logits = new.encode_faces(faces)
    x = torch.from_numpy(np.stack([face_to_input(f, VISION_PREPROCESS) for f in faces]))
    with torch.no_grad():
        ref_emb, ref_logits = vision(x)
    assert np.abs(emb - ref_emb.numpy()).max() < 1e-4
    assert np.abs(logits - ref_logits.numpy()).max() < 1e-4
    assert new.vision_embedding_size == 24 != old.vision_embedding_size
    assert new.manifest['fusion']['architecture']['vision_dim'] == 24
    data = new.manifest['training']['data']
    assert data['faces'] == 'test faces' and 'new vision encoder' in data['fusion']
    assert 'untrained' in data['fusion']
    h, c = new.initial_state(1)
    probs = new.fusion_step(emb[:1], np.ones(1, np.float32),
                            np.zeros((1, new.voice_embedding_size), np.float32),
                            np.ones(1, np.float32), h, c)[0]
    assert probs.shape == (1, 6)
    # seven labels need a vocal encoder of seven; a new encoder brings its own head
    vision7, _, _ = tiny_models(LABELS7, seed=5)
    with pytest.raises(ValueError, match='vocal encoder trained on them'):
        replace_in_bundle(src, tmp_path / 'a', vision=(vision7, dict(VISION_PREPROCESS), LABELS7))
    e = old.vision_embedding_size
    head = {'weight': np.zeros((6, e), np.float32), 'bias': np.zeros(6, np.float32),
            'labels': list(LABELS6), 'training': {}}
    with pytest.raises(ValueError, match='brings its own head'):
        replace_in_bundle(src, tmp_path / 'b', vision=(vision, dict(VISION_PREPROCESS),
                                                       list(LABELS6)), vision_head=head)


def test_export_from_bundle_with_a_new_vision_ensemble_in_int8(tmp_path, capsys):
    """`emotion-export --from-bundle B --vision A,B --vision-tta flip --int8-faces DIR`: the
    members become one int8 graph with mirror TTA, recorded in the manifest."""
    src = make_test_bundle(tmp_path / 'src', LABELS6)
    paths = []
    for seed in (6, 7):
        vision, _, _ = tiny_models(LABELS6, seed=seed)
        paths.append(tmp_path / f'v{seed}.pt')
        torch.save({'stage': 'vision', 'labels': list(LABELS6), 'model_config': vision.config,
                    'model': vision.state_dict(), 'preprocess': dict(VISION_PREPROCESS),
                    'split': {'holdout': 0.1, 'seed': 0}, 'epoch': 3, 'best_uar': 0.5,
                    'best_epoch': 3}, paths[-1])
    faces = write_face_folders(tmp_path / 'train', LABELS6, per_class=10, seed=1)
    spec = ','.join(map(str, paths))
    args = ['--from-bundle', str(src), '--vision', spec, '--vision-tta', 'flip',
            '--int8-faces', str(faces), '--int8-count', '40', '--out', str(tmp_path / 'b')]
    assert export_main(args) == 0, capsys.readouterr().err
    assert 'fusion head is untrained' in capsys.readouterr().err
    m = ModelBundle.load(tmp_path / 'b').manifest
    assert len(m['vision']['architecture']['members']) == 2
    assert m['vision']['architecture']['flip_tta'] is True
    assert m['vision']['quantization']['weight_bound'] <= 64
    assert m['training']['vision']['int8_calibration_faces'] == f'40 drawn from {faces}'
    assert 'stratified holdout (seed 0)' in m['training']['data']['faces']
    # --metrics-json alone replaces the figures, and nothing else
    (tmp_path / 'm.json').write_text(json.dumps({'faces': {'uar': 0.5}}))
    (tmp_path / 't.json').write_text(json.dumps({'note': 'test note'}))
    assert export_main(['--from-bundle', str(tmp_path / 'b'), '--metrics-json',
                        str(tmp_path / 'm.json'), '--training-json', str(tmp_path / 't.json'),
                        '--version', '2.0.0', '--out', str(tmp_path / 'c')]) == 0
    mc = ModelBundle.load(tmp_path / 'c').manifest
    assert mc['metrics'] == {'faces': {'uar': 0.5}} and mc['version'] == '2.0.0'
    assert mc['training']['note'] == 'test note' and mc['training']['vision'] == m['training']['vision']
    assert sha256_of(tmp_path / 'c' / 'fusion_step.onnx') == sha256_of(tmp_path / 'b' /
                                                                        'fusion_step.onnx')
    # --int8-faces without --vision, and --vision with a vision head, are refused
    for bad in (['--int8-faces', str(faces)], ['--vision', spec, '--vision-7bit-weights']):
        with pytest.raises(SystemExit):
            export_main(['--from-bundle', str(src), *bad, '--out', str(tmp_path / 'x')])


def test_keep_fusion_keeps_the_head_for_the_bundles_own_encoder_exported_again(tmp_path,
                                                                                capsys):
    """`--keep-fusion`: a vision encoder exported again (the same embedding) keeps the bundle's
    fusion head byte for byte and its training record; a head cannot be kept for an embedding
    of another size, nor without --vision or beside --fusion."""
    src = make_test_bundle(tmp_path / 'src', LABELS6)
    old = ModelBundle.load(src)
    vision, _, _ = tiny_models(LABELS6, seed=6, embedding_size=old.vision_embedding_size)
    path = tmp_path / 'v.pt'
    torch.save({'stage': 'vision', 'labels': list(LABELS6), 'model_config': vision.config,
                'model': vision.state_dict(), 'preprocess': dict(VISION_PREPROCESS),
                'split': {'holdout': 0.1, 'seed': 0}, 'epoch': 3, 'best_uar': 0.5,
                'best_epoch': 3}, path)
    args = ['--from-bundle', str(src), '--vision', str(path), '--keep-fusion',
            '--out', str(tmp_path / 'kept')]
    assert export_main(args) == 0, capsys.readouterr().err
    assert 'untrained' not in capsys.readouterr().err
    kept = ModelBundle.load(tmp_path / 'kept')
    assert sha256_of(tmp_path / 'kept' / 'fusion_step.onnx') == sha256_of(src /
                                                                           'fusion_step.onnx')
    assert sha256_of(tmp_path / 'kept' / 'vision_encoder.onnx') != sha256_of(
        src / 'vision_encoder.onnx')
    assert kept.manifest['fusion'] == old.manifest['fusion']
    assert 'untrained' not in json.dumps(kept.manifest['training'])
    assert export_main(args[:-3] + ['--out', str(tmp_path / 'fresh')]) == 0   # without it
    assert sha256_of(tmp_path / 'fresh' / 'fusion_step.onnx') != sha256_of(src /
                                                                            'fusion_step.onnx')
    wider, _, _ = tiny_models(LABELS6, seed=6, embedding_size=old.vision_embedding_size + 8)
    with pytest.raises(ValueError, match='keep_fusion'):
        replace_in_bundle(src, tmp_path / 'w', vision=(wider, dict(VISION_PREPROCESS),
                                                       list(LABELS6)), keep_fusion=True)
    for bad in (['--keep-fusion'], ['--vision', str(path), '--keep-fusion', '--fusion', 'x.pt']):
        with pytest.raises(SystemExit):
            export_main(['--from-bundle', str(src), *bad, '--out', str(tmp_path / 'x')])
    with pytest.raises(SystemExit):
        export_main(['--vision', str(path), '--keep-fusion', '--out', str(tmp_path / 'y')])


def test_fit_head_learns_and_folds_the_standardisation():
    rng = np.random.default_rng(0)
    labels = ['a', 'b', 'c']
    centres = rng.normal(0, 1, (3, 10)) * 3

    def draw(n):
        y = rng.integers(0, 3, n)
        # large offset and scale per feature: the folded weights must undo them
        return (centres[y] + rng.normal(0, 1, (n, 10))) * 50 + 1000, y
    x, y = draw(600)
    xv, yv = draw(200)
    w, b, best = fit_head(x, y, xv, yv, labels, steps=200)
    assert best['uar'] > 0.9
    assert ((xv @ w.T + b).argmax(1) == yv).mean() == pytest.approx(best['accuracy'], abs=0.02)
    with pytest.raises(ValueError, match="no training faces of \\['c'\\]"):
        fit_head(x[y < 2], y[y < 2], xv, yv, labels)


def test_vision_head_cli_and_export_from_bundle(tmp_path, capsys):
    from emotion_training.train import main as train_main
    src = make_test_bundle(tmp_path / 'src', LABELS6)
    faces = write_face_folders(tmp_path / 'train', LABELS7, per_class=30, seed=1)
    (faces / 'sad' / 'broken.png').write_bytes(b'not an image')
    out = tmp_path / 'head'
    args = ['vision-head', '--bundle', str(src), '--faces', str(faces), '--faces-val', str(faces),
            '--steps', '30', '--threads', '1', '--out', str(out)]
    assert train_main(args) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert 'broken.png' in err and "new: ['surprise']" in err
    res = json.loads((out / 'result.json').read_text())
    assert res['labels'] == LABELS7 and res['validation']['n'] == 7 * 30
    head = load_head(out / 'head.npz')
    assert head['weight'].shape == (7, ModelBundle.load(src).vision_embedding_size)
    # export: a new label list also needs a vocal encoder
    assert export_main(['--from-bundle', str(src), '--vision-head', str(out / 'head.npz'),
                        '--out', str(tmp_path / 'b7')]) == 2
    assert 'vocal encoder' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_main(['--from-bundle', str(src), '--out', str(tmp_path / 'b0')])
    with pytest.raises(SystemExit):
        export_main(['--vision-head', str(out / 'head.npz'), '--out', str(tmp_path / 'b1')])
    # a missing bundle is named
    assert export_main(['--from-bundle', str(tmp_path / 'nope'), '--vision-head',
                        str(out / 'head.npz'), '--out', str(tmp_path / 'b2')]) == 2
    assert 'nope' in capsys.readouterr().err


def test_stream_fusion_names_fusion_voices_the_vocal_encoder_heard(tmp_path):
    from emotion_training.stream_fusion import _heard_stream_voices
    src = make_test_bundle(tmp_path / 'src', LABELS6)
    assert _heard_stream_voices(ModelBundle.load(src)) == []        # no record: nothing to say
    _, vocal6, _ = tiny_models(LABELS6, seed=2)
    for speakers, heard in ((['emodb:03', 'ravdess:01', 'ravdess:06'], []),
                            (['ravdess:05', 'ravdess:07', 'ravdess:10'],
                             ['ravdess:07', 'ravdess:10'])):
        out = replace_in_bundle(src, tmp_path / speakers[-1].replace(':', '_'),
                                vocal=(vocal6, dict(VOCAL_PREPROCESS), list(LABELS6)),
                                vocal_record={'split': {'train_speakers': speakers}})
        assert _heard_stream_voices(ModelBundle.load(out)) == heard
        assert _heard_stream_voices(ModelBundle.load(out), decision=True) == []
    # an encoder in the decision only: the head's own encoder heard nobody of the streams
    dec = replace_in_bundle(src, tmp_path / 'dec', vocal_decision=[
        (vocal6, dict(VOCAL_PREPROCESS), list(LABELS6),
         {'split': {'train_speakers': ['ravdess:01', 'ravdess:08']}})])
    assert _heard_stream_voices(ModelBundle.load(dec)) == []
    assert _heard_stream_voices(ModelBundle.load(dec), decision=True) == ['ravdess:08']


def test_decision_members_join_the_logits_and_keep_the_embedding(tmp_path):
    """``vocal_decision``: the vocal graph's logits become the mean over it and the members,
    its embedding (what the fusion head reads) and every other file stay byte for byte."""
    src = make_test_bundle(tmp_path / 'src', LABELS6)
    _, m1, _ = tiny_models(LABELS6, seed=5)
    _, m2, _ = tiny_models(LABELS6, seed=6)
    members = [(m1, dict(VOCAL_PREPROCESS), list(LABELS6), {'data': 'member one'}),
               (m2, dict(VOCAL_PREPROCESS), list(LABELS6), {'data': 'member two'})]
    out = replace_in_bundle(src, tmp_path / 'dec', vocal_decision=members)
    new = ModelBundle.load(out, expected_labels=LABELS6)
    v = new.manifest['vocal']
    x = np.random.default_rng(7).standard_normal((4, 1, v['n_mels'], v['frames'])).astype(np.float32)
    emb0, lg0 = ModelBundle.load(src).session('vocal').run(['embedding', 'logits'], {'logmel': x})
    emb, lg = new.session('vocal').run(['embedding', 'logits'], {'logmel': x})
    assert np.array_equal(emb, emb0)
    with torch.no_grad():
        want = np.mean([lg0] + [m.eval()(torch.from_numpy(x))[1].numpy() for m in (m1, m2)], 0)
    assert np.abs(lg - want).max() < 1e-4
    assert np.abs(lg - lg0).max() > 1e-3          # the members changed the decision
    for name in ('vision_encoder.onnx', 'fusion_step.onnx'):
        assert sha256_of(out / name) == sha256_of(src / name)
    assert [r['data'] for r in v['decision_members']] == ['member one', 'member two']
    assert 'member one' in new.manifest['training']['data']['speech_decision']
    assert 'with 2 more encoders in its decision' in new.summary
    assert new.voice_embedding_size == ModelBundle.load(src).voice_embedding_size
    # a member added later joins the same mean: logits = mean of all three parts
    _, m3, _ = tiny_models(LABELS6, seed=8)
    again = replace_in_bundle(out, tmp_path / 'again', vocal_decision=[
        (m3, dict(VOCAL_PREPROCESS), list(LABELS6), {'data': 'member three'})])
    third = ModelBundle.load(again, expected_labels=LABELS6)
    emb3, lg3 = third.session('vocal').run(['embedding', 'logits'], {'logmel': x})
    assert np.array_equal(emb3, emb0)
    with torch.no_grad():
        want3 = np.mean([lg0] + [m.eval()(torch.from_numpy(x))[1].numpy()
                                 for m in (m1, m2, m3)], 0)
    assert np.abs(lg3 - want3).max() < 1e-4
    assert np.abs(lg3 - lg).max() > 1e-3
    v3 = third.manifest['vocal']
    assert [r['data'] for r in v3['decision_members']] == ['member one', 'member two',
                                                           'member three']
    assert 'member one' in third.manifest['training']['data']['speech_decision']
    assert 'member three' in third.manifest['training']['data']['speech_decision']
    assert 'speech_decision_replaced' not in third.manifest['training']['data']
    assert 'with 3 more encoders in its decision' in third.summary
    assert third.manifest['export']['max_abs_diff_torch_vs_onnxruntime']['vocal_decision'] < 1e-3
    # a new encoder replaces the decision with it: its members go
    _, m4, _ = tiny_models(LABELS6, seed=9)
    fresh = ModelBundle.load(replace_in_bundle(again, tmp_path / 'fresh', vocal=(
        m4, dict(VOCAL_PREPROCESS), list(LABELS6))), expected_labels=LABELS6)
    assert not fresh.manifest['vocal'].get('decision_members')
    assert fresh.session('vocal').run(['logits'], {'logmel': x})[0].shape == lg.shape


def test_decision_members_must_read_the_same_windows_and_labels(tmp_path):
    src = make_test_bundle(tmp_path / 'src', LABELS6)
    _, m, _ = tiny_models(LABELS6, seed=5)
    other = dict(VOCAL_PREPROCESS, n_fft=1024)
    with pytest.raises(ValueError, match='n_fft differ'):
        replace_in_bundle(src, tmp_path / 'a', vocal_decision=[(m, other, list(LABELS6), {})])
    floor = dict(VOCAL_PREPROCESS, log_floor=1e-5)     # the bundle's: the default 1e-6
    with pytest.raises(ValueError, match='log_floor differ'):
        replace_in_bundle(src, tmp_path / 'f', vocal_decision=[(m, floor, list(LABELS6), {})])
    same = replace_in_bundle(src, tmp_path / 'g', vocal_decision=[
        (m, dict(VOCAL_PREPROCESS, log_floor=1e-6), list(LABELS6), {})])
    assert 'log_floor' not in json.loads((same / 'manifest.json').read_text())['vocal']
    assert VOCAL_PREPROCESS['normalisation']['type'] == 'global'
    spk = dict(VOCAL_PREPROCESS, normalisation={'type': 'speaker'})
    with pytest.raises(ValueError, match='normalisation type'):
        replace_in_bundle(src, tmp_path / 'b', vocal_decision=[(m, spk, list(LABELS6), {})])
    _, m7, _ = tiny_models(LABELS7, seed=5)
    with pytest.raises(ValueError, match='decision member 1 says labels'):
        replace_in_bundle(src, tmp_path / 'c',
                          vocal_decision=[(m7, dict(VOCAL_PREPROCESS), LABELS7, {})])


def test_vocal_decision_cli(trained, trained_bundle, tmp_path, capsys):
    ck = trained['out'] / 'vocal' / 'last.pt'
    assert export_main(['--from-bundle', str(trained_bundle), '--vocal-decision', str(ck),
                        '--out', str(tmp_path / 'b'), '--version', '9.1.0']) == 0
    new = ModelBundle.load(tmp_path / 'b')
    (member,) = new.manifest['vocal']['decision_members']
    assert str(ck) in member['data'] and member['split']['train_speakers']
    assert new.manifest['export']['max_abs_diff_torch_vs_onnxruntime']['vocal_decision'] < 1e-3
    with pytest.raises(SystemExit):
        export_main(['--vision', 'a.pt', '--vocal', 'b.pt', '--fusion', 'c.pt',
                     '--vocal-decision', str(ck), '--out', str(tmp_path / 'c')])
    assert '--vocal-decision: only with --from-bundle' in capsys.readouterr().err


def test_a_voiceprint_member_stays_while_the_vocal_encoder_stays(tmp_path, capsys):
    """A bundle with a voiceprint member (``vocal.voiceprint``): replacing the vision head or the
    fusion head keeps the member, its file and its sha256 (the new bundle loads and mixes it in
    as before); replacing the vocal encoder drops it, says so, and leaves no stray file."""
    from emotion_test_tools.tiny_bundle import add_tiny_voiceprint
    src = make_test_bundle(tmp_path / 'src', LABELS6)
    add_tiny_voiceprint(src, weight=0.4)
    old = ModelBundle.load(src)
    assert old.voiceprint is not None
    e = old.vision_embedding_size
    head = {'weight': np.zeros((6, e), np.float32), 'bias': np.arange(6, dtype=np.float32),
            'labels': list(LABELS6), 'training': {}}
    _, _, fusion = tiny_models(LABELS6, seed=4)
    for name, kw in (('vision_head', {'vision_head': head}), ('fusion', {'fusion': fusion})):
        out = replace_in_bundle(src, tmp_path / name, **kw)
        new = ModelBundle.load(out)
        assert new.manifest['files']['voiceprint.onnx'] == sha256_of(src / 'voiceprint.onnx')
        assert new.manifest['vocal']['voiceprint'] == old.manifest['vocal']['voiceprint']
        wins = [np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1]
        np.testing.assert_allclose(new.encode_voice_windows(wins, 16000)[1],
                                   old.encode_voice_windows(wins, 16000)[1], atol=1e-5)
    _, member, _ = tiny_models(LABELS6, seed=5)
    out = replace_in_bundle(src, tmp_path / 'vocal', vocal=(member, dict(VOCAL_PREPROCESS),
                                                            list(LABELS6)))
    new = ModelBundle.load(out)
    assert new.voiceprint is None and 'voiceprint' not in new.manifest['vocal']
    assert not (out / 'voiceprint.onnx').exists()
    assert 'voiceprint member' in capsys.readouterr().err


def test_voice_noise_subtraction_is_set_kept_and_removed(tmp_path, capsys):
    """``emotion-export --from-bundle --voice-noise-subtraction F O L`` writes the vocal front
    end's ``noise_subtraction`` (the bundle then reads a noisy window's pauses lower, with the
    same graphs), a later edit of another part keeps it, ``off`` removes it, a new vocal encoder
    comes without it and says so, and bad values are refused naming the field."""
    src = make_test_bundle(tmp_path / 'src', LABELS6)
    out = tmp_path / 'ns'
    assert export_main(['--from-bundle', str(src), '--voice-noise-subtraction', '0.1', '1.5',
                        '0.02', '--out', str(out), '--version', '9.2.0']) == 0
    new, old = ModelBundle.load(out), ModelBundle.load(src)
    spec = {'fraction': 0.1, 'over': 1.5, 'floor': 0.02}
    assert new.manifest['vocal']['noise_subtraction'] == spec
    assert 'noise_subtraction' not in old.manifest['vocal']
    assert new.manifest['files'] == old.manifest['files']          # the graphs are the same
    rng = np.random.default_rng(3)
    t = np.arange(16000) / 16000
    speech = (0.1 * ((t % 0.25) < 0.12) * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    noisy = speech + rng.normal(0, 1e-3, t.size).astype(np.float32)
    pause = new.voice_logmel(noisy, 16000)[:, 20]         # frame 20 = 0.2 s, inside a pause
    assert np.median(old.voice_logmel(noisy, 16000)[:, 20] - pause) > 1.0
    _, _, fusion = tiny_models(LABELS6, seed=4)
    kept = replace_in_bundle(out, tmp_path / 'fusion', fusion=fusion)
    assert ModelBundle.load(kept).manifest['vocal']['noise_subtraction'] == spec
    assert export_main(['--from-bundle', str(out), '--voice-noise-subtraction', 'off',
                        '--out', str(tmp_path / 'off')]) == 0
    assert 'noise_subtraction' not in ModelBundle.load(tmp_path / 'off').manifest['vocal']
    _, member, _ = tiny_models(LABELS6, seed=5)
    capsys.readouterr()
    replaced = replace_in_bundle(out, tmp_path / 'vocal',
                                 vocal=(member, dict(VOCAL_PREPROCESS), list(LABELS6)))
    assert 'noise_subtraction' not in ModelBundle.load(replaced).manifest['vocal']
    assert 'without' in capsys.readouterr().err
    for bad, says in ((['0', '1.5', '0.02'], 'fraction'), (['0.1', 'x', '0.02'], 'three numbers'),
                      (['0.1', '1.5'], 'three numbers')):
        with pytest.raises(SystemExit):
            export_main(['--from-bundle', str(src), '--voice-noise-subtraction', *bad,
                         '--out', str(tmp_path / 'bad')])
        assert says in capsys.readouterr().err
