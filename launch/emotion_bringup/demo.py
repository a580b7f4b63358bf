"""The one-command demo: the whole robot on a generated clip, with a simulated Arduino.

    make demo                      (set up, then this, in a loopback-only network namespace)
    make demo PARAMS=my.yaml       (the nodes' parameters from a ROS parameter file as well)
    python -m emotion_bringup.demo --help

What it does, in order:
  1. builds a short sample from what any machine has: the astronaut photo of scikit-image moved
     across the frame and espeak-ng speech, one label per segment; writes it as a video file, a
     WAV file and a ROS 2 bag (images, audio, ground truth) with `emotion-bag make --demo`
     (with --faces DIR [--speech DIR]: face images of each label paired with utterances of the
     same label, `emotion-bag make --faces DIR --speech DIR`, e.g. FER2013 faces and RAVDESS or
     EmoDB speech);
  2. builds the Uno firmware and starts it in simavr behind a pty (firmware/build/simharness);
  3. starts the graph of robot.launch.py (robot_graph) as separate processes: camera_node on the
     video, microphone_node on the WAV, face, vocal, fusion and tracker (serial to the simulator);
     the video and the WAV get one `file_start_time` a few seconds ahead (--start-delay), so that
     both play on one clock, stamped from it, once every process is up;
  4. publishes the true label of the clip on emotion/ground_truth, stamped on that same clock,
     records /emotion and the truth, and prints one line per second: the emotion, the servo
     angles and pulse widths;
  5. evaluates the recording (`emotion-eval bag --mode live`): metrics, plots, annotated video,
     and adds the latency breakdown (camera, detection, DDS hops, voice windows, fusion, recorder)
     measured from the stamps, the receive times and the nodes' /diagnostics in the recording.

The training package's tools (emotion-bag, emotion-eval) run as subprocesses: the demo imports no
training module (nor torch), like the nodes.
"""
from __future__ import annotations

import argparse
import dataclasses
import html
import json
import math
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np

from .graph import GraphArgs, repo_root, robot_graph
from .graph_runner import GraphRunner, wait_until
from .sim_board import SIM_PORT, ensure_built, sim_board_command

LABELS = 'happy,neutral,sad,angry'
TRUTH_TOPIC = '/emotion/ground_truth'


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog='emotion-demo', description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', type=Path, default=None,
                   help='output directory (default runs/demo-YYYYmmdd-HHMMSS in the checkout)')
    p.add_argument('--seconds', type=float, default=None,
                   help='how long the graph runs after the first frame (default 20 s; with '
                        '--faces one pass of the clip)')
    p.add_argument('--clip-seconds', type=float, default=12.0,
                   help='length of the generated sample clip (not with --faces)')
    p.add_argument('--labels', default=None,
                   help=f'segment labels of the clip (default {LABELS}; with --faces the label '
                        'set, default the labels of the shipped bundle)')
    p.add_argument('--faces', type=Path, default=None,
                   help='build the clip from face images in <label>/ folders (e.g. FER2013 '
                        'validation) instead of the astronaut photo')
    p.add_argument('--speech', type=Path, default=None,
                   help='with --faces: utterances of the same labels (EmoDB wav/, RAVDESS '
                        'Actor_AA/ folders or <label>/*.wav); without it the clip is silent')
    p.add_argument('--segments', type=int, default=8,
                   help='with --faces: number of face/utterance segments (default 8; each lasts '
                        'its utterance + 0.5 s, 2-5 s)')
    p.add_argument('--seed', type=int, default=0, help='with --faces: which faces/utterances')
    p.add_argument('--board', choices=('sim', 'none'), default='sim',
                   help='sim: the firmware in simavr over a pty; none: no actuator')
    p.add_argument('--model-bundle', default='', help="model bundle ('' = the shipped one)")
    p.add_argument('--params', type=Path, nargs='+', default=[], metavar='YAML',
                   help='ROS parameter files given to every node after its package\'s defaults '
                        'and robot.yaml, later files winning; a section applies to the node it '
                        'names (e.g. "face_node: ros__parameters: face_detector: mtcnn_yunet"), '
                        'as with emotion-eval bag --params')
    p.add_argument('--no-eval', action='store_true', help='skip the evaluation report')
    p.add_argument('--start-delay', type=float, default=8.0,
                   help='seconds from starting the graph to the clip\'s first frame and sample '
                        '(file_start_time of camera_node and microphone_node; default 8): time '
                        'for every node and the recorder to come up. A node that is later '
                        'skips what it missed and stays on the clip\'s clock')
    a = p.parse_args(argv)
    if a.speech is not None and a.faces is None:
        p.error('--speech needs --faces')
    for path in a.params:
        problem = param_file_problem(path)
        if problem:
            p.error(f'--params {path}: {problem}')
    return a


