"""Small learnable synthetic data in the real sets' layouts (for tests, smoke runs and benches).

Faces: cartoon faces drawn with OpenCV whose mouth/brows encode the expression (happy = smile,
sad = frown + raised inner brows, neutral = straight mouth, angry = lowered inner brows, ...)
with random position, size, lighting and noise.  Speech: voiced tones whose pitch, loudness and
vibrato depend on the emotion, written as EmoDB-named WAVs (speaker ids in the name).
"""
from __future__ import annotations

import pathlib
from typing import Sequence

import cv2
import numpy as np
import soundfile as sf

from .labels import VALENCE_AROUSAL

EMODB_LETTER = {'angry': 'W', 'disgust': 'E', 'fear': 'A', 'happy': 'F', 'neutral': 'N', 'sad': 'T'}


def draw_face(label: str, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """One uint8 grey face of ``label``."""
    s = 4 * size  # draw large, then shrink (anti-aliasing)
    img = np.full((s, s), int(rng.integers(20, 90)), np.uint8)
    cx, cy = s // 2 + int(rng.integers(-s // 16, s // 16)), s // 2 + int(rng.integers(-s // 16, s // 16))
    r = int(s * rng.uniform(0.33, 0.42))
    skin = int(rng.integers(150, 230))
    cv2.ellipse(img, (cx, cy), (int(r * 0.85), r), 0, 0, 360, skin, -1)
    dark = int(skin * 0.3)
    ex, ey = int(r * 0.35), cy - int(r * 0.25)
    for sx in (-1, 1):
        cv2.circle(img, (cx + sx * ex, ey), max(2, r // 9), dark, -1)
        inner = (cx + sx * int(r * 0.15), ey - int(r * 0.22))
        outer = (cx + sx * int(r * 0.55), ey - int(r * 0.22))
        if label in ('angry', 'disgust'):
            inner = (inner[0], inner[1] + int(r * 0.12))
        elif label in ('sad', 'fear'):
            inner = (inner[0], inner[1] - int(r * 0.12))
        elif label == 'surprise':     # both ends of the brow raised
            inner = (inner[0], inner[1] - int(r * 0.12))
            outer = (outer[0], outer[1] - int(r * 0.12))
        cv2.line(img, inner, outer, dark, max(2, r // 14))
    my, mw = cy + int(r * 0.45), int(r * 0.4)
    th = max(2, r // 12)
    if label == 'happy':
        cv2.ellipse(img, (cx, my - int(r * 0.1)), (mw, int(r * 0.22)), 0, 10, 170, dark, th)
    elif label == 'sad':
        cv2.ellipse(img, (cx, my + int(r * 0.12)), (mw, int(r * 0.2)), 0, 190, 350, dark, th)
    elif label == 'fear':
        cv2.ellipse(img, (cx, my), (int(mw * 0.5), int(r * 0.2)), 0, 0, 360, dark, -1)
    elif label == 'disgust':
        cv2.line(img, (cx - mw, my + int(r * 0.08)), (cx + mw, my - int(r * 0.08)), dark, th)
    elif label == 'angry':
        cv2.rectangle(img, (cx - mw, my - th), (cx + mw, my + th), dark, -1)
    elif label == 'surprise':         # a round open mouth (outline)
        cv2.circle(img, (cx, my), int(r * 0.2), dark, th)
    else:
        cv2.line(img, (cx - mw, my), (cx + mw, my), dark, th)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    img = img * rng.uniform(0.7, 1.2) + rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_face_folders(root: str | pathlib.Path, labels: Sequence[str], per_class: int,
                       seed: int = 0, size: int = 48, colour: bool = False) -> pathlib.Path:
    """``root/<label>/<i>.png`` faces (FER2013 class-folder layout)."""
    root = pathlib.Path(root)
    rng = np.random.default_rng(seed)
    for lab in labels:
        (root / lab).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = draw_face(lab, rng, size)
            if colour:
                img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
            cv2.imwrite(str(root / lab / f'{i:04d}.png'), img)
    return root


_VOICE = {  # f0 Hz, amplitude, vibrato Hz
    'angry': (260, 0.6, 0.0), 'happy': (330, 0.4, 6.0), 'sad': (110, 0.08, 0.0),
    'neutral': (160, 0.2, 0.0), 'fear': (400, 0.25, 12.0), 'disgust': (140, 0.3, 3.0),
    'surprise': (520, 0.5, 2.0)}


def tone(label: str, rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    """A voiced, harmonic tone whose pitch/level/vibrato encode ``label`` (speaker jitter added)."""
    f0, amp, vib = _VOICE[label]
    f0 *= rng.uniform(0.9, 1.1)
    t = np.arange(int(seconds * rate)) / rate
    inst = f0 * (1 + 0.05 * np.sin(2 * np.pi * vib * t)) if vib else np.full_like(t, f0)
    phase = 2 * np.pi * np.cumsum(inst) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 6))
    env = np.clip(np.minimum(t, t[-1] - t) * 20, 0, 1)
    x = amp * rng.uniform(0.8, 1.2) * env * x / 2.3 + rng.normal(0, 0.003, t.size)
    return x.astype(np.float32)


def write_emodb(root: str | pathlib.Path, labels: Sequence[str], speakers: Sequence[str],
                per_speaker_class: int, seed: int = 0, rate: int = 22050,
                seconds: float = 1.5) -> pathlib.Path:
    """``root/wav/SSaTTEv.wav`` files in EmoDB naming (trailing silence like the shared copy)."""
    wav = pathlib.Path(root) / 'wav'
    wav.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for sp in speakers:
        for lab in labels:
            for i in range(per_speaker_class):
                x = tone(lab, rng, seconds * rng.uniform(0.6, 1.0), rate)
                x = np.pad(x, (0, int(seconds * rate) - x.size))
                name = f'{sp}{"a" if i < 10 else "b"}{i % 10 + 1:02d}{EMODB_LETTER[lab]}a.wav'
                sf.write(str(wav / name), x, rate)
    return pathlib.Path(root)


RAVDESS_CODE = {'neutral': '01', 'calm': '02', 'happy': '03', 'sad': '04', 'angry': '05',
                'fear': '06', 'disgust': '07', 'surprise': '08'}


def write_ravdess(root: str | pathlib.Path, labels: Sequence[str], actors: Sequence[str],
                  per_actor_class: int = 2, seed: int = 0, rate: int = 16000,
                  seconds: float = 1.5, lead: float = 0.4, ext: str = 'flac') -> pathlib.Path:
    """``root/Actor_AA/03-01-EE-II-SS-RR-AA.flac`` speech in RAVDESS naming (16 kHz mono FLAC like
    the shared copy, with a quiet lead and tail).  ``labels`` may include 'calm' (code 02; drawn
    with neutral's tone)."""
    root = pathlib.Path(root)
    rng = np.random.default_rng(seed)
    for actor in actors:
        d = root / f'Actor_{actor}'
        d.mkdir(parents=True, exist_ok=True)
        for lab in labels:
            for i in range(per_actor_class):
                x = tone('neutral' if lab == 'calm' else lab, rng,
                         seconds * rng.uniform(0.6, 1.0), rate)
                x = np.pad(x, (int(lead * rate), int(lead * rate)))
                name = (f'03-01-{RAVDESS_CODE[lab]}-{"01" if lab == "neutral" else "02"}-'
                        f'{i % 2 + 1:02d}-{i // 2 + 1:02d}-{actor}.{ext}')
                sf.write(str(d / name), x, rate)
    return root


CREMAD_CODE = {'angry': 'ANG', 'disgust': 'DIS', 'fear': 'FEA', 'happy': 'HAP', 'neutral': 'NEU',
               'sad': 'SAD'}


def write_cremad(root: str | pathlib.Path, labels: Sequence[str], actors: Sequence[str],
                 per_actor_class: int = 1, seed: int = 0, seconds: float = 2.0,
                 rate: int = 16000, fps: int = 10) -> pathlib.Path:
    """``AudioWAV/*.wav`` + ``VideoFlash/*.mp4`` named ``ActorID_Sentence_Emotion_Level``
    (video: a drawn face of the emotion on a plain background; audio: the emotion's tone)."""
    root = pathlib.Path(root)
    (root / 'AudioWAV').mkdir(parents=True, exist_ok=True)
    (root / 'VideoFlash').mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sentences = ['DFA', 'IEO', 'TIE', 'MTI', 'ITH']
    for actor in actors:
        for lab in labels:
            for i in range(per_actor_class):
                stem = f'{actor}_{sentences[i % len(sentences)]}_{CREMAD_CODE[lab]}_XX'
                sf.write(str(root / 'AudioWAV' / f'{stem}.wav'), tone(lab, rng, seconds, rate),
                         rate)
                vw = cv2.VideoWriter(str(root / 'VideoFlash' / f'{stem}.mp4'),
                                     cv2.VideoWriter_fourcc(*'mp4v'), fps, (96, 96))
                for _ in range(int(seconds * fps)):
                    vw.write(cv2.cvtColor(draw_face(lab, rng, 96), cv2.COLOR_GRAY2BGR))
                vw.release()
    return root


def write_semaine(root: str | pathlib.Path, labels: Sequence[str], sessions: Sequence[str],
                  seconds_per_label: float = 3.0, seed: int = 0, rate: int = 16000,
                  fps: int = 10) -> pathlib.Path:
    """``Sessions/<id>/`` with a user video, a user WAV and two raters' FeelTrace valence and
    arousal traces (``R<k>S<id>TUDV.txt`` / ``TUDA.txt``, ``time value`` rows).  Each session
    shows every label in turn for ``seconds_per_label``; the traces follow the label's point of
    the valence/arousal table plus rater noise."""
    root = pathlib.Path(root)
    rng = np.random.default_rng(seed)
    for sid in sessions:
        d = root / 'Sessions' / sid
        d.mkdir(parents=True, exist_ok=True)
        order = list(rng.permutation(list(labels)))
        sf.write(str(d / 'User HeadMounted.wav'),
                 np.concatenate([tone(lab, rng, seconds_per_label, rate) for lab in order]), rate)
        vw = cv2.VideoWriter(str(d / 'User Frontal.mp4'), cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (96, 96))
        for lab in order:
            for _ in range(int(seconds_per_label * fps)):
                vw.write(cv2.cvtColor(draw_face(lab, rng, 96), cv2.COLOR_GRAY2BGR))
        vw.release()
        t = np.arange(0.0, len(order) * seconds_per_label, 0.02)
        which = np.minimum((t // seconds_per_label).astype(int), len(order) - 1)
        table = np.array([VALENCE_AROUSAL[order[i]] for i in which])
        for rater in ('R1', 'R2'):
            noisy = np.clip(table + rng.normal(0, 0.05, table.shape), -1, 1)
            np.savetxt(d / f'{rater}S{sid}TUDV.txt', np.c_[t, noisy[:, 0]], fmt='%.3f')
            np.savetxt(d / f'{rater}S{sid}TUDA.txt', np.c_[t, noisy[:, 1]], fmt='%.3f')
    return root
