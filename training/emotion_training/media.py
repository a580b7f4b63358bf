"""Sources of synthetic or recorded clips for evaluation bags (`emotion-bag make`).

Why a module of its own: a bag for evaluation needs three time-aligned streams (camera frames,
microphone samples and the true label of each moment).  Every source — a recorded clip, a
sequence of labelled face images and utterances, or the built-in demo — is turned into the same
`Clip` (frames produced on demand, one mono audio track, labelled segments) so that the bag writer
has one code path and the streams cannot drift apart.  Frames are generated lazily because a
640x480 clip at 30 fps is 27 MB per second of video.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import math
import pathlib
import shutil
import subprocess
import tempfile
from typing import Callable, Iterator, Optional, Sequence

import cv2
import numpy as np

from .audio_io import AudioReadError, read_mono
from .datasets.common import UnreadableImageError, read_face
from .datasets.emodb import load_emodb, parse_emodb_name
from .datasets.folders import load_audio_folders, load_image_folders
from .datasets.ravdess import load_ravdess, parse_ravdess_name
from .labels import canonical

log = logging.getLogger('emotion_bag')

DEFAULT_SIZE = (640, 480)
DEFAULT_FPS = 30.0
DEFAULT_RATE = 16000


class MediaError(RuntimeError):
    """An input of `emotion-bag make` is missing, unreadable or inconsistent."""


@dataclasses.dataclass
class Segment:
    """A stretch of the clip timeline [start, end) seconds with one true label."""

    start: float
    end: float
    label: str


@dataclasses.dataclass
class Clip:
    """Frames (on demand), audio and ground truth of one clip, all on one timeline from 0 s.

    `frames()` yields (t_seconds, bgr uint8 HxWx3) in order; `boxes` optionally gives the true face
    box (x, y, w, h) per frame index (synthetic sources know it; it is informative only).
    """

    duration: float
    fps: float
    size: tuple[int, int]  # (width, height)
    n_frames: int
    frames: Callable[[], Iterator[tuple[float, np.ndarray]]]
    audio: Optional[np.ndarray]  # float32 mono in [-1, 1], or None for a clip without sound
    sample_rate: int
    segments: list[Segment]
    description: str = ''

    def label_at(self, t: float) -> Optional[str]:
        """The true label at clip time t (None outside every segment)."""
        for seg in self.segments:
            if seg.start <= t < seg.end:
                return seg.label
        return None


# --------------------------------------------------------------------------- compositing helpers
def make_background(size: tuple[int, int], seed: int = 0,
                    image: Optional[pathlib.Path] = None) -> np.ndarray:
    """A background frame: the given image resized, else a soft room-like gradient with texture.

    Why textured rather than flat: a face detector tuned on real images behaves more like it would
    on a camera when the background is not a constant colour.
    """
    w, h = size
    if image is not None:
        img = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if img is None:
            raise MediaError(f'--background {image}: cannot read it as an image')
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([120 + 40 * xx / w, 110 + 30 * yy / h, 95 + 25 * (1 - yy / h)], axis=-1)
    noise = cv2.GaussianBlur(rng.normal(0, 12, (h, w)).astype(np.float32), (0, 0), 6)
    img = base + noise[..., None]
    # A "door frame" and a "shelf" so the background has edges.
    img[:, int(0.08 * w):int(0.11 * w)] *= 0.7
    img[int(0.25 * h):int(0.27 * h), int(0.7 * w):] *= 0.75
    return np.clip(img, 0, 255).astype(np.uint8)


def _face_mask(h: int, w: int) -> np.ndarray:
    """A feathered elliptical alpha mask so the pasted face has no hard rectangular border."""
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, h // 2), (max(1, int(w * 0.48)), max(1, int(h * 0.49))), 0, 0, 360,
                1.0, -1)
    k = max(3, (min(h, w) // 10) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)[..., None]


def to_bgr(img: np.ndarray) -> np.ndarray:
    """Grey, BGR or BGRA uint8 -> BGR uint8."""
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def composite(background: np.ndarray, face: np.ndarray, cx: float, cy: float,
              height: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Paste `face` (scaled to `height` px tall) centred at (cx, cy); returns frame and its box."""
    face = to_bgr(face)
    fh, fw = face.shape[:2]
    th = int(height)
    tw = max(2, int(round(fw * th / fh)))
    face = cv2.resize(face, (tw, th), interpolation=cv2.INTER_AREA if th < fh else cv2.INTER_CUBIC)
    frame = background.copy()
    H, W = frame.shape[:2]
    x0, y0 = int(round(cx - tw / 2)), int(round(cy - th / 2))
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(W, x0 + tw), min(H, y0 + th)
    if xb <= xa or yb <= ya:
        return frame, (0, 0, 0, 0)
    alpha = _face_mask(th, tw)[ya - y0:yb - y0, xa - x0:xb - x0]
    src = face[ya - y0:yb - y0, xa - x0:xb - x0].astype(np.float32)
    dst = frame[ya:yb, xa:xb].astype(np.float32)
    frame[ya:yb, xa:xb] = np.clip(alpha * src + (1 - alpha) * dst, 0, 255).astype(np.uint8)
    return frame, (xa, ya, xb - xa, yb - ya)


