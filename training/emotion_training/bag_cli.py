"""`emotion-bag`: make, inspect, replay and record evaluation bags without rosbag2.

  emotion-bag make --demo OUT                      astronaut face + espeak-ng speech, ~6 s
  emotion-bag make --demo OUT --write-video clip.mp4 --write-wav speech.wav
                                                   ... and the same clip as a video and a WAV
  emotion-bag make --faces DIR --speech DIR OUT    labelled faces paired with utterances
  emotion-bag make --video clip.mp4 --audio clip.wav --label happy OUT
  emotion-bag info BAG                             topics, counts, duration (JSON)
  emotion-bag replay BAG [--rate 2] [--loop] [--remap image_raw:=camera/image_raw] [--restamp]
  emotion-bag record OUT --topics /emotion /emotion/ground_truth [--duration 30]

Every command prints one JSON line with its result on stdout; progress and warnings go to stderr.
Exit codes: 0 ok, 2 bad input (missing file, bad bag, bad option), 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import logging
import pathlib
import signal
import sys
import threading
from typing import Optional, Sequence

import numpy as np

from .labels import DEFAULT_LABELS, canonical, parse_labels

log = logging.getLogger('emotion_bag')


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split('x'))
        if w <= 0 or h <= 0:
            raise ValueError
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f'size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480') \
            from None


def _add_make(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser('make', help='build an evaluation bag (image_raw, audio, ground truth)',
                       description='Build an evaluation bag: sensor_msgs/Image bgr8 frames, '
                       'emotion_msgs/AudioChunk S16LE mono and emotion_msgs/Emotion ground truth '
                       '(the true label of the current segment) on one timeline.')
    p.add_argument('out', type=pathlib.Path, help='output bag directory (must not exist)')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--demo', action='store_true',
                     help="skimage's astronaut face moving across the frame + espeak-ng speech")
    src.add_argument('--faces', type=pathlib.Path,
                     help='face images in <label>/ subfolders (pair with --speech)')
    src.add_argument('--video', type=pathlib.Path, help='a video file (read with OpenCV)')
    p.add_argument('--speech', type=pathlib.Path,
                   help='with --faces: utterances, EmoDB-named WAVs, RAVDESS Actor_AA/ folders '
                        'or <label>/*.wav')
    p.add_argument('--audio', type=pathlib.Path,
                   help='with --video: its sound track as WAV/FLAC (else ffmpeg, if installed)')
    p.add_argument('--label', help='with --video: the true label of the whole clip')
    p.add_argument('--segments', type=pathlib.Path,
                   help='with --video: CSV of start,end,label rows (seconds)')
    p.add_argument('--labels', default=None,
                   help='label set of the ground truth (comma separated; default: the project\'s '
                        'seven labels)')
    p.add_argument('--demo-labels', default='happy,neutral,sad',
                   help='with --demo: the label of each segment in turn (default %(default)s)')
    p.add_argument('--seconds', type=float, default=6.0, help='with --demo: length (default 6)')
    p.add_argument('--no-speech', action='store_true', help='with --demo: no espeak-ng speech')
    p.add_argument('--num-segments', type=int, default=6,
                   help='with --faces: number of face/utterance segments (default 6)')
    p.add_argument('--min-seconds', type=float, default=2.0, help='with --faces: shortest segment')
    p.add_argument('--max-seconds', type=float, default=5.0, help='with --faces: longest segment')
    p.add_argument('--motion', choices=('none', 'sweep', 'wander'), default=None,
                   help='face motion for --demo/--faces (default: sweep for --demo, none else)')
    p.add_argument('--background', type=pathlib.Path, help='background image for --demo/--faces')
    p.add_argument('--face-scale', type=float, default=0.5,
                   help='with --faces: face height / frame height (default 0.5; the Haar detector '
                        'misses many upscaled 48x48 faces below about 0.45)')
    p.add_argument('--size', type=_size, default=None,
                   help='frame size WxH (default 640x480; a --video keeps its own size)')
    p.add_argument('--fps', type=float, default=None,
                   help='frame rate (default 30; a --video keeps its own)')
    p.add_argument('--sample-rate', type=int, default=16000, help='audio rate (default 16000)')
    p.add_argument('--chunk-ms', type=float, default=50.0,
                   help='audio chunk length, 20..50 ms (default 50: the vocal node\'s 10-deep '
                        'best-effort queue then holds 0.5 s of audio during a replay)')
    p.add_argument('--truth-rate', type=float, default=5.0, help='ground truth rate, >= 2 Hz')
    p.add_argument('--max-seconds-video', type=float, default=None,
                   help='with --video: use only the first N seconds')
    p.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    p.add_argument('--raw-images', action='store_true',
                   help='write raw bgr8 sensor_msgs/Image on image_raw (default: JPEG '
                        'sensor_msgs/CompressedImage on image_raw/compressed, ~1/40 the size)')
    p.add_argument('--start-time', type=float, default=None,
                   help='stamp of the first frame, seconds since the epoch (default: now)')
    p.add_argument('--seed', type=int, default=0, help='random seed (face/utterance choice)')
    p.add_argument('--write-video', type=pathlib.Path, metavar='FILE', default=None,
                   help='also write the clip\'s frames as a video file (mp4v; where this OpenCV '
                        'cannot encode mp4v, FILE with the suffix .avi, MJPG); the result names '
                        'the file written ("video")')
    p.add_argument('--write-wav', type=pathlib.Path, metavar='FILE', default=None,
                   help='also write the clip\'s sound as a 16-bit PCM WAV file (result: "wav")')


def write_video(clip, path: pathlib.Path) -> pathlib.Path:
    """The clip's frames as `path` (mp4v), or as `path` with .avi (MJPG) where OpenCV has no mp4v
    encoder; returns the file written."""
    import cv2  # noqa: PLC0415 - only `make --write-video` needs OpenCV's writer

    from .media import MediaError  # noqa: PLC0415 - cv2: per command
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), clip.fps, clip.size)
    if not writer.isOpened():
        path = path.with_suffix('.avi')
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), clip.fps, clip.size)
        if not writer.isOpened():
            raise MediaError(f'--write-video: OpenCV cannot write {path}')
    for _t, frame in clip.frames():
        writer.write(frame)
    writer.release()
    return path


def write_wav(clip, path: pathlib.Path) -> pathlib.Path:
    """The clip's sound as a 16-bit PCM WAV `path` (silence for a clip without sound)."""
    import soundfile as sf  # noqa: PLC0415 - only `make --write-wav` needs libsndfile
    audio = clip.audio if clip.audio is not None else \
        np.zeros(int(round(clip.duration * clip.sample_rate)), np.float32)
    sf.write(str(path), audio, clip.sample_rate, subtype='PCM_16')
    return path


