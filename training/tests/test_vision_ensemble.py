"""Vision ensembles: members trained with different seeds on one holdout, joined at fusion and
export into one ONNX graph whose logits are the members' mean and whose embedding is their
concatenation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from emotion_training_helpers import LABELS3, TINY_VISION

from emotion_runtime.model_bundle import ModelBundle
from emotion_runtime.preprocess import face_to_input
from emotion_training.models.vision_encoder import VisionEncoder, VisionEnsemble, build_vision_encoder


def _member(seed: int) -> VisionEncoder:
    torch.manual_seed(seed)
    return VisionEncoder(3, embedding_size=8, layers=(1, 1, 1, 1), widths=(4, 8, 8, 16))


def test_ensemble_means_logits_and_concatenates_embeddings():
    a, b = _member(0).eval(), _member(1).eval()
    ens = VisionEnsemble([a.config, b.config]).eval()
    ens.members[0].load_state_dict(a.state_dict())
    ens.members[1].load_state_dict(b.state_dict())
    x = torch.randn(5, 1, 48, 48)
    with torch.no_grad():
        (ea, la), (eb, lb), (e, lg) = a(x), b(x), ens(x)
    assert e.shape == (5, 16) and ens.config['embedding_size'] == 16
    assert torch.allclose(e, torch.cat([ea, eb], 1)) and torch.allclose(lg, (la + lb) / 2)
    rebuilt = build_vision_encoder(ens.config)
    assert isinstance(rebuilt, VisionEnsemble) and len(rebuilt.members) == 2
    assert isinstance(build_vision_encoder(a.config), VisionEncoder)
    ens.set_flip_tta(True)
    assert ens.flip_tta and all(m.flip_tta for m in ens.members) and ens.config['flip_tta']
    with torch.no_grad():
        _, l1 = ens(x)
        _, l2 = ens(torch.flip(x, dims=[3]))
    assert torch.allclose(l1, l2, atol=1e-5)


def test_mirror_tta_runs_the_face_and_its_mirror_as_one_batch():
    """Eval with flip_tta: every conv runs once, on the faces and their mirrors together
    (weights read once per layer), and the result is the mean of the two views' own passes."""
    enc = _member(0).eval()
    enc.set_flip_tta(True)
    x = torch.randn(3, 1, 48, 48)
    calls = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
             for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        e, lg = enc(x)
    for h in hooks:
        h.remove()
    assert calls and len(calls) == len(hooks) and set(calls) == {6}
    with torch.no_grad():
        e1, l1 = enc._once(x)
        e2, l2 = enc._once(torch.flip(x, dims=[3]))
    assert torch.allclose(e, (e1 + e2) / 2, atol=1e-5) and torch.allclose(lg, (l1 + l2) / 2,
                                                                          atol=1e-5)
    enc.train()                                       # training never mirrors
    with torch.no_grad():
        assert enc(x)[1].shape == (3, enc.config['num_classes'])


def test_ensemble_refuses_one_member_or_mixed_label_counts():
    with pytest.raises(ValueError, match='at least two'):
        VisionEnsemble([_member(0).config])
    other = dict(_member(1).config, num_classes=4)
    with pytest.raises(ValueError, match='class count'):
        VisionEnsemble([_member(0).config, other])


@pytest.fixture(scope='module')
def second_member(trained, tmp_path_factory):
    """A second vision member: another --seed, the first member's --holdout-seed."""
    from emotion_training.train import main
    out = tmp_path_factory.mktemp('member_b')
    common = [a if a != '0' else '1' for a in trained['common']]   # --seed 1
    assert main(['vision', *common, '--holdout-seed', '0', *TINY_VISION, '--epochs', '3',
                 '--batch-size', '32', '--optimizer', 'adamw', '--lr', '0.01',
                 '--augment', '0.3', '--out', str(out)]) == 0
    return out / 'best.pt'


def test_holdout_seed_keeps_the_split_while_the_seed_changes_the_weights(trained,
                                                                         second_member):
    from emotion_training.engine import load_checkpoint
    a = load_checkpoint(trained['out'] / 'vision' / 'best.pt')
    b = load_checkpoint(second_member)
    assert b['split'] == a['split'] and b['split']['seed'] == 0
    assert not torch.allclose(a['model']['backbone.conv1.weight'],
                              b['model']['backbone.conv1.weight'])


def test_members_trained_on_copies_of_one_data_set_share_their_split(trained, second_member,
                                                                      syn_data, tmp_path,
                                                                      capfd):
    """A GPU machine unpacks the faces into a temporary folder of its own for every run: the
    split is known by the folder's contents, not its path, and a changed folder still warns."""
    import shutil

    from emotion_training.encoder_checkpoint import load_vision
    from emotion_training.engine import load_checkpoint
    from emotion_training.splits import face_split, same_face_split
    train = syn_data / 'fer2013' / 'train'
    copy = tmp_path / 'elsewhere' / 'train'
    shutil.copytree(train, copy)
    here, there = face_split(train, None, 0.1, 0), face_split(copy, None, 0.1, 0)
    assert here['faces_train'] != there['faces_train'] and same_face_split(here, there)
    assert not same_face_split(here, face_split(copy, None, 0.1, 1))      # another holdout
    victim = next(f for f in copy.rglob('*') if f.is_file())
    victim.unlink()
    assert not same_face_split(here, face_split(copy, None, 0.1, 0))      # other files
    old = {k: here[k] for k in ('faces_train', 'faces_val', 'holdout', 'seed')}
    assert same_face_split(old, here)                 # a record without fingerprints: by path
    assert not same_face_split(dict(old, faces_train=str(copy)), here)

    ck = load_checkpoint(second_member)
    ck['split'] = there
    moved = tmp_path / 'moved.pt'
    torch.save(ck, moved)
    capfd.readouterr()
    load_vision(f"{trained['out'] / 'vision' / 'best.pt'},{moved}")
    assert 'trained on split' not in capfd.readouterr().err
    ck['split'] = dict(there, seed=1)
    torch.save(ck, moved)
    load_vision(f"{trained['out'] / 'vision' / 'best.pt'},{moved}")
    assert 'trained on split' in capfd.readouterr().err


