"""Real media for the perception tests and bench: the astronaut photo moving across a frame,
espeak-ng speech between silences, and the photo set for detection recall.

Why one module: the unit tests, the node tests and bench/bench_perception.py must use the same
inputs, so a detector or VAD change that breaks one shows in all.  Plain functions (no pytest
fixtures) so the bench can import it.
"""
from __future__ import annotations

import pathlib
import shutil
import subprocess

import cv2
import numpy as np
import soundfile as sf

FRAME_W, FRAME_H = 640, 480
SPEECH_TEXT = 'Hello there. I am really happy to see you again today, my friend.'
LEAD_SILENCE, TAIL_SILENCE = 2.0, 3.0


def astronaut_face_patch(size: int = 220) -> np.ndarray:
    """The head-and-shoulders part of skimage's astronaut photo, BGR, ``size`` px square."""
    from skimage import data
    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    patch = img[20:300, 110:390]            # the face is near (177, 66, 97, 97) in the photo
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)


def moving_face_frames(n: int = 30, size: int = 220, seed: int = 0) -> list:
    """``n`` 640x480 BGR frames with the photo sliding left to right over a textured background."""
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(60, 140, (FRAME_H, FRAME_W, 3), np.uint8), (7, 7), 0)
    patch = astronaut_face_patch(size)
    frames = []
    for i in range(n):
        x = int(20 + (FRAME_W - size - 40) * i / max(1, n - 1))
        y = int(100 + 30 * np.sin(i / 5.0))
        f = background.copy()
        f[y:y + size, x:x + size] = patch
        frames.append(f)
    return frames


def speech_wav(path: pathlib.Path, rate: int = 16000, noise_dbfs: float = -60.0,
               seed: int = 0) -> tuple[float, float]:
    """Write LEAD_SILENCE s of quiet noise + espeak-ng speech + TAIL_SILENCE s to ``path``.

    Returns (speech_start, speech_end) in seconds of the file (bounds of the espeak output, which
    itself has a little silence at both ends).
    """
    if shutil.which('espeak-ng') is None:
        raise FileNotFoundError('espeak-ng is not installed (apt install espeak-ng)')
    raw = path.with_suffix('.espeak.wav')
    subprocess.run(['espeak-ng', '-w', str(raw), SPEECH_TEXT], check=True, capture_output=True)
    speech, sr = sf.read(raw, dtype='float32')
    if sr != rate:
        from emotion_runtime.preprocess import resample
        speech = resample(speech, sr, rate)
    rng = np.random.default_rng(seed)
    amp = 10 ** (noise_dbfs / 20)

    def noise(seconds: float) -> np.ndarray:
        return (rng.standard_normal(int(seconds * rate)) * amp).astype(np.float32)

    sig = np.concatenate([noise(LEAD_SILENCE), speech + noise(len(speech) / rate)[:len(speech)],
                          noise(TAIL_SILENCE)])
    sf.write(path, sig, rate, subtype='PCM_16')
    return LEAD_SILENCE, LEAD_SILENCE + len(speech) / rate


def detection_photos() -> tuple[dict, dict]:
    """Real photos for detection recall: ({name: (BGR image, faces in it)}, {name: face-free}).

    With faces: skimage's astronaut and cameraman and the 100 LFW faces of ``lfw_subset`` (25x25
    crops, enlarged to 100x100 and placed on a 640x480 grey frame).  Without faces: coffee,
    chelsea (a cat), rocket and the 100 LFW non-face crops, placed the same way.
    """
    from skimage import data
    with_faces = {'astronaut': (cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), 1),
                  'camera': (cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR), 1)}
    without = {n: cv2.cvtColor(getattr(data, n)(), cv2.COLOR_RGB2BGR)
               for n in ('coffee', 'chelsea', 'rocket')}
    lfw = data.lfw_subset()
    for i, crop in enumerate(lfw):
        img = cv2.resize((crop * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
        frame = np.full((FRAME_H, FRAME_W), 128, np.uint8)
        frame[190:290, 270:370] = img
        bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if i < 100:
            with_faces[f'lfw_face_{i}'] = (bgr, 1)
        else:
            without[f'lfw_nonface_{i - 100}'] = bgr
    return with_faces, without