def cmd_make(a: argparse.Namespace) -> dict:
    from . import media  # noqa: PLC0415 - cv2: per command
    from .bag_make import write_clip  # noqa: PLC0415 - cv2, rosbags: per command
    labels = parse_labels(a.labels) if a.labels else list(DEFAULT_LABELS)
    size = a.size or media.DEFAULT_SIZE
    fps = a.fps or media.DEFAULT_FPS
    if a.demo:
        demo_labels = [canonical(x) or x for x in a.demo_labels.split(',') if x.strip()]
        extra = [lab for lab in demo_labels if lab not in labels]
        if extra:
            raise media.MediaError(f'--demo-labels {extra} are not in --labels {labels}')
        clip = media.demo_source(a.seconds, demo_labels, size, fps, a.sample_rate,
                                 a.motion or 'sweep', not a.no_speech, a.seed, a.background)
    elif a.faces:
        clip = media.faces_speech_source(a.faces, a.speech, labels, a.num_segments,
                                         a.min_seconds, a.max_seconds, size, fps, a.sample_rate,
                                         a.motion or 'none', a.seed, a.background,
                                         a.face_scale)
    else:
        clip = media.video_source(a.video, a.audio, labels, a.label, a.segments, a.size, a.fps,
                                  a.sample_rate, a.max_seconds_video)
    start_ns = None if a.start_time is None else int(a.start_time * 1e9)
    result = write_clip(clip, a.out, labels, a.storage, a.chunk_ms, a.truth_rate, start_ns,
                        raw_images=a.raw_images)
    if a.write_video is not None:
        result['video'] = str(write_video(clip, a.write_video))
    if a.write_wav is not None:
        result['wav'] = str(write_wav(clip, a.write_wav))
    return result


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser('info', help='topics, types, counts and duration of a bag (JSON)')
    p.add_argument('bag', type=pathlib.Path)


def _storage_of(bag: pathlib.Path) -> str:
    from .bag_io import bag_dir  # noqa: PLC0415 - rosbags: per command
    d = bag_dir(bag)
    return 'mcap' if any(d.glob('*.mcap')) else 'sqlite3' if any(d.glob('*.db3')) else 'unknown'


def cmd_info(a: argparse.Namespace) -> dict:
    from .bag_io import open_bag  # noqa: PLC0415 - rosbags: per command
    reader = open_bag(a.bag)
    try:
        return {'bag': str(a.bag), 'storage': _storage_of(a.bag),
                'duration_s': round(reader.duration / 1e9, 3), 'start_ns': reader.start_time,
                'messages': reader.message_count,
                'topics': {c.topic: {'type': c.msgtype, 'count': c.msgcount}
                           for c in reader.connections}}
    finally:
        reader.close()