def face_path(t: float, size: tuple[int, int], motion: str, face_h: int,
              seed: int = 0) -> tuple[float, float]:
    """Centre of the face at time t for a motion pattern ('none', 'sweep', 'wander').

    'sweep' crosses the frame left-right-left (period 8 s) so the tracker has to follow it;
    'wander' is a smooth pseudo-random path (sum of sines with seeded phases).
    """
    w, h = size
    margin_x, margin_y = 0.5 * face_h + 10, 0.5 * face_h + 10
    if motion == 'none':
        return w / 2, h / 2
    if motion == 'sweep':
        u = 0.5 - 0.5 * math.cos(2 * math.pi * t / 8.0)
        return margin_x + u * (w - 2 * margin_x), h / 2 + 0.08 * h * math.sin(2 * math.pi * t / 3.0)
    if motion == 'wander':
        rng = np.random.default_rng(seed)
        ph = rng.uniform(0, 2 * math.pi, 4)
        u = 0.5 + 0.3 * math.sin(0.7 * t + ph[0]) + 0.2 * math.sin(1.3 * t + ph[1])
        v = 0.5 + 0.3 * math.sin(0.5 * t + ph[2]) + 0.2 * math.sin(1.1 * t + ph[3])
        return (margin_x + np.clip(u, 0, 1) * (w - 2 * margin_x),
                margin_y + np.clip(v, 0, 1) * (h - 2 * margin_y))
    raise MediaError(f'unknown --motion {motion!r}; use none, sweep or wander')


def _resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample with the same polyphase filter the perception nodes use (one implementation)."""
    from emotion_runtime import preprocess  # noqa: PLC0415 - scipy (~0.6 s): on use only
    return preprocess.resample(np.asarray(samples, np.float32).reshape(-1), from_rate, to_rate)


def _read_audio(path: pathlib.Path, rate: int) -> np.ndarray:
    try:
        samples, sr = read_mono(path)
    except AudioReadError as exc:
        raise MediaError(str(exc)) from exc
    return _resample(samples, sr, rate) if sr != rate else samples


def _synthetic_frames(segments: Sequence[Segment], faces: dict[int, np.ndarray],
                      background: np.ndarray, size: tuple[int, int], fps: float,
                      n_frames: int, motion: str, face_h: int, seed: int
                      ) -> Callable[[], Iterator[tuple[float, np.ndarray]]]:
    """A frame factory: the face image of the current segment pasted along the motion path."""
    def gen() -> Iterator[tuple[float, np.ndarray]]:
        for i in range(n_frames):
            t = i / fps
            k = next((j for j, s in enumerate(segments) if s.start <= t < s.end),
                     len(segments) - 1)
            cx, cy = face_path(t, size, motion, face_h, seed)
            frame, _ = composite(background, faces[k], cx, cy, face_h)
            yield t, frame
    return gen


# --------------------------------------------------------------------------- demo source
#: espeak-ng prosody per label (pitch 0-99, speed words/min, amplitude 0-200): a crude acted
#: emotion, enough to give the voice channel something label-dependent to hear.
_ESPEAK_STYLE = {
    'happy': ('What a wonderful day, I am so glad to see you!', 80, 190, 140),
    'sad': ('I miss them so much. Nothing feels right today.', 20, 110, 70),
    'angry': ('Stop that right now! I told you not to touch it!', 45, 200, 190),
    'neutral': ('The meeting is at ten o clock in the second room.', 50, 160, 100),
    'fear': ('Did you hear that? Something is moving out there.', 70, 210, 90),
    'disgust': ('Ugh, that smells awful. Take it away from me.', 35, 130, 110),
    'surprise': ('Oh! I did not expect you here at all!', 90, 180, 150),
}


def espeak(text: str, rate: int, pitch: int = 50, speed: int = 160, amplitude: int = 100,
           voice: str = 'en') -> Optional[np.ndarray]:
    """Synthesise `text` with espeak-ng; None (with a warning) when espeak-ng is not installed."""
    exe = shutil.which('espeak-ng') or shutil.which('espeak')
    if exe is None:
        log.warning('espeak-ng is not installed: the demo bag gets no speech '
                    '(apt install espeak-ng)')
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = pathlib.Path(tmp) / 'speech.wav'
        cmd = [exe, '-v', voice, '-p', str(pitch), '-s', str(speed), '-a', str(amplitude),
               '-w', str(wav), text]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if res.returncode != 0 or not wav.is_file():
            log.warning('espeak-ng failed (%s): %s; no speech for this segment',
                        res.returncode, res.stderr.strip())
            return None
        return _read_audio(wav, rate)


def astronaut_face() -> np.ndarray:
    """The head of skimage's astronaut photo (a real face every machine with scikit-image has)."""
    from skimage import data  # noqa: PLC0415 - scikit-image on use only
    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    # The face is at about x=177, y=66, 95x95 px (OpenCV's frontal Haar cascade); keep hair/chin.
    return img[25:215, 140:310].copy()


