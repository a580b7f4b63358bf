"""Default preprocessing sections (copied into checkpoints and the bundle manifest) and paths."""
from __future__ import annotations

import os
import pathlib

#: Vision preprocessing: 48x48 grey, FER2013's native size; mean/std ~ FER2013 pixel statistics.
VISION_PREPROCESS = {'input_size': 48, 'channels': 1, 'mean': 0.5, 'std': 0.25}

#: Vocal preprocessing: 16 kHz (the robot microphone and EmoDB's original rate), 25 ms windows,
#: 10 ms hop, 64 mel bands 50 Hz-8 kHz; 1.0 s analysis windows every 0.5 s.  ``normalisation`` is
#: filled with the training set's global log-mel mean/std by the vocal stage.
VOCAL_PREPROCESS = {'sample_rate': 16000, 'n_mels': 64, 'n_fft': 512, 'win_length': 400,
                    'hop_length': 160, 'fmin': 50.0, 'fmax': 8000.0, 'window_seconds': 1.0,
                    'hop_seconds': 0.5, 'normalisation': {'type': 'global', 'mean': -6.0, 'std': 4.0}}

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def default_data_root() -> pathlib.Path:
    """$EMOTION_DATA, else ``../shared/data`` beside the repository root."""
    env = os.environ.get('EMOTION_DATA')
    return pathlib.Path(env) if env else (REPO_ROOT.parent / 'shared' / 'data').resolve()