def param_file_problem(path: Path) -> str:
    """Why ``path`` is no ROS parameter file ('' when it is one): missing, not YAML, or no
    ``<node>: ros__parameters:`` section."""
    import yaml  # noqa: PLC0415 - only for --params
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        return f'cannot read it ({exc.strerror or exc})'
    except yaml.YAMLError as exc:
        return f'not YAML ({exc})'
    if not isinstance(data, dict) or not any(
            isinstance(v, dict) and 'ros__parameters' in v for v in data.values()):
        return 'no "<node>: ros__parameters:" section'
    return ''


def with_param_files(specs: list, paths: list) -> list:
    """The graph's NodeSpecs with ``paths`` after each node's own parameter files (a node's
    launch-argument values, given with -p, still come last)."""
    for spec in specs:
        spec.param_files = list(spec.param_files) + [Path(p).resolve() for p in paths]
    return specs


@dataclasses.dataclass
class SampleClip:
    """The timeline of the sample clip: its length and its labelled segments."""

    duration: float
    segments: list  # [{'start': s, 'end': s, 'label': name}, ...] as emotion-bag make reports

    def label_at(self, t: float) -> Optional[str]:
        """The true label at clip time t (None outside every segment)."""
        for seg in self.segments:
            if seg['start'] <= t < seg['end']:
                return seg['label']
        return None


def make_sample(out: Path, seconds: float, labels: Optional[list], faces: Optional[Path] = None,
                speech: Optional[Path] = None, segments: int = 8, seed: int = 0) -> tuple:
    """Write clip.mp4 (or .avi), speech.wav and the bag with `emotion-bag make --demo`, or with
    `emotion-bag make --faces DIR [--speech DIR]` when `faces` is given (then `labels` is the
    label set, None = emotion-bag's default, and `seconds` is unused: the clip lasts as long as
    its `segments`); returns (video, wav, bag, clip, bag start [ns])."""
    bag = out / 'sample_bag'
    if faces is None:
        cmd = ['emotion-bag', 'make', str(bag), '--demo', '--seconds', repr(float(seconds)),
               '--demo-labels', ','.join(labels or LABELS.split(',')), '--motion', 'sweep']
    else:
        cmd = ['emotion-bag', 'make', str(bag), '--faces', str(faces),
               '--num-segments', str(int(segments)), '--seed', str(int(seed))]
        cmd += ['--speech', str(speech)] if speech is not None else []
        cmd += ['--labels', ','.join(labels)] if labels else []
    cmd += ['--chunk-ms', '50', '--write-video', str(out / 'clip.mp4'),
            '--write-wav', str(out / 'speech.wav')]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed ({result.returncode}):\n'
                           f'{result.stderr[-3000:]}')
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    clip = SampleClip(float(summary.get('duration_s', seconds)), list(summary['segments']))
    return Path(summary['video']), Path(summary['wav']), bag, clip, int(summary['start_ns'])


def truth_schedule(bag: Path, start_ns: int) -> list:
    """(clip time [ns], Emotion) of every ground-truth sample in the sample bag, in time order.

    The demo republishes exactly these messages (as emotion-bag wrote them: the label, one-hot
    probabilities, its valence/arousal), restamped to the clip's `file_start_time`, the start
    the camera and microphone files play from, so that truth, video and audio share one clock.
    """
    from rclpy.serialization import deserialize_message  # noqa: PLC0415 - ROS on use only
    from rosbags.rosbag2 import Reader  # noqa: PLC0415 - the bag library on use only

    from emotion_msgs.msg import Emotion  # noqa: PLC0415 - ROS on use only
    samples = []
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic == TRUTH_TOPIC]
        if not conns:
            raise RuntimeError(f'{bag} has no {TRUTH_TOPIC} messages')
        for _conn, _t, raw in reader.messages(connections=conns):
            msg = deserialize_message(bytes(raw), Emotion)
            samples.append((msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec - start_ns,
                            msg))
    return sorted(samples, key=lambda s: s[0])


