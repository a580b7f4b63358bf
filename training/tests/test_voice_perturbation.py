"""Vocal-tract-length and speaking-rate perturbation of the voice model's training windows
(``augment.scale_logmel`` / ``warp_logmel``, ``emotion-train vocal --vocal-warp
--vocal-stretch``)."""
import json

import pytest
import torch

from emotion_training.augment import mel_band_hz, scale_logmel, warp_logmel


def _band(bands: torch.Tensor, hz: float) -> int:
    return int((bands - hz).abs().argmin())


def test_scale_moves_formants_and_events_by_the_factor():
    bands = mel_band_hz(64, 50.0, 8000.0)
    assert bands[0] > 50.0 and bands[-1] < 8000.0 and torch.all(bands[1:] > bands[:-1])
    x = torch.zeros(3, 1, 64, 101)
    k = _band(bands, 1000.0)
    x[:, 0, k, 50] = 1.0                   # an event at the window's centre
    x[:, 0, k, 70] = 1.0                   # and one 20 frames after it
    y = scale_logmel(x, bands, torch.tensor([1.0, 1.2, 0.85]), torch.tensor([1.0, 1.5, 1.0]))
    assert torch.allclose(y[0], x[0], atol=1e-6)                      # factors 1: unchanged
    assert int(y[1, 0].sum(1).argmax()) == _band(bands, 1.2 * float(bands[k]))
    assert int(y[2, 0].sum(1).argmax()) == _band(bands, 0.85 * float(bands[k]))
    frames = torch.nonzero(y[1, 0].sum(0) > 0.5).flatten().tolist()
    assert 50 in frames and 80 in frames and 70 not in frames        # 50 + 20 x 1.5 = 80
    assert torch.nonzero(y[2, 0].sum(0) > 0.5).flatten().tolist() == [50, 70]


def test_warp_draws_factors_within_the_range_and_zero_is_off():
    bands = mel_band_hz(64, 50.0, 8000.0)
    x = torch.randn(16, 1, 64, 101)
    gen = torch.Generator().manual_seed(0)
    assert warp_logmel(x, gen, bands, 0.0, 0.0) is x
    y = warp_logmel(x, gen, bands, 0.1, 0.1)
    assert y.shape == x.shape and not torch.allclose(y, x)
    # a single spectral line at 2 kHz moves by at most 10 % either way
    line = torch.zeros(64, 1, 64, 101)
    k = _band(bands, 2000.0)
    line[:, 0, k, :] = 1.0
    peaks = warp_logmel(line, gen, bands, 0.1, 0.0)[:, 0].sum(2).argmax(1)
    assert peaks.min() >= _band(bands, 0.9 * float(bands[k])) - 1
    assert peaks.max() <= _band(bands, 1.1 * float(bands[k])) + 1
    assert len(set(peaks.tolist())) > 2                              # the factor varies


def test_vocal_training_with_perturbation_records_it(syn_data, trained, trained_bundle,
                                                     tmp_path, capsys, monkeypatch):
    from emotion_training_helpers import TINY_VOCAL

    import emotion_training.stages.vocal as vocal_stage
    from emotion_runtime.model_bundle import ModelBundle
    from emotion_training.engine import load_checkpoint
    from emotion_training.export import main as export_main
    from emotion_training.train import main as train_main
    calls = []

    def counted(x, gen, bands, w, s):
        calls.append((w, s))
        return warp_logmel(x, gen, bands, w, s)
    monkeypatch.setattr(vocal_stage, 'warp_logmel', counted)
    base = ['vocal', *trained['common'], *TINY_VOCAL, '--epochs', '1', '--batch-size', '16',
            '--val-speakers', '10']
    assert train_main([*base, '--out', str(tmp_path / 'v0')]) == 0
    assert not calls and 'perturbation' not in load_checkpoint(tmp_path / 'v0' / 'last.pt')
    assert train_main([*base, '--vocal-warp', '0.1', '--vocal-stretch', '0.05',
                       '--out', str(tmp_path / 'v')]) == 0
    assert 'frequencies scaled by up to +-10%' in capsys.readouterr().err
    assert calls and all(c == pytest.approx((0.1, 0.05)) for c in calls)   # every batch
    ck = load_checkpoint(tmp_path / 'v' / 'last.pt')
    assert ck['perturbation'] == {'warp': 0.1, 'stretch': 0.05}
    assert export_main(['--from-bundle', str(trained_bundle), '--vocal',
                        str(tmp_path / 'v' / 'last.pt'), '--out', str(tmp_path / 'b')]) == 0
    record = ModelBundle.load(tmp_path / 'b').manifest['training']['vocal']
    assert record['perturbation'] == {'warp': 0.1, 'stretch': 0.05}
    assert 'scaled by up to +-0.1' in json.dumps(record)
