"""Write a `Clip` into a ROS 2 bag (mcap or sqlite3) with the `rosbags` package.

Why rosbags: rosbag2 cannot be installed in this environment, but `rosbags` writes bags that
`ros2 bag play` reads.  Messages are serialised with the type store of `bag_types`, which is built
from emotion_msgs' own .msg files, so the bags match what the nodes publish.

Timeline: every message's bag (log) time equals its header stamp = start_time + clip time.
Images are stamped at their frame time, an AudioChunk at its FIRST sample (as the microphone node
does), and the ground truth is sampled at `truth_rate` Hz with the label of the current segment.
"""
from __future__ import annotations

import dataclasses
import pathlib
import time
from typing import Optional, Sequence

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from tqdm import tqdm

from emotion_perception.audio_format import S16LE, encode_pcm
from emotion_perception.compressed_image import bgr8_to_jpeg

from .bag_types import add_connection, typestore
from .labels import VALENCE_AROUSAL
from .media import Clip

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
AUDIO_TYPE = 'emotion_msgs/msg/AudioChunk'
EMOTION_TYPE = 'emotion_msgs/msg/Emotion'
MODALITY_VISION, MODALITY_VOICE = 1, 2


class BagWriteError(RuntimeError):
    """The output bag cannot be written (exists already, bad storage name, ...)."""


@dataclasses.dataclass
class BagTopics:
    """Topic names and frame ids of an evaluation bag (the defaults of DESIGN.md)."""

    image: str = '/image_raw'
    audio: str = '/audio'
    truth: str = '/emotion/ground_truth'
    camera_frame: str = 'camera_optical_frame'
    microphone_frame: str = 'microphone_link'


def storage_plugin(name: str):
    """'mcap' or 'sqlite3' -> rosbags StoragePlugin (clear error for anything else)."""
    try:
        return {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}[name]
    except KeyError:
        raise BagWriteError(f'--storage {name!r}: use mcap or sqlite3') from None


def stamp(ns: int):
    """builtin_interfaces/Time of rosbags' type store from integer nanoseconds."""
    Time = typestore().types['builtin_interfaces/msg/Time']
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def header(ns: int, frame_id: str):
    Header = typestore().types['std_msgs/msg/Header']
    return Header(stamp=stamp(ns), frame_id=frame_id)


def emotion_message(ns: int, label: str, labels: Sequence[str], face_id: str = '',
                    frame_id: str = '', modalities: int = MODALITY_VISION | MODALITY_VOICE):
    """A ground-truth Emotion: `expression` = the label, probabilities one-hot over `labels`."""
    Emotion = typestore().types[EMOTION_TYPE]
    probs = np.array([1.0 if lab == label else 0.0 for lab in labels], np.float32)
    va = VALENCE_AROUSAL.get(label, (0.0, 0.0))
    return Emotion(header=header(ns, frame_id), face_id=face_id, expression=label,
                   confidence=1.0, labels=list(labels), probabilities=probs,
                   valence=float(va[0]), arousal=float(va[1]), modalities=modalities)


