"""Shared fixtures: synthetic data in the real layouts, a tiny bundle, the real-data path."""
from __future__ import annotations

import pathlib

import pytest
import torch
from emotion_training_helpers import LABELS3, TINY_VISION, TINY_VOCAL

from emotion_training.config import default_data_root
from emotion_training.synthetic import write_emodb, write_face_folders
from emotion_training.testing import make_test_bundle

torch.set_num_threads(1)


@pytest.fixture(scope='session')
def data_root() -> pathlib.Path:
    """The shared real data; tests using it skip where it is absent."""
    root = default_data_root()
    if not (root / 'fer2013').is_dir() or not (root / 'emodb').is_dir():
        pytest.skip(f'real data not found at {root} (set EMOTION_DATA)')
    return root


@pytest.fixture(scope='session')
def syn_data(tmp_path_factory) -> pathlib.Path:
    """DATA/fer2013/{train,validation}/<class>/*.png and DATA/emodb/wav/*.wav, synthetic."""
    root = tmp_path_factory.mktemp('data')
    write_face_folders(root / 'fer2013' / 'train', LABELS3, per_class=80, seed=1)
    write_face_folders(root / 'fer2013' / 'validation', LABELS3, per_class=20, seed=2)
    write_emodb(root / 'emodb', LABELS3, ['03', '08', '09', '10'], per_speaker_class=4, seed=3)
    return root


@pytest.fixture(scope='session')
def bundle_dir(tmp_path_factory) -> pathlib.Path:
    return make_test_bundle(tmp_path_factory.mktemp('bundle') / 'b')




@pytest.fixture(scope='session')
def trained(syn_data, tmp_path_factory) -> dict:
    """Vision, vocal and fusion stages trained on the synthetic data (shared by several tests)."""
    from emotion_training.train import main
    out = tmp_path_factory.mktemp('runs')
    common = ['--data', str(syn_data), '--labels', ','.join(LABELS3), '--quiet', '--seed', '0',
              '--threads', '1']
    assert main(['vision', *common, *TINY_VISION, '--epochs', '6', '--batch-size', '32',
                 '--optimizer', 'adamw', '--lr', '0.01', '--augment', '0.3',
                 '--out', str(out / 'vision')]) == 0
    assert main(['vocal', *common, *TINY_VOCAL, '--epochs', '8', '--batch-size', '16',
                 '--optimizer', 'adamw', '--lr', '0.01', '--val-speakers', '10',
                 '--out', str(out / 'vocal')]) == 0
    assert main(['fusion', *common, '--init-vision', str(out / 'vision' / 'best.pt'),
                 '--init-vocal', str(out / 'vocal' / 'best.pt'), '--val-speakers', '10',
                 '--epochs', '4', '--steps-per-epoch', '20', '--batch-size', '32',
                 '--optimizer', 'adamw', '--lr', '0.01', '--fusion-hidden', '16',
                 '--out', str(out / 'fusion')]) == 0
    return {'out': out, 'common': common}


@pytest.fixture(scope='session')
def trained_bundle(trained) -> pathlib.Path:
    """The synthetic-trained stages exported as a bundle."""
    from emotion_training.export import main as export_main
    out = trained['out']
    assert export_main(['--vision', str(out / 'vision' / 'best.pt'), '--vocal',
                        str(out / 'vocal' / 'best.pt'), '--fusion', str(out / 'fusion' / 'best.pt'),
                        '--out', str(out / 'bundle')]) == 0
    return out / 'bundle'