def demo_source(seconds: float = 6.0, labels: Sequence[str] = ('happy', 'neutral', 'sad'),
                size: tuple[int, int] = DEFAULT_SIZE, fps: float = DEFAULT_FPS,
                rate: int = DEFAULT_RATE, motion: str = 'sweep', speech: bool = True,
                seed: int = 0, background: Optional[pathlib.Path] = None) -> Clip:
    """A short sample any machine can build: the astronaut's face moving + espeak-ng speech.

    The timeline is split into equal segments, one per label in turn; each segment carries one
    utterance spoken with that label's prosody.  The face is the same photo throughout, so the
    vision channel cannot tell the labels apart: the demo checks the plumbing, not the model.
    """
    if seconds <= 0:
        raise MediaError(f'--seconds must be > 0, got {seconds}')
    if not labels:
        raise MediaError('the demo needs at least one label')
    n_seg = max(1, len(labels))
    seg_len = seconds / n_seg
    segments = [Segment(i * seg_len, (i + 1) * seg_len, labels[i % len(labels)])
                for i in range(n_seg)]
    segments[-1].end = seconds
    n_samples = int(round(seconds * rate))
    rng = np.random.default_rng(seed)
    audio = (rng.normal(0, 1e-3, n_samples)).astype(np.float32)  # a quiet room, not digital zero
    if speech:
        for seg in segments:
            text, pitch, speed, amp = _ESPEAK_STYLE.get(seg.label, _ESPEAK_STYLE['neutral'])
            utt = espeak(text, rate, pitch, speed, amp)
            if utt is None:
                break
            start = int((seg.start + min(0.15, 0.1 * seg_len)) * rate)
            stop = min(int(seg.end * rate), start + utt.size)
            if stop > start:
                audio[start:stop] += utt[:stop - start]
    audio = np.clip(audio, -1, 1)
    face = astronaut_face()
    # 0.6 of the frame height: OpenCV's Haar cascade (the face node's detector) finds this crop
    # in every frame of the sweep at that size, but only in about half of them at 0.42.
    face_h = int(size[1] * 0.6)
    n_frames = int(math.floor(seconds * fps + 1e-9))
    bg = make_background(size, seed, background)
    frames = _synthetic_frames(segments, {i: face for i in range(len(segments))}, bg, size, fps,
                               n_frames, motion, face_h, seed)
    return Clip(seconds, fps, size, n_frames, frames, audio, rate, segments,
                f'demo: astronaut face ({motion}) + espeak-ng speech, labels {list(labels)}')


# --------------------------------------------------------------------------- faces + speech
def _load_speech(root: pathlib.Path, labels: Sequence[str]) -> list:
    """Utterances under `root`: EmoDB-named WAVs (e.g. 03a01Fa.wav), RAVDESS speech
    (`Actor_AA/03-01-EE-II-SS-RR-AA.flac`, or such files directly in `root`; calm left out) or
    `<class>/*.wav` folders."""
    if not root.is_dir():
        raise MediaError(f'--speech {root} is not a directory')
    wav_dir = root / 'wav' if (root / 'wav').is_dir() else root
    if any(parse_emodb_name(p.name) for p in wav_dir.glob('*.wav')):
        return load_emodb(root, labels)
    if any(parse_ravdess_name(p.name) for p in (*root.glob('Actor_*/*'), *root.glob('*'))):
        return load_ravdess(root, labels)
    return load_audio_folders(root, labels)


