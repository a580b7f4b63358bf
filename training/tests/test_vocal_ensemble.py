"""Vocal ensembles: members trained with different seeds on the same speakers, joined at fusion
and export into one ONNX graph whose logits are the members' mean and whose embedding is their
concatenation (the speech counterpart of test_vision_ensemble.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from emotion_training_helpers import LABELS3, TINY_VOCAL

from emotion_runtime.model_bundle import ModelBundle
from emotion_training.models.vocal_encoder import VocalEncoder, VocalEnsemble, build_vocal_encoder

_VOCAL_RUN = [*TINY_VOCAL, '--epochs', '3', '--batch-size', '16', '--optimizer', 'adamw',
              '--lr', '0.01']


def _member(seed: int) -> VocalEncoder:
    torch.manual_seed(seed)
    return VocalEncoder(3, embedding_size=8, widths=(4, 8, 8, 16))


def test_ensemble_means_logits_and_concatenates_embeddings():
    a, b, c = _member(0).eval(), _member(1).eval(), _member(2).eval()
    ens = VocalEnsemble([a.config, b.config, c.config]).eval()
    for m, src in zip(ens.members, (a, b, c)):
        m.load_state_dict(src.state_dict())
    x = torch.randn(4, 1, 64, 101)
    with torch.no_grad():
        outs, (e, lg) = [m(x) for m in (a, b, c)], ens(x)
    assert e.shape == (4, 24) and ens.config['embedding_size'] == 24
    assert torch.allclose(e, torch.cat([o[0] for o in outs], 1))
    assert torch.allclose(lg, torch.stack([o[1] for o in outs]).mean(0), atol=1e-6)
    rebuilt = build_vocal_encoder(ens.config)
    assert isinstance(rebuilt, VocalEnsemble) and len(rebuilt.members) == 3
    assert isinstance(build_vocal_encoder(a.config), VocalEncoder)
    with pytest.raises(ValueError, match='at least two'):
        VocalEnsemble([a.config])


@pytest.fixture(scope='module')
def second_vocal(trained, tmp_path_factory):
    """A second vocal member: another --seed, the first member's speakers."""
    from emotion_training.train import main
    out = tmp_path_factory.mktemp('vocal_b')
    common = [a if a != '0' else '1' for a in trained['common']]   # --seed 1
    assert main(['vocal', *common, *_VOCAL_RUN, '--val-speakers', '10', '--out', str(out)]) == 0
    return out / 'best.pt'


def test_fusion_and_export_join_vocal_members_into_one_graph(trained, second_vocal, tmp_path,
                                                             capfd):
    from emotion_training.encoder_checkpoint import load_vocal
    from emotion_training.export import main as export_main
    from emotion_training.train import main
    out, common = trained['out'], trained['common']
    members = f"{out / 'vocal' / 'best.pt'},{second_vocal}"
    capfd.readouterr()
    assert main(['fusion', *common, '--init-vision', str(out / 'vision' / 'best.pt'),
                 '--init-vocal', members, '--val-speakers', '10',
                 '--epochs', '2', '--steps-per-epoch', '10', '--batch-size', '32',
                 '--optimizer', 'adamw', '--lr', '0.01', '--fusion-hidden', '16',
                 '--out', str(tmp_path / 'fusion')]) == 0
    err = capfd.readouterr().err   # same speakers: no split warning
    assert 'trained on split' not in err and 'validation speakers' not in err
    assert export_main(['--vision', str(out / 'vision' / 'best.pt'), '--vocal', members,
                        '--fusion', str(tmp_path / 'fusion' / 'best.pt'),
                        '--out', str(tmp_path / 'b')]) == 0
    bundle = ModelBundle.load(tmp_path / 'b', expected_labels=LABELS3)
    single = [load_vocal(p)[0].eval() for p in members.split(',')]
    assert bundle.voice_embedding_size == sum(m.config['embedding_size'] for m in single)
    assert len(bundle.manifest['vocal']['architecture']['members']) == 2
    assert len(bundle.manifest['training']['checkpoints']['vocal']['members']) == 2
    # The node's path (window -> log-mel -> normalisation -> ONNX) against the torch members.
    rng = np.random.default_rng(0)
    sr = bundle.sample_rate
    windows = [rng.standard_normal(bundle.window_samples).astype(np.float32) * 0.1
               for _ in range(3)]
    x = np.stack([bundle.voice_input(w, sr) for w in windows])
    emb, logits = bundle.encode_voice_logmel(x)
    with torch.no_grad():
        outs = [m(torch.from_numpy(x)) for m in single]
    assert np.allclose(logits, np.mean([lg.numpy() for _, lg in outs], 0), atol=1e-4)
    assert np.allclose(emb, np.concatenate([e.numpy() for e, _ in outs], 1), atol=1e-4)
    h, c = bundle.initial_state(3)
    p, _, _, _ = bundle.fusion_step(np.zeros((3, bundle.vision_embedding_size), np.float32),
                                    np.zeros(3), emb, np.ones(3), h, c)
    assert np.allclose(p.sum(1), 1, atol=1e-5)


def test_members_heard_by_other_speakers_or_stacked_are_refused(trained, second_vocal,
                                                                 tmp_path):
    from emotion_training.encoder_checkpoint import load_vocal
    from emotion_training.engine import load_checkpoint, save_checkpoint
    from emotion_training.train import main
    first = trained['out'] / 'vocal' / 'best.pt'
    # Other training speakers give another normalisation prior: the ensemble's input would
    # suit only one member.
    other = tmp_path / 'other_speakers'
    assert main(['vocal', *trained['common'], *_VOCAL_RUN, '--val-speakers', '09',
                 '--out', str(other)]) == 0
    with pytest.raises(SystemExit, match='has preprocess'):
        load_vocal(f'{first},{other / "best.pt"}')
    ck = load_checkpoint(second_vocal)
    ck['labels'] = list(reversed(ck['labels']))
    save_checkpoint(tmp_path / 'reordered.pt', ck)
    with pytest.raises(SystemExit, match='reordered.pt has labels'):
        load_vocal(f'{first},{tmp_path / "reordered.pt"}')
    with pytest.raises(SystemExit, match='not a single vocal-stage checkpoint'):
        load_vocal(f'{first},{trained["out"] / "vision" / "best.pt"}')
    with pytest.raises(SystemExit, match='trains one encoder'):
        main(['vocal', *trained['common'], *_VOCAL_RUN, '--val-speakers', '10',
              '--init-vocal', f'{first},{second_vocal}', '--out', str(tmp_path / 'v')])
