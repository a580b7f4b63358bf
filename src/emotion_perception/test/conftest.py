"""pytest fixtures of the perception tests; the media themselves are in perception_media.py."""
from __future__ import annotations

import pathlib

import pytest
from perception_media import speech_wav

from emotion_test_tools.tiny_bundle import make_tiny_bundle


@pytest.fixture(scope='session')
def speech_file(tmp_path_factory) -> tuple[pathlib.Path, float, float]:
    path = tmp_path_factory.mktemp('speech') / 'speech.wav'
    try:
        start, end = speech_wav(path)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return path, start, end


@pytest.fixture(scope='session')
def test_bundle(tmp_path_factory) -> pathlib.Path:
    """A small random-weight bundle built without torch (emotion_test_tools.tiny_bundle)."""
    return make_tiny_bundle(tmp_path_factory.mktemp('bundle') / 'bundle')


@pytest.fixture(scope='session')
def speaker_bundle(tmp_path_factory) -> pathlib.Path:
    """A small random-weight bundle whose voice is speaker-normalised (calibrated per speaker)."""
    norm = {'type': 'speaker', 'mean': [-6.0] * 64, 'std': [4.0] * 64, 'prior_frames': 100.0}
    return make_tiny_bundle(tmp_path_factory.mktemp('sb') / 'bundle', vocal_normalisation=norm)