def write_clip(clip: Clip, out: pathlib.Path, labels: Sequence[str], storage: str = 'mcap',
               chunk_ms: float = 20.0, truth_rate: float = 5.0,
               start_ns: Optional[int] = None, topics: Optional[BagTopics] = None,
               progress: bool = True, raw_images: bool = False,
               jpeg_quality: int = 90) -> dict:
    """Write images, audio chunks and ground truth of `clip` into a new bag directory `out`.

    Images go to ``<topics.image>/compressed`` as sensor_msgs/CompressedImage (JPEG, format
    "jpeg"; about 1/40 of raw bgr8), or with ``raw_images`` to ``topics.image`` as raw bgr8
    sensor_msgs/Image.

    Returns a summary {path, storage, duration, counts per topic, start_ns}.  Messages are written
    in stamp order (a merge of the three streams) so readers that do not sort still see time
    advance monotonically.
    """
    ts = typestore()
    topics = topics or BagTopics()
    out = pathlib.Path(out)
    if out.exists():
        raise BagWriteError(f'output bag {out} exists already; remove it or choose another path')
    if not 20.0 <= chunk_ms <= 50.0:
        raise BagWriteError(f'--chunk-ms {chunk_ms}: use 20..50 ms (what microphones deliver)')
    if truth_rate < 2.0:
        raise BagWriteError(f'--truth-rate {truth_rate}: the ground truth needs >= 2 Hz')
    if start_ns is None:
        start_ns = time.time_ns()
    plugin = storage_plugin(storage)
    Image = ts.types[IMAGE_TYPE]
    Compressed = ts.types[COMPRESSED_TYPE]
    image_type = IMAGE_TYPE if raw_images else COMPRESSED_TYPE
    image_topic = topics.image if raw_images else topics.image.rstrip('/') + '/compressed'
    Chunk = ts.types[AUDIO_TYPE]
    w, h = clip.size

    # Audio chunk and ground-truth schedules (clip seconds), merged with frames by time.
    audio_events: list[tuple[float, int, int]] = []
    if clip.audio is not None and clip.audio.size:
        n = max(1, int(round(clip.sample_rate * chunk_ms / 1000.0)))
        for a in range(0, clip.audio.size, n):
            audio_events.append((a / clip.sample_rate, a, min(a + n, clip.audio.size)))
    truth_times = list(np.arange(0.0, clip.duration, 1.0 / truth_rate))
    # The microphone node's own encoder (full scale 32768), so a bag sounds like the robot's mic.
    pcm = None if clip.audio is None else np.clip(clip.audio, -1.0, 1.0).astype(np.float32)

    counts = {image_topic: 0, topics.audio: 0, topics.truth: 0}
    last_ns = -1
    writer = Writer(out, version=9, storage_plugin=plugin)
    with writer:
        c_img = add_connection(writer, image_topic, image_type)
        c_aud = add_connection(writer, topics.audio, AUDIO_TYPE) if audio_events \
            else None
        c_gt = add_connection(writer, topics.truth, EMOTION_TYPE)

        def put(conn, ns: int, msg, msgtype: str) -> None:
            nonlocal last_ns
            writer.write(conn, ns, ts.serialize_cdr(msg, msgtype))
            counts[conn.topic] += 1
            last_ns = max(last_ns, ns)

        ai = ti = 0

        def flush_until(t: float) -> None:
            """Write every audio chunk and truth sample stamped at or before clip time t."""
            nonlocal ai, ti
            while True:
                ta = audio_events[ai][0] if ai < len(audio_events) else float('inf')
                tt = truth_times[ti] if ti < len(truth_times) else float('inf')
                if min(ta, tt) > t or (ai >= len(audio_events) and ti >= len(truth_times)):
                    return
                if ta <= tt:
                    _, a, b = audio_events[ai]
                    ns = start_ns + int(round(ta * 1e9))
                    msg = Chunk(header=header(ns, topics.microphone_frame),
                                sample_rate=clip.sample_rate, channels=1, encoding=S16LE,
                                data=np.frombuffer(encode_pcm(pcm[a:b], S16LE), np.uint8))
                    put(c_aud, ns, msg, AUDIO_TYPE)
                    ai += 1
                else:
                    ns = start_ns + int(round(tt * 1e9))
                    lab = clip.label_at(tt)
                    if lab is not None:
                        put(c_gt, ns, emotion_message(ns, lab, labels,
                                                      frame_id=topics.camera_frame), EMOTION_TYPE)
                    ti += 1

        bar = tqdm(total=clip.n_frames, desc=f'writing {out.name}', unit='frame',
                   disable=None if progress else True, leave=False)  # None: off without a tty
        for t, frame in clip.frames():
            flush_until(t)
            if frame.shape[:2] != (h, w) or frame.dtype != np.uint8 or frame.ndim != 3:
                raise BagWriteError(f'frame at {t:.3f} s has shape {frame.shape} {frame.dtype}, '
                                    f'expected ({h}, {w}, 3) uint8')
            ns = start_ns + int(round(t * 1e9))
            if raw_images:
                msg = Image(header=header(ns, topics.camera_frame), height=h, width=w,
                            encoding='bgr8', is_bigendian=0, step=w * 3,
                            data=np.ascontiguousarray(frame).reshape(-1))
            else:
                msg = Compressed(header=header(ns, topics.camera_frame), format='jpeg',
                                 data=np.frombuffer(bgr8_to_jpeg(frame, jpeg_quality), np.uint8))
            put(c_img, ns, msg, image_type)
            bar.update(1)
        bar.close()
        flush_until(float('inf'))
    return {'path': str(out), 'storage': storage, 'duration_s': round(clip.duration, 3),
            'start_ns': int(start_ns), 'counts': counts,
            'segments': [dataclasses.asdict(s) for s in clip.segments],
            'description': clip.description}
