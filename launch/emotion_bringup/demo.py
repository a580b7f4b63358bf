"""The one-command demo: the whole robot on a generated clip, with a simulated Arduino.

    make demo                      (set up, then this, in a loopback-only network namespace)
    python -m emotion_bringup.demo --help

What it does, in order:
  1. builds a short sample from what any machine has: the astronaut photo of scikit-image moved
     across the frame and espeak-ng speech, one label per segment; writes it as a video file, a
     WAV file and a ROS 2 bag (images, audio, ground truth) with `emotion-bag make --demo`;
  2. builds the Uno firmware and starts it in simavr behind a pty (firmware/build/simharness);
  3. starts the graph of robot.launch.py (robot_graph) as separate processes: camera_node on the
     video, microphone_node on the WAV, face, vocal, fusion and tracker (serial to the simulator);
  4. publishes the true label of the clip time on emotion/ground_truth, records /emotion and the
     truth, and prints one line per second: the emotion, the servo angles and pulse widths;
  5. evaluates the recording (`emotion-eval bag --mode live`): metrics, plots, annotated video.

The training package's tools (emotion-bag, emotion-eval) run as subprocesses: the demo imports no
training module (nor torch), like the nodes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

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
    p.add_argument('--seconds', type=float, default=20.0,
                   help='how long the graph runs after the first frame (default 20 s)')
    p.add_argument('--clip-seconds', type=float, default=12.0, help='length of the sample clip')
    p.add_argument('--labels', default=LABELS, help=f'segment labels of the clip ({LABELS})')
    p.add_argument('--board', choices=('sim', 'none'), default='sim',
                   help='sim: the firmware in simavr over a pty; none: no actuator')
    p.add_argument('--model-bundle', default='', help="model bundle ('' = the shipped one)")
    p.add_argument('--no-eval', action='store_true', help='skip the evaluation report')
    return p.parse_args(argv)


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


def make_sample(out: Path, seconds: float, labels: list) -> tuple:
    """Write clip.mp4 (or .avi), speech.wav and the bag with `emotion-bag make --demo`;
    returns (video, wav, bag, clip, bag start [ns])."""
    bag = out / 'sample_bag'
    cmd = ['emotion-bag', 'make', str(bag), '--demo', '--seconds', repr(float(seconds)),
           '--demo-labels', ','.join(labels), '--motion', 'sweep', '--chunk-ms', '50',
           '--write-video', str(out / 'clip.mp4'), '--write-wav', str(out / 'speech.wav')]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f'{" ".join(cmd)} failed ({result.returncode}):\n'
                           f'{result.stderr[-3000:]}')
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    clip = SampleClip(float(seconds), list(summary['segments']))
    return Path(summary['video']), Path(summary['wav']), bag, clip, int(summary['start_ns'])


def truth_schedule(bag: Path, start_ns: int) -> list:
    """(clip time [ns], Emotion) of every ground-truth sample in the sample bag, in time order.

    The demo republishes exactly these messages (as emotion-bag wrote them: the label, one-hot
    probabilities, its valence/arousal), restamped to the camera's clip start, so that the
    evaluation can line the recording up with the bag's images for the annotated video.
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
    import math

    from emotion_msgs.msg import Emotion, TrackerState
    from emotion_test_tools.dds import RosHarness
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    root = repo_root()
    modes = _constant_names(TrackerState, 'MODE_')
    links = _constant_names(TrackerState, 'LINK_')
    out = a.out or root / 'runs' / time.strftime('demo-%Y%m%d-%H%M%S')
    out.mkdir(parents=True, exist_ok=True)
    labels = [s.strip() for s in a.labels.split(',') if s.strip()]
    print(f'[demo] output in {out}')
    print(f'[demo] 1/5 building the sample clip ({a.clip_seconds:.0f} s, labels {labels})')
    video, wav, bag, clip, bag_start = make_sample(out, a.clip_seconds, labels)
    truths = truth_schedule(bag, bag_start)

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
    specs = robot_graph(args)
    print('[demo] 3/5 starting ' + ', '.join(s.name for s in specs))
    rec_proc = None
    try:
        with GraphRunner(specs, log_dir=out / 'logs') as graph, RosHarness('demo_monitor') as ros:
            emotions: dict = {}
            state: list = []
            first_stamp: list = []
            ros.node.create_subscription(Emotion, 'emotion',
                                         lambda m: emotions.__setitem__(m.face_id, m), 10)
            ros.node.create_subscription(TrackerState, 'tracker/state', state.append, 10)
            img_sub = ros.node.create_subscription(
                Image, 'image_raw',
                lambda m: first_stamp or first_stamp.append(m.header.stamp), qos_profile_sensor_data)
            truth_pub = ros.publisher(Emotion, 'emotion/ground_truth', 10)
            rec_proc = subprocess.Popen(
                ['emotion-bag', 'record', str(out / 'recording'), '--topics', '/emotion',
                 '/emotion/ground_truth', '/faces', '/tracker/state', '/joint_states',
                 '/humans/faces/tracked', '--type', '/joint_states:=sensor_msgs/msg/JointState',
                 '--type', '/humans/faces/tracked:=hri_msgs/msg/IdsList',
                 # the per-id REP-155 topics (/humans/faces/<id>/expression, roi, voices/...)
                 '--prefix', '/humans'],
                stdout=open(out / 'logs' / 'record.log', 'w'), stderr=subprocess.STDOUT)
            print('[demo] 4/5 running: one line per second (Ctrl-C to stop early)')
            if not wait_until(lambda: bool(first_stamp), 30):
                print('[demo] no image from camera_node within 30 s:\n' + graph.logs(),
                      file=sys.stderr)
                return 1
            ros.node.destroy_subscription(img_sub)
            t0 = first_stamp[0].sec * 10**9 + first_stamp[0].nanosec
            t_start = time.monotonic()
            next_print = 0.0
            clip_ns = int(round(clip.duration * 1e9))
            truth_index = 0  # next ground-truth sample to publish (over loops of the clip)
            while time.monotonic() - t_start < a.seconds:
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
    print(f'[demo] report: {out / "report"}/report.md (plots, annotated video alongside)')
    return 0


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