def test_fusion_and_export_join_members_into_one_graph(trained, second_member, tmp_path,
                                                       capfd):
    from emotion_training.encoder_checkpoint import load_vision
    from emotion_training.export import main as export_main
    from emotion_training.train import main
    out, common = trained['out'], trained['common']
    members = f"{out / 'vision' / 'best.pt'},{second_member}"
    capfd.readouterr()
    assert main(['fusion', *common, '--init-vision', members,
                 '--init-vocal', str(out / 'vocal' / 'best.pt'), '--val-speakers', '10',
                 '--epochs', '2', '--steps-per-epoch', '10', '--batch-size', '32',
                 '--optimizer', 'adamw', '--lr', '0.01', '--fusion-hidden', '16',
                 '--out', str(tmp_path / 'fusion')]) == 0
    err = capfd.readouterr().err   # one holdout: no leak warning
    assert 'face split' not in err and 'trained on split' not in err
    assert export_main(['--vision', members, '--vocal', str(out / 'vocal' / 'best.pt'),
                        '--fusion', str(tmp_path / 'fusion' / 'best.pt'), '--vision-tta', 'flip',
                        '--out', str(tmp_path / 'b')]) == 0
    bundle = ModelBundle.load(tmp_path / 'b', expected_labels=LABELS3)
    single = [load_vision(p)[0].eval() for p in members.split(',')]
    sizes = [m.config['embedding_size'] for m in single]
    assert bundle.vision_embedding_size == sum(sizes)
    assert len(bundle.manifest['vision']['architecture']['members']) == 2
    assert len(bundle.manifest['training']['checkpoints']['vision']['members']) == 2
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (60, 50), dtype=np.uint8) for _ in range(3)]
    emb, logits = bundle.encode_faces(crops)
    x = torch.from_numpy(np.stack([face_to_input(c, bundle.manifest['vision']) for c in crops]))
    with torch.no_grad():
        outs = []
        for m in single:
            m.set_flip_tta(True)
            outs.append(m(x))
    assert np.allclose(logits, np.mean([lg.numpy() for _, lg in outs], 0), atol=1e-4)
    assert np.allclose(emb, np.concatenate([e.numpy() for e, _ in outs], 1), atol=1e-4)
    h, c = bundle.initial_state(3)
    p, _, _, _ = bundle.fusion_step(emb, np.ones(3), np.zeros((3, bundle.voice_embedding_size),
                                                               np.float32), np.zeros(3), h, c)
    assert np.allclose(p.sum(1), 1, atol=1e-5)


def test_members_with_other_labels_or_a_vision_stage_ensemble_are_refused(
        trained, second_member, tmp_path):
    from emotion_training.encoder_checkpoint import load_vision
    from emotion_training.engine import load_checkpoint, save_checkpoint
    from emotion_training.train import main
    ck = load_checkpoint(second_member)
    ck['labels'] = list(reversed(ck['labels']))
    save_checkpoint(tmp_path / 'reordered.pt', ck)
    first = trained['out'] / 'vision' / 'best.pt'
    with pytest.raises(SystemExit, match='reordered.pt has labels'):
        load_vision(f'{first},{tmp_path / "reordered.pt"}')
    with pytest.raises(SystemExit, match='trains one encoder'):
        main(['vision', *trained['common'], *TINY_VISION, '--epochs', '1',
              '--init-vision', f'{first},{second_member}', '--out', str(tmp_path / 'v')])


def test_distillation_alone_teaches_the_student(trained, tmp_path):
    """With --distill-weight 1 the labels play no part: a student that beats chance has learnt
    from the (frozen, mirror-TTA) teacher, and its checkpoint holds only its own weights."""
    from emotion_training.engine import load_checkpoint
    from emotion_training.train import main
    teacher = trained['out'] / 'vision' / 'best.pt'
    args = ['vision', *trained['common'], *TINY_VISION, '--epochs', '6', '--batch-size', '32',
            '--optimizer', 'adamw', '--lr', '0.01', '--augment', '0.3', '--label-smoothing', '0',
            '--teacher', str(teacher), '--distill-temperature', '2']
    assert main([*args, '--distill-weight', '1', '--out', str(tmp_path / 'kd')]) == 0
    ck = load_checkpoint(tmp_path / 'kd' / 'best.pt')
    assert ck['best_uar'] > 1 / len(LABELS3) + 0.2, ck['best_uar']
    assert set(ck['model']) == set(load_checkpoint(teacher)['model'])
    with pytest.raises(SystemExit, match='distill-weight'):
        main([*args, '--distill-weight', '1.5', '--out', str(tmp_path / 'bad')])


def test_distillation_refuses_a_teacher_with_other_labels(trained, tmp_path):
    from emotion_training.engine import load_checkpoint, save_checkpoint
    from emotion_training.train import main
    ck = load_checkpoint(trained['out'] / 'vision' / 'best.pt')
    ck['labels'] = list(reversed(ck['labels']))
    save_checkpoint(tmp_path / 'teacher.pt', ck)
    with pytest.raises(SystemExit, match='--teacher labels'):
        main(['vision', *trained['common'], *TINY_VISION, '--epochs', '1',
              '--teacher', str(tmp_path / 'teacher.pt'), '--out', str(tmp_path / 's')])
