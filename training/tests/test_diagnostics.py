"""The feature-collapse alarm fires on a deliberately collapsed encoder, and only then."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emotion_training.diagnose import EXIT_COLLAPSE
from emotion_training.diagnose import main as diagnose_main
from emotion_training.diagnostics import FeatureCollapseError, check_collapse
from emotion_training.export import export_bundle


def _collapsed_bundle(trained, path):
    """The synthetic-trained models with the vision embedding layer zeroed on purpose."""
    from emotion_training.export import models_from_checkpoints
    out = trained['out']
    labels, vision, vpre, vocal, apre, fusion, _ = models_from_checkpoints(
        *[str(out / s / 'best.pt') for s in ('vision', 'vocal', 'fusion')])
    with torch.no_grad():                      # zero the last layer before the embedding
        vision.embed[0].weight.zero_()
    return export_bundle(path, labels, vision, vpre, vocal, apre, fusion)


def test_check_collapse_alarm_and_stop(capsys):
    rng = np.random.default_rng(0)
    healthy = check_collapse('healthy', rng.normal(size=(32, 8)))
    assert not healthy['collapsed']
    const = np.tile(rng.normal(size=(1, 8)), (32, 1)) + 1e-6 * rng.normal(size=(32, 8))
    st = check_collapse('enc', const)
    assert st['collapsed'] and 'FEATURE COLLAPSE' in capsys.readouterr().err
    with pytest.raises(FeatureCollapseError):
        check_collapse('enc', const, stop=True)


def test_diagnose_command_flags_zeroed_encoder(tmp_path, capsys, trained, trained_bundle,
                                              syn_data):
    faces, speech = syn_data / 'fer2013' / 'validation', syn_data / 'emodb' / 'wav'
    assert diagnose_main(['--bundle', str(trained_bundle), '--faces', str(faces),
                          '--speech', str(speech), '-n', '32']) == 0
    ok = json.loads(capsys.readouterr().out)
    assert ok['collapsed'] == []
    bad = _collapsed_bundle(trained, tmp_path / 'collapsed')
    assert diagnose_main(['--bundle', str(bad), '--faces', str(faces), '--speech', str(speech),
                          '-n', '32', '--stop-on-collapse']) == EXIT_COLLAPSE
    cap = capsys.readouterr()
    res = json.loads(cap.out)
    assert 'vision.embedding' in res['collapsed']
    assert 'FEATURE COLLAPSE' in cap.err


def test_training_stops_on_collapse(syn_data, tmp_path):
    """A vision stage whose embedding layer is zeroed and frozen trips --stop-on-collapse."""
    from emotion_training_helpers import LABELS3, TINY_VISION

    from emotion_training import train
    from emotion_training.stages import vision as vision_stage
    orig = vision_stage.build_model

    def zeroed(args, n):
        m = orig(args, n)
        with torch.no_grad():
            m.embed[0].weight.zero_()
            m.embed[0].bias.fill_(0.1)
        m.embed[0].weight.requires_grad_(False)
        m.embed[0].bias.requires_grad_(False)
        return m
    vision_stage.build_model = zeroed
    try:
        with pytest.raises(FeatureCollapseError, match='vision.embedding'):
            train.main(['vision', '--data', str(syn_data), '--labels', ','.join(LABELS3),
                        '--quiet', '--threads', '1', *TINY_VISION, '--epochs', '1',
                        '--max-faces', '60', '--stop-on-collapse', '--out', str(tmp_path)])
    finally:
        vision_stage.build_model = orig
    # the collapsed epoch is still recorded, and drawn, before the run stops
    rows = (tmp_path / 'metrics.csv').read_text().splitlines()
    assert len(rows) == 2 and float(rows[1].split(',')[-2]) < 1e-3
    assert (tmp_path / 'curves.png').stat().st_size > 5000


def test_training_curves_drawn_from_metrics(tmp_path, trained):
    import matplotlib.image as mpimg

    from emotion_training.curves import plot_curves
    png = trained['out'] / 'vision' / 'curves.png'      # drawn by every emotion-train run
    img = mpimg.imread(png)
    assert img.shape[1] > 2 * img.shape[0] > 300        # three panels side by side
    empty = tmp_path / 'metrics.csv'
    empty.write_text('epoch,train_loss\n')
    with pytest.raises(ValueError, match='no epoch rows'):
        plot_curves(empty, tmp_path / 'x.png')
