"""The GPU route (training/scripts/device_vision.sh) runs face training on an image that has
torch and OpenCV but no audio libraries: the vision stage must train without librosa or
soundfile, and audio must still fail with a clear error there rather than at import time."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from emotion_training_helpers import LABELS3, TINY_VISION

REPO = pathlib.Path(__file__).resolve().parents[2]


def _blocked_env(tmp_path: pathlib.Path) -> dict:
    block = tmp_path / 'block'
    for name in ('librosa', 'soundfile'):
        (block / name).mkdir(parents=True)
        (block / name / '__init__.py').write_text(
            f"raise ImportError('{name} is not installed (blocked by the test)')\n")
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(block), env.get('PYTHONPATH', '')])
    return env


def test_vision_training_needs_no_audio_library(syn_data, tmp_path):
    env = _blocked_env(tmp_path)
    out = tmp_path / 'vision'
    cmd = [sys.executable, '-m', 'emotion_training.train', 'vision', '--data', str(syn_data),
           '--labels', ','.join(LABELS3), '--quiet', '--threads', '1', *TINY_VISION,
           '--epochs', '1', '--batch-size', '32', '--out', str(out)]
    run = subprocess.run(cmd, env=env, cwd=REPO / 'training', capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (out / 'best.pt').is_file()
    # the block really is in force in that environment: reading audio names the missing library
    probe = subprocess.run([sys.executable, '-c',
                            'from emotion_training.audio_io import read_mono; read_mono("x.wav")'],
                           env=env, cwd=REPO / 'training', capture_output=True, text=True,
                           timeout=120)
    assert probe.returncode != 0 and 'soundfile is not installed' in probe.stderr


def test_device_script_explains_itself_without_arguments():
    run = subprocess.run(['bash', str(REPO / 'training' / 'scripts' / 'device_vision.sh')],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert 'pack' in run.stdout and 'run' in run.stdout and '64 MiB' in run.stdout


def test_device_script_refuses_a_member_it_does_not_know_before_any_work():
    env = dict(os.environ, MEMBERS='s1:4 b:2', OUT='/nonexistent/out')
    run = subprocess.run(['bash', str(REPO / 'training' / 'scripts' / 'device_vision.sh'), 'run'],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "MEMBERS word 'b:2'" in run.stderr and 'zipfile' not in run.stderr