class SimBoard:
    """The simulated Uno process; keeps the latest pulse width per servo from its output."""

    def __init__(self, log_path: Path) -> None:
        self.pulses = {0: None, 1: None}
        self.log = open(log_path, 'w')
        self.proc = subprocess.Popen(sim_board_command(SIM_PORT), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.log.write(line)
            parts = line.split()
            if len(parts) >= 3 and parts[0] == 'PULSE':
                self.pulses[int(parts[1])] = int(float(parts[2]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def _fmt_emotion(msg) -> str:
    mods = '+'.join(n for bit, n in ((1, 'vision'), (2, 'voice')) if msg.modalities & bit) or '-'
    return (f'{msg.face_id or "?":>5} {msg.expression or "?":>8} {msg.confidence:4.2f} '
            f'V{msg.valence:+.2f} A{msg.arousal:+.2f} [{mods}]')


def run_demo(a: argparse.Namespace) -> int:
    from rclpy.qos import qos_profile_sensor_data  # noqa: PLC0415 - ROS on use only (--help)
    from sensor_msgs.msg import Image  # noqa: PLC0415 - ROS on use only

    from emotion_msgs.msg import Emotion, EmotionFeature, TrackerState  # noqa: PLC0415 - ROS on use only
    from emotion_test_tools.dds import RosHarness  # noqa: PLC0415 - ROS on use only

    root = repo_root()
    modes = _constant_names(TrackerState, 'MODE_')
    links = _constant_names(TrackerState, 'LINK_')
    out = a.out or root / 'runs' / time.strftime('demo-%Y%m%d-%H%M%S')
    out.mkdir(parents=True, exist_ok=True)
    labels = [s.strip() for s in (a.labels or '').split(',') if s.strip()] or None
    print(f'[demo] output in {out}')
    if a.faces is None:
        labels = labels or LABELS.split(',')
        print(f'[demo] 1/5 building the sample clip ({a.clip_seconds:.0f} s, labels {labels})')
    else:
        print(f'[demo] 1/5 building the sample clip ({a.segments} segments: faces from '
              f'{a.faces}, speech from {a.speech or "none (silent)"})')
    video, wav, bag, clip, bag_start = make_sample(out, a.clip_seconds, labels, a.faces, a.speech,
                                                   a.segments, a.seed)
    truths = truth_schedule(bag, bag_start)
    seconds = a.seconds if a.seconds is not None else \
        (20.0 if a.faces is None else clip.duration)
    print(f'[demo] clip: {clip.duration:.1f} s, ' + ', '.join(
        f'{g["label"]} {g["end"] - g["start"]:.1f} s' for g in clip.segments))

    board = None
    if a.board == 'sim':
        print('[demo] 2/5 building the firmware and starting the simulated Uno (simavr)')
        ensure_built()
        board = SimBoard(out / 'sim_board.log')
        if not wait_until(lambda: os.path.exists(SIM_PORT), 10):
            print(f'[demo] the simulated board did not create {SIM_PORT}', file=sys.stderr)
    args = GraphArgs(camera=str(video), audio_file=str(wav), loop_files=True,
                     serial_port=SIM_PORT, transport='serial' if board else 'none',
                     model_bundle=a.model_bundle)
    specs = with_param_files(robot_graph(args), a.params)
    if a.params:
        print('[demo] parameters from ' + ', '.join(str(p) for p in a.params))
    # One clock for video, audio and truth: frame n and sample k are stamped from this time, and
    # so is the truth below (the clip's times are the bag's stamps minus its start).
    start_ns = time.time_ns() + int(a.start_delay * 1e9)
    set_file_start(specs, start_ns)
    print('[demo] 3/5 starting ' + ', '.join(s.name for s in specs))
    rec_proc = None
    live = LiveSamples()
    try:
        with GraphRunner(specs, log_dir=out / 'logs') as graph, RosHarness('demo_monitor') as ros:
            emotions: dict = {}
            state: list = []
            first_stamp: list = []

            def on_emotion(m) -> None:
                emotions[m.face_id] = m
                live.emotion.append((time.time_ns(), _stamp_ns(m.header.stamp), m.face_id,
                                     int(m.modalities)))

            def on_image(raw: bytes) -> None:   # raw CDR: only the header stamp is read
                stamp = _cdr_stamp_ns(raw)
                live.image_ms.append((time.time_ns() - stamp) / 1e6)
                first_stamp or first_stamp.append(stamp)
            ros.node.create_subscription(Emotion, 'emotion', on_emotion, 50)
            for topic, ages in (('vision/features', live.vision_ms),
                                ('voice/features', live.voice_ms)):
                ros.node.create_subscription(
                    EmotionFeature, topic,
                    lambda raw, ages=ages: ages.append((time.time_ns() - _cdr_stamp_ns(raw)) / 1e6),
                    qos_profile_sensor_data, raw=True)
            ros.node.create_subscription(TrackerState, 'tracker/state', state.append, 10)
            # best effort like face_node: the age of image_raw at a subscriber (camera + hop)
            ros.node.create_subscription(Image, 'image_raw', on_image, qos_profile_sensor_data,
                                         raw=True)
            truth_pub = ros.publisher(Emotion, 'emotion/ground_truth', 10)
            rec_proc = subprocess.Popen(
                ['emotion-bag', 'record', str(out / 'recording'), '--topics', '/emotion',
                 '/emotion/ground_truth', '/faces', '/tracker/state', '/joint_states',
                 '/humans/faces/tracked', '/diagnostics',
                 '--type', '/joint_states:=sensor_msgs/msg/JointState',
                 '--type', '/humans/faces/tracked:=hri_msgs/msg/IdsList',
                 # the per-id REP-155 topics (/humans/faces/<id>/expression, roi, voices/...)
                 '--prefix', '/humans'],
                stdout=open(out / 'logs' / 'record.log', 'w'), stderr=subprocess.STDOUT)
            print('[demo] 4/5 running: one line per second (Ctrl-C to stop early)')
            if not wait_until(lambda: bool(first_stamp), a.start_delay + 30):
                print(f'[demo] no image from camera_node within {a.start_delay + 30:.0f} s:\n'
                      + graph.logs(), file=sys.stderr)
                return 1
            t0 = start_ns
            late = (first_stamp[0] - t0) / 1e9
            if late > 0.5:
                print(f'[demo] the first frame received is {late:.1f} s into the clip (the graph '
                      'was slower to start than --start-delay); its start is not scored',
                      file=sys.stderr)
            t_start = time.monotonic() - max(0.0, (time.time_ns() - t0) / 1e9)
            next_print = 0.0
            clip_ns = int(round(clip.duration * 1e9))
            truth_index = 0  # next ground-truth sample to publish (over loops of the clip)
            while time.monotonic() - t_start < seconds:
                elapsed = time.monotonic() - t_start
                now_ns = ros.node.get_clock().now().nanoseconds
                clip_t = ((now_ns - t0) / 1e9) % clip.duration
                truth = clip.label_at(clip_t) or ''
                while True:
                    loop, k = divmod(truth_index, len(truths))
                    stamp = t0 + loop * clip_ns + truths[k][0]
                    if stamp > now_ns:
                        break
                    truth_pub.publish(truth_message(stamp, truths[k][1]))
                    truth_index += 1
                if elapsed >= next_print:
                    next_print += 1.0
                    faces = ' | '.join(_fmt_emotion(m) for m in list(emotions.values())[:2]) \
                        or 'no emotion yet'
                    servo = ''
                    if state:
                        s = state[-1]
                        servo = (f'pan {math.degrees(s.command.pan):+6.1f}° '
                                 f'tilt {math.degrees(s.command.tilt):+6.1f}° '
                                 f'mode {modes.get(s.mode, s.mode)} '
                                 f'link {links.get(s.link, s.link)}')
                    if board and board.pulses[0]:
                        servo += f' pulses {board.pulses[0]}/{board.pulses[1]} µs'
                    print(f't={elapsed:5.1f}s true {truth:>8} | {faces} | {servo}', flush=True)
                    emotions.clear()
                restarted = graph.respawn_dead()
                if restarted:
                    print(f'[demo] respawned {restarted}')
                time.sleep(0.05)
            dead = graph.dead()
            if dead:
                print(f'[demo] nodes that died: {dead}\n' + graph.logs(), file=sys.stderr)
            live.load_average = os.getloadavg()
    except KeyboardInterrupt:
        print('[demo] stopped by Ctrl-C')
    finally:
        if rec_proc is not None:
            rec_proc.send_signal(2)
            try:
                rec_proc.wait(15)
            except subprocess.TimeoutExpired:
                rec_proc.kill()
        if board:
            board.stop()
    if a.no_eval:
        return 0
    print('[demo] 5/5 evaluating the recording (emotion-eval bag --mode live)')
    try:
        rows = latency_breakdown(read_recording(out / 'recording'), live,
                                 voice_window_seconds(a.model_bundle))
    except Exception as exc:  # noqa: BLE001 - the breakdown must not cost the report
        rows = None
        print(f'[demo] no latency breakdown: {type(exc).__name__}: {exc}', file=sys.stderr)
    result = subprocess.run(['emotion-eval', 'bag', str(out / 'recording'), '--mode', 'live',
                             '--truth', str(bag), '--out', str(out / 'report')],
                            capture_output=True, text=True)
    if result.returncode != 0:
        print('[demo] evaluation failed:\n' + result.stderr[-3000:], file=sys.stderr)
        return 1
    try:
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        print('[demo] ' + ', '.join(f'{k}={summary[k]:.3f}' for k in ('accuracy', 'uar')
                                    if isinstance(summary.get(k), (int, float))))
    except (ValueError, IndexError):
        pass
    if rows is not None:
        md = breakdown_markdown(rows, live.load_average)
        add_to_report(out / 'report', md, rows)
        print('[demo] latency breakdown (report.md, latency_breakdown.json):\n' + md)
    print(f'[demo] report: {out / "report"}/report.md (plots, annotated video alongside)')
    return 0


# --------------------------------------------------------------------------- latency breakdown
# Why a breakdown: the report's end-to-end age (recorder receive time - header stamp of every
# /emotion) is not the bench's figure (bench/bench_system.py: a plain subscriber in its own
# process, face estimates only, after a warm-up). The parts below come from stamps, receive
# times and the figures the nodes already put on /diagnostics, so the two can be compared.

@dataclasses.dataclass
class LiveSamples:
    """What the demo's own monitor saw: image_raw ages [ms] and /emotion receipts."""

    image_ms: list = dataclasses.field(default_factory=list)
    vision_ms: list = dataclasses.field(default_factory=list)   # vision/features ages
    voice_ms: list = dataclasses.field(default_factory=list)    # voice/features ages
    emotion: list = dataclasses.field(default_factory=list)  # (recv ns, stamp ns, face id, mods)
    load_average: Optional[tuple] = None


def _stamp_ns(stamp) -> int:
    return int(stamp.sec) * 10**9 + int(stamp.nanosec)


def _cdr_stamp_ns(raw: bytes) -> int:
    """header.stamp of a serialized message that starts with a std_msgs/Header (CDR: 4 bytes
    encapsulation, int32 sec, uint32 nanosec, in the byte order the encapsulation names)."""
    order = '<' if raw[1] & 1 else '>'
    sec, nsec = struct.unpack_from(order + 'iI', raw, 4)
    return sec * 10**9 + nsec


def read_recording(bag: Path) -> dict:
    """The parts of the demo's recording that the breakdown uses: /emotion (log time, stamp,
    face id, modalities) and every /diagnostics status's values per node (in time order)."""
    from diagnostic_msgs.msg import DiagnosticArray  # noqa: PLC0415 - ROS on use only
    from rclpy.serialization import deserialize_message  # noqa: PLC0415 - ROS on use only
    from rosbags.rosbag2 import Reader  # noqa: PLC0415 - the bag library on use only

    from emotion_msgs.msg import Emotion  # noqa: PLC0415 - ROS on use only
    rec: dict = {'emotion': [], 'diag': {}}
    with Reader(bag) as reader:
        for conn, log_ns, raw in reader.messages():
            if conn.topic == '/emotion':
                m = deserialize_message(bytes(raw), Emotion)
                rec['emotion'].append((log_ns, _stamp_ns(m.header.stamp), m.face_id,
                                       int(m.modalities)))
            elif conn.topic == '/diagnostics':
                for st in deserialize_message(bytes(raw), DiagnosticArray).status:
                    node = st.name.split(':')[0].strip()
                    rec['diag'].setdefault(node, []).append({v.key: v.value for v in st.values})
    return rec


def voice_window_seconds(bundle: str = '') -> Optional[float]:
    """The voice window length of the bundle the graph runs (its manifest)."""
    try:
        from emotion_runtime.model_bundle import load_manifest  # noqa: PLC0415 - onnxruntime: on use only
        vocal = load_manifest(bundle or None, verify_files=False).get('vocal', {})
        return float(vocal['window_seconds'])
    except Exception:  # noqa: BLE001 - the breakdown then says the length is unknown
        return None


def _pct(values_ms: list) -> dict:
    v = np.asarray(values_ms, np.float64)
    if v.size == 0:
        return {'n': 0}
    return {'n': int(v.size), 'p50': float(np.percentile(v, 50)),
            'p95': float(np.percentile(v, 95))}


def _diag(rec: dict, node: str, key: str) -> dict:
    """A /diagnostics figure of `node` over the run: the median of its reports (each report
    covers the node's last 200 samples); n = the number of reports."""
    vals = []
    for values in rec['diag'].get(node, []):
        try:
            x = float(values[key])
        except (KeyError, ValueError):
            continue
        if math.isfinite(x):   # 'nan' until the node has a sample
            vals.append(x)
    return {'n': len(vals), 'median': float(np.median(vals))} if vals else {'n': 0}


def latency_breakdown(rec: dict, live: LiveSamples, window_s: Optional[float],
                      bench_warmup_s: float = 8.0) -> list:
    """Rows {part, spans, source, n, p50, p95 (ms; None where not measured)} along the path
    camera -> face_node -> fusion -> /emotion -> recorder, and the voice path."""
    rows: list = []

    def row(part, spans, source, fig):
        rows.append({'part': part, 'spans': spans, 'source': source, 'n': fig.get('n', 0),
                     'p50': fig.get('p50'), 'p95': fig.get('p95')})

    def diag(node, key):
        p50, p95 = _diag(rec, node, f'{key} p50_ms'), _diag(rec, node, f'{key} p95_ms')
        return {'n': p50['n'], 'p50': p50.get('median'), 'p95': p95.get('median')}

    def diff(a, b):   # p50 of a cumulative age minus p50 of the one before it
        return {'n': 0, 'p50': None if a is None or b is None else a - b}

    cam = diag('camera_node', 'stamp_to_publish')
    row('camera', 'capture stamp -> image_raw published (conversion + publish)',
        'camera_node /diagnostics', cam)
    img = _pct(live.image_ms)
    row('image_raw at a subscriber', 'capture stamp -> received (best effort, demo monitor)',
        'stamps', img)
    row('DDS hop image_raw', 'published -> received', 'p50 difference of the two above',
        diff(img.get('p50'), cam['p50']))
    det = diag('face_node', 'processing')
    row('detection', 'face_node per frame: decode, detect, track, encode, publish',
        'face_node /diagnostics', det)
    face_done = diag('face_node', 'latency_from_capture')
    row('face_node done', 'capture stamp -> face_node finished a frame (incl. its one-frame '
        'queue)', 'face_node /diagnostics', face_done)
    vis = _pct(live.vision_ms)
    row('vision/features at a subscriber', 'capture stamp -> received (best effort, demo '
        'monitor)', 'stamps', vis)
    row('DDS hop vision/features', 'published -> received',
        'p50 difference of the two above', diff(vis.get('p50'), face_done['p50']))
    rows.append({'part': 'voice window', 'spans': 'first sample of a window -> its last sample',
                 'source': 'bundle manifest', 'n': 0,
                 'p50': None if window_s is None else window_s * 1e3, 'p95': None})
    row('voice processing', 'vocal_node per chunk that completes a window (log-mel, encoder, '
        'publish)', 'vocal_node /diagnostics', diag('vocal_node', 'processing'))
    row('voice/features at a subscriber', 'window start stamp -> received (best effort, demo '
        'monitor)', 'stamps', _pct(live.voice_ms))
    mean = _diag(rec, 'fusion_node', 'fusion_step_ms_per_face_mean')
    mx = _diag(rec, 'fusion_node', 'fusion_step_ms_per_face_max')
    rows.append({'part': 'fusion step', 'spans': 'one step per face (p50 column: mean, p95 '
                 'column: max)', 'source': 'fusion_node /diagnostics', 'n': mean['n'],
                 'p50': mean.get('median'), 'p95': mx.get('median')})
    i2p = _diag(rec, 'fusion_node', 'input_to_publish_ms_p95')
    rows.append({'part': 'fusion input -> publish', 'spans': 'feature received -> its first '
                 'Emotion published (incl. rate-limited steps)', 'source':
                 'fusion_node /diagnostics', 'n': i2p['n'], 'p50': None,
                 'p95': i2p.get('median')})
    mon = live.emotion
    t_first = min((r[0] for r in mon), default=0)
    face = [(r - s) / 1e6 for r, s, fid, mods in mon if mods & 1]
    row('/emotion at a subscriber, with vision', 'capture stamp -> received (demo monitor)',
        'stamps', _pct(face))
    row('/emotion at a subscriber, voice only', 'window start stamp -> received (demo monitor)',
        'stamps', _pct([(r - s) / 1e6 for r, s, fid, mods in mon if mods == 2]))
    row("the bench's figure", f'face estimates after the first {bench_warmup_s:.0f} s, capture '
        'stamp -> received (demo monitor)', 'stamps',
        _pct([(r - s) / 1e6 for r, s, fid, mods in mon
              if fid and fid != 'voice' and r - t_first >= bench_warmup_s * 1e9]))
    row('fusion + DDS hop /emotion', 'vision/features received -> /emotion received',
        'p50 difference', diff(_pct(face).get('p50'), vis.get('p50')))
    # the same message at the monitor and at the recorder: the k-th (face id, stamp) of each
    seen: dict = {}
    for r, s, fid, _m in mon:
        seen.setdefault((fid, s), []).append(r)
    rec_delay, taken = [], {}
    for log_ns, s, fid, _m in rec['emotion']:
        k = taken.get((fid, s), 0)
        recv = seen.get((fid, s), [])
        if k < len(recv):
            rec_delay.append((log_ns - recv[k]) / 1e6)
        taken[(fid, s)] = k + 1
    row('recorder', '/emotion received by the demo monitor -> by the recorder (same message)',
        'stamps', _pct(rec_delay))
    firsts: set = set()
    first_use, repeats = [], []
    for log_ns, s, fid, _mods in rec['emotion']:
        (repeats if (fid, s) in firsts else first_use).append((log_ns - s) / 1e6)
        firsts.add((fid, s))
    e2e = [(log_ns - s) / 1e6 for log_ns, s, _f, _m in rec['emotion']]
    row('end to end (the report)', 'header stamp -> recorded, every /emotion', 'stamps', _pct(e2e))
    row('  with vision', 'capture stamp -> recorded', 'stamps',
        _pct([(t - s) / 1e6 for t, s, _f, m in rec['emotion'] if m & 1]))
    row('  voice only', 'window start stamp -> recorded', 'stamps',
        _pct([(t - s) / 1e6 for t, s, _f, m in rec['emotion'] if m == 2]))
    row('  first Emotion of a stamp', 'a step on a new input', 'stamps', _pct(first_use))
    row('  repeated stamp', 'timer steps on held inputs (the stamp is the newest input\'s)',
        'stamps', _pct(repeats))
    return rows


def breakdown_markdown(rows: list, load_average: Optional[tuple] = None) -> str:
    def ms(x):
        return '-' if x is None else f'{x:.1f}'
    lines = ['## Latency breakdown', '',
             'Measured in this run (ms). Cumulative ages run from the header stamp: a camera '
             "frame's capture time, or a voice window's first sample. /diagnostics figures are "
             "the median over the run's reports of each node's p50/p95 (last 200 samples each; "
             'n = reports); "p50 difference" rows subtract two medians, so they are estimates.',
             '', '| part | spans | source | n | p50 | p95 |', '|---|---|---|---:|---:|---:|']
    lines += [f'| {r["part"]} | {r["spans"]} | {r["source"]} | {r["n"]} | {ms(r["p50"])} | '
              f'{ms(r["p95"])} |' for r in rows]
    lines += ['', "Why this differs from the README's live-graph bench (bench/bench_system.py): "
              'the bench takes face estimates only, after an 8 s warm-up, at a plain subscriber, '
              'with no recorder, no simulated board and no evaluation running; the report takes '
              'every /emotion from the start at the recorder (emotion-bag record, a Python '
              'process that writes each message to the bag), with simavr, the health monitor '
              'and this monitor sharing the CPUs. Voice-only estimates carry their window\'s '
              'first-sample stamp, so their age includes the window itself; timer steps on held '
              "inputs republish the newest input's stamp, so their age grows until the next "
              'input.']
    if load_average:
        lines += ['', 'Load average at the end of the run (1/5/15 min): '
                  + ' / '.join(f'{x:.1f}' for x in load_average)
                  + f' on {os.cpu_count()} CPUs.']
    return '\n'.join(lines) + '\n'


def add_to_report(report_dir: Path, md: str, rows: list) -> None:
    """Append the breakdown to report.md and report.html (before </body>) and write
    latency_breakdown.json beside them."""
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / 'latency_breakdown.json').write_text(json.dumps(rows, indent=1))
    md_path = report_dir / 'report.md'
    with open(md_path, 'a') as f:
        f.write('\n' + md)
    html_path = report_dir / 'report.html'
    if html_path.is_file():
        body = ''.join(f'<p>{html.escape(p)}</p>' for p in md.split('\n\n')
                       if p.strip() and not p.startswith(('#', '|')))
        table = ''.join(
            '<tr>' + ''.join(f'<td>{html.escape(str(c))}</td>' for c in (
                r['part'], r['spans'], r['source'], r['n'],
                '-' if r['p50'] is None else f'{r["p50"]:.1f}',
                '-' if r['p95'] is None else f'{r["p95"]:.1f}')) + '</tr>' for r in rows)
        section = ('<h2>Latency breakdown</h2><table><tr><th>part</th><th>spans</th>'
                   '<th>source</th><th>n</th><th>p50 ms</th><th>p95 ms</th></tr>'
                   f'{table}</table>{body}')
        text = html_path.read_text()
        text = text.replace('</body>', section + '</body>', 1) if '</body>' in text \
            else text + section
        html_path.write_text(text)


def set_file_start(specs: list, start_ns: int) -> None:
    """Give camera_node and microphone_node one `file_start_time` (their files' first frame and
    first sample at `start_ns`, ROS time), so the clip's video and audio share one clock."""
    found = set()
    for spec in specs:
        if spec.name in ('camera_node', 'microphone_node'):
            spec.parameters['file_start_time'] = start_ns / 1e9
            found.add(spec.name)
    missing = {'camera_node', 'microphone_node'} - found
    if missing:
        raise RuntimeError(f'the graph has no {", ".join(sorted(missing))}')


def truth_message(stamp_ns: int, sample):
    """A ground-truth Emotion of the sample bag (see truth_schedule), stamped at `stamp_ns`.

    emotion-bag's writer defines what a ground-truth Emotion holds (one-hot probabilities, the
    label's valence/arousal); the demo only moves it to the live timeline.
    """
    sample.header.stamp.sec = int(stamp_ns // 10**9)
    sample.header.stamp.nanosec = int(stamp_ns % 10**9)
    return sample


def _constant_names(msg_type, prefix: str) -> dict:
    """value -> name of a message's constants with `prefix` (MODE_TRACKING -> 'TRACKING')."""
    return {getattr(msg_type, n): n[len(prefix):] for n in dir(msg_type) if n.startswith(prefix)}


def main(argv: Optional[list] = None) -> int:
    return run_demo(parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
