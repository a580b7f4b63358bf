"""What the torch-free robot side relies on from training, checked from the training side.

* ``emotion_test_tools.tiny_bundle`` (the ROS tests' bundle, built without torch) has the same
  graph interface and manifest tables as a bundle that ``emotion-export`` writes.
* ``emotion-bag make --demo --write-video --write-wav`` writes the demo's three files in one
  command (the bringup demo calls it as a subprocess instead of importing this package).
"""
from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from emotion_runtime.labels import shipped_manifest_path
from emotion_runtime.model_bundle import ModelBundle, load_manifest
from emotion_test_tools import tiny_bundle
from emotion_training import config, labels
from emotion_training.bag_cli import main as bag_main


def test_tiny_bundle_tables_are_the_training_ones():
    assert tiny_bundle.PROJECT_LABELS == labels.DEFAULT_LABELS
    assert len(labels.DEFAULT_LABELS) == 7 and 'surprise' in labels.DEFAULT_LABELS
    # the tiny bundle's default is the shipped manifest's list (what the nodes expect by default)
    assert list(tiny_bundle.DEFAULT_LABELS) == load_manifest(
        shipped_manifest_path().parent)['labels']
    assert tiny_bundle.VALENCE_AROUSAL == labels.VALENCE_AROUSAL
    assert tiny_bundle.VISION_PREPROCESS == config.VISION_PREPROCESS
    assert tiny_bundle.VOCAL_PREPROCESS == config.VOCAL_PREPROCESS


def test_tiny_bundle_has_the_exported_interface(bundle_dir, tmp_path):
    tiny_path = tiny_bundle.make_tiny_bundle(tmp_path / 'tiny', labels=labels.DEFAULT_LABELS)
    exported, tiny = ModelBundle.load(bundle_dir), ModelBundle.load(tiny_path)
    for key in ('vision', 'vocal', 'fusion'):
        for kind in ('get_inputs', 'get_outputs'):
            want = [(a.name, a.type, [d if isinstance(d, int) else None for d in a.shape])
                    for a in getattr(exported.session(key), kind)()]
            got = [(a.name, a.type, [d if isinstance(d, int) else None for d in a.shape])
                   for a in getattr(tiny.session(key), kind)()]
            assert got == want, (key, kind)
    m_exp, m_tiny = load_manifest(bundle_dir), load_manifest(tiny_path)
    assert m_tiny['labels'] == m_exp['labels']
    assert m_tiny['valence_arousal'] == m_exp['valence_arousal']
    assert set(m_exp) <= set(m_tiny)
    for section in ('vision', 'vocal', 'fusion'):
        assert set(m_exp[section]) <= set(m_tiny[section]), section
    assert exported.summary.split('(')[1] == tiny.summary.split('(')[1]


def test_make_demo_writes_video_and_wav_too(tmp_path, capsys):
    import cv2
    rc = bag_main(['make', str(tmp_path / 'bag'), '--demo', '--no-speech', '--seconds', '1',
                   '--size', '160x120', '--fps', '10', '--demo-labels', 'happy,sad',
                   '--write-video', str(tmp_path / 'clip.mp4'),
                   '--write-wav', str(tmp_path / 'speech.wav')])
    assert rc == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    video = tmp_path / result['video'].rsplit('/', 1)[-1]
    assert video.stem == 'clip' and video.suffix in ('.mp4', '.avi') and video.is_file()
    cap = cv2.VideoCapture(str(video))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert frames == 10
    audio, rate = sf.read(result['wav'], dtype='float32')
    assert rate == 16000 and audio.shape == (16000,) and np.abs(audio).max() < 0.01
    assert [s['label'] for s in result['segments']] == ['happy', 'sad']
    assert [n for topic, n in result['counts'].items() if 'image' in topic] == [10]