def faces_speech_source(faces_dir: pathlib.Path, speech_dir: Optional[pathlib.Path],
                        labels: Sequence[str], segments: int = 6, min_seconds: float = 2.0,
                        max_seconds: float = 5.0, size: tuple[int, int] = DEFAULT_SIZE,
                        fps: float = DEFAULT_FPS, rate: int = DEFAULT_RATE,
                        motion: str = 'none', seed: int = 0,
                        background: Optional[pathlib.Path] = None,
                        face_scale: float = 0.5) -> Clip:
    """Segments pairing a face image and an utterance of the same label, labels in turn.

    Why pairing by label: the true label of a segment must hold for both modalities, otherwise the
    fused score would be measured against a label one of the inputs does not show.  A segment lasts
    as long as its utterance plus a short pause, clamped to [min_seconds, max_seconds]; without
    --speech every segment lasts min_seconds and the audio is a quiet room.  `face_scale` is the
    face's height as a fraction of the frame's: at 0.5 OpenCV's Haar cascade (the face node's
    detector at its default parameters) finds an upscaled 48x48 FER-style crop in every frame,
    at 0.42 in about half of them, at 0.3 hardly ever.
    """
    faces_dir = pathlib.Path(faces_dir)
    if not faces_dir.is_dir():
        raise MediaError(f'--faces {faces_dir} is not a directory')
    face_items = load_image_folders(faces_dir, labels)
    if not face_items:
        raise MediaError(f'--faces {faces_dir}: no images in class folders named after any of '
                         f'{list(labels)} (expected {faces_dir}/<label>/*.png)')
    speech_items = _load_speech(pathlib.Path(speech_dir), labels) if speech_dir else []
    if speech_dir and not speech_items:
        raise MediaError(f'--speech {speech_dir}: no utterances for any of {list(labels)} '
                         '(expected EmoDB-named WAVs, RAVDESS Actor_AA/ folders or '
                         '<label>/*.wav folders)')
    by_label_face: dict[str, list] = {}
    for s in face_items:
        by_label_face.setdefault(s.label, []).append(s)
    by_label_speech: dict[str, list] = {}
    for s in speech_items:
        by_label_speech.setdefault(s.label, []).append(s)
    usable = [lab for lab in labels if lab in by_label_face and
              (not speech_dir or lab in by_label_speech)]
    if not usable:
        raise MediaError(f'no label has both a face (in {faces_dir}) and an utterance '
                         f'(in {speech_dir}); faces have {sorted(by_label_face)}, '
                         f'speech has {sorted(by_label_speech)}')
    rng = np.random.default_rng(seed)
    segs: list[Segment] = []
    faces: dict[int, np.ndarray] = {}
    chunks: list[np.ndarray] = []
    t = 0.0
    for k in range(int(segments)):
        lab = usable[k % len(usable)]
        fitem = by_label_face[lab][int(rng.integers(len(by_label_face[lab])))]
        try:
            faces[k] = read_face(fitem.path)
        except UnreadableImageError as exc:
            raise MediaError(str(exc)) from exc
        if speech_dir:
            sitem = by_label_speech[lab][int(rng.integers(len(by_label_speech[lab])))]
            utt = _read_audio(sitem.path, rate)
            dur = float(np.clip(utt.size / rate + 0.5, min_seconds, max_seconds))
        else:
            utt, dur = np.zeros(0, np.float32), float(min_seconds)
        n = int(round(dur * rate))
        buf = rng.normal(0, 1e-3, n).astype(np.float32)
        lead = int(0.2 * rate)
        m = max(0, min(utt.size, n - lead))
        buf[lead:lead + m] += utt[:m]
        chunks.append(buf)
        segs.append(Segment(t, t + n / rate, lab))
        t += n / rate
    audio = np.clip(np.concatenate(chunks), -1, 1).astype(np.float32)
    duration = t
    n_frames = int(math.floor(duration * fps + 1e-9))
    face_h = int(size[1] * face_scale)
    bg = make_background(size, seed, background)
    frames = _synthetic_frames(segs, faces, bg, size, fps, n_frames, motion, face_h, seed)
    return Clip(duration, fps, size, n_frames, frames, audio, rate, segs,
                f'faces {faces_dir} + speech {speech_dir}: {len(segs)} segments, motion {motion}')