def _add_replay(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser('replay', help='publish a bag into the live graph (rclpy)',
                       description='Publish a bag\'s messages at their recorded times (scaled by '
                       '--rate). Image/audio topics use sensor-data QoS (best effort), the rest '
                       'reliable. Honours ROS_DOMAIN_ID and the other ROS environment variables.')
    p.add_argument('bag', type=pathlib.Path)
    p.add_argument('--rate', type=float, default=1.0, help='speed factor (2 = twice as fast)')
    p.add_argument('--loop', action='store_true', help='start again at the end, until Ctrl-C')
    p.add_argument('--loops', type=int, default=None, help='with --loop: stop after N passes')
    p.add_argument('--remap', action='append', default=[], metavar='OLD:=NEW',
                   help='publish topic OLD on NEW (repeatable)')
    p.add_argument('--topics', nargs='+', default=None, help='replay only these bag topics')
    p.add_argument('--restamp', action='store_true',
                   help='map every header stamp onto the replay\'s wall clock (pass start + '
                        '(stamp - bag start) / rate), for latency and freshness in the live '
                        'graph; use --rate 1 for a live evaluation')
    p.add_argument('--delay', type=float, default=0.5,
                   help='seconds to wait after creating publishers, for discovery (default 0.5)')
    p.add_argument('--wait-subscribers', type=float, default=0.0, metavar='SEC',
                   help='wait up to SEC for a subscriber on every topic before starting')
    p.add_argument('--decompress', action='store_true',
                   help='publish CompressedImage topics (NAME/compressed, what make writes by '
                        'default) decoded as raw bgr8 Image on NAME (for face_node\'s default '
                        'image_input raw); without it they replay as they are')


def cmd_replay(a: argparse.Namespace, stop: threading.Event) -> dict:
    from .bag_replay import ReplayOptions, parse_remaps, replay  # noqa: PLC0415 - rclpy: replay only
    opts = ReplayOptions(rate=a.rate, loop=a.loop, loops=a.loops, remaps=parse_remaps(a.remap),
                         topics=a.topics, restamp=a.restamp, delay=a.delay,
                         wait_subscribers=a.wait_subscribers, progress=sys.stderr.isatty(),
                         decompress=a.decompress)
    return replay(a.bag, opts, stop=stop)


def _add_record(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser('record', help='record live topics into a bag (rclpy + rosbags)',
                       description='Subscribe to topics and write their raw CDR to a bag; the log '
                       'time of each message is its receive time (for latency). Stops on Ctrl-C, '
                       'SIGTERM, --duration or --max-messages.')
    p.add_argument('out', type=pathlib.Path, help='output bag directory (must not exist)')
    p.add_argument('--topics', nargs='+', default=[], help='topics to record')
    p.add_argument('--prefix', action='append', default=[], metavar='PREFIX',
                   help='also record every topic under PREFIX as its publisher appears, e.g. '
                        '/humans for the per-id REP-155 topics (repeatable)')
    p.add_argument('--type', action='append', default=[], metavar='TOPIC:=pkg/msg/Type',
                   help='type of a topic that has no publisher yet (repeatable)')
    p.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    p.add_argument('--duration', type=float, default=None, help='stop after SEC seconds')
    p.add_argument('--max-messages', type=int, default=None, help='stop after N messages')
    p.add_argument('--discovery-timeout', type=float, default=10.0,
                   help='seconds to wait for a topic\'s publisher to learn its type')


def cmd_record(a: argparse.Namespace, stop: threading.Event) -> dict:
    from .bag_io import BagError  # noqa: PLC0415 - rosbags: per command
    from .bag_record import RecordOptions, record  # noqa: PLC0415 - rclpy: record only
    types = {}
    for item in a.type:
        if ':=' not in item:
            raise BagError(f'--type {item!r}: expected TOPIC:=pkg/msg/Type')
        k, v = item.split(':=', 1)
        types[k] = v
    opts = RecordOptions(topics=a.topics, types=types, storage=a.storage, duration=a.duration,
                         max_messages=a.max_messages, discovery_timeout=a.discovery_timeout,
                         prefixes=a.prefix)
    ready = threading.Event()
    result = record(a.out, opts, stop=stop, ready=ready)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='emotion-bag', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    sub = parser.add_subparsers(dest='command', required=True)
    _add_make(sub)
    _add_info(sub)
    _add_replay(sub)
    _add_record(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format='[emotion-bag] %(levelname)s: %(message)s', stream=sys.stderr)
    from .bag_io import BagError  # noqa: PLC0415 - rosbags: per command
    from .bag_make import BagWriteError  # noqa: PLC0415 - cv2, rosbags: per command
    from .media import MediaError  # noqa: PLC0415 - cv2: per command
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    interrupted = False
    if a.command in ('replay', 'record'):
        # Replay and record end cleanly (the bag is closed, counts are printed) on Ctrl-C/TERM.
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
    try:
        if a.command == 'make':
            result = cmd_make(a)
        elif a.command == 'info':
            result = cmd_info(a)
        elif a.command == 'replay':
            result = cmd_replay(a, stop)
        else:
            result = cmd_record(a, stop)
        interrupted = stop.is_set() and a.command == 'replay'
    except (BagError, BagWriteError, MediaError, FileNotFoundError, ValueError) as exc:
        print(f'emotion-bag {a.command}: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'emotion-bag {a.command}: interrupted', file=sys.stderr)
        return 130
    result = {'command': a.command, **result}
    if interrupted:
        result['interrupted'] = True
    print(json.dumps(result), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