# --------------------------------------------------------------------------- recorded clip
def read_segments(path: pathlib.Path, labels: Sequence[str]) -> list[Segment]:
    """A CSV of `start,end,label` rows (seconds; a header row is allowed; aliases are mapped)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise MediaError(f'--segments {path} does not exist')
    out = []
    with open(path, newline='') as f:
        for i, row in enumerate(csv.reader(f), 1):
            if not row or row[0].strip().startswith('#'):
                continue
            try:
                start, end = float(row[0]), float(row[1])
            except (ValueError, IndexError):
                if i == 1:
                    continue  # header
                raise MediaError(f'{path}:{i}: expected start,end,label, got {row}') from None
            lab = canonical(row[2] if len(row) > 2 else '', labels)
            if lab is None:
                raise MediaError(f'{path}:{i}: label {row[2:3]} is not one of {list(labels)}')
            if end <= start:
                raise MediaError(f'{path}:{i}: end {end} <= start {start}')
            out.append(Segment(start, end, lab))
    if not out:
        raise MediaError(f'{path}: no segments')
    return sorted(out, key=lambda s: s.start)


def _extract_audio_ffmpeg(video: pathlib.Path, rate: int) -> Optional[np.ndarray]:
    exe = shutil.which('ffmpeg')
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wav = pathlib.Path(tmp) / 'a.wav'
        res = subprocess.run([exe, '-nostdin', '-loglevel', 'error', '-i', str(video), '-vn',
                              '-ac', '1', '-ar', str(rate), str(wav)], capture_output=True,
                             text=True, timeout=600)
        if res.returncode != 0 or not wav.is_file():
            log.warning('ffmpeg could not extract audio from %s: %s', video, res.stderr.strip())
            return None
        return _read_audio(wav, rate)


def video_source(video: pathlib.Path, audio: Optional[pathlib.Path], labels: Sequence[str],
                 label: Optional[str] = None, segments_csv: Optional[pathlib.Path] = None,
                 size: Optional[tuple[int, int]] = None, fps: Optional[float] = None,
                 rate: int = DEFAULT_RATE, max_seconds: Optional[float] = None) -> Clip:
    """A recorded clip: a video file (read with OpenCV) plus a WAV, or the video's own sound track
    through ffmpeg when that is installed.  The ground truth is one `--label` for the whole clip or
    a `--segments` CSV.  Frames keep the clip's timeline (frame i at i / fps)."""
    video = pathlib.Path(video)
    if not video.is_file():
        raise MediaError(f'--video {video} does not exist')
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise MediaError(f'--video {video}: OpenCV cannot open it')
    vfps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    w0, h0 = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    fps = float(fps or vfps or DEFAULT_FPS)
    if n <= 0:
        raise MediaError(f'--video {video}: no frames')
    if max_seconds:
        n = min(n, int(max_seconds * fps))
    duration = n / fps
    out_size = tuple(size) if size else (w0, h0)
    if audio is not None:
        samples = _read_audio(pathlib.Path(audio), rate)
    else:
        samples = _extract_audio_ffmpeg(video, rate)
        if samples is None:
            log.warning('no --audio given and ffmpeg is not installed (or failed): the bag gets '
                        'no audio; pass --audio FILE.wav')
    if samples is not None:
        want = int(round(duration * rate))
        samples = (samples[:want] if samples.size >= want
                   else np.pad(samples, (0, want - samples.size)))
    if segments_csv is not None:
        segs = read_segments(segments_csv, labels)
    else:
        lab = canonical(label or '', labels)
        if lab is None:
            raise MediaError(f'a --video needs --label (one of {list(labels)}) or --segments CSV; '
                             f'got label {label!r}')
        segs = [Segment(0.0, duration, lab)]

    def gen() -> Iterator[tuple[float, np.ndarray]]:
        c = cv2.VideoCapture(str(video))
        try:
            for i in range(n):
                ok, frame = c.read()
                if not ok:
                    log.warning('%s: video ended after %d of %d frames', video, i, n)
                    return
                if (frame.shape[1], frame.shape[0]) != out_size:
                    frame = cv2.resize(frame, out_size, interpolation=cv2.INTER_AREA)
                yield i / fps, frame
        finally:
            c.release()

    return Clip(duration, fps, out_size, n, gen, samples, rate, segs,
                f'video {video} + audio {audio or "(from video)"}')
