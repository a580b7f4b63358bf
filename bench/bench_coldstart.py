"""Cold-start bench: process start -> first /diagnostics and -> first output, per node and graph.

Each node of robot_graph() (transport none) is started as its own process, cold then warm, and
that --repeats times (default 3; the table holds medians, and the worst cold start):
  - cold: every cache a process could reuse is empty: PYTHONPYCACHEPREFIX points at a fresh empty
    folder, so Python recompiles the bytecode of every module it imports (ours, rclpy, numpy,
    OpenCV's and onnxruntime's Python parts, ...); NUMBA_CACHE_DIR points at another fresh folder,
    so numba, if anything imported it, would recompile instead of loading the caches under the
    venv's site-packages (which are left alone: other runs use them). onnxruntime keeps no disk
    cache (sessions are built in memory at each start). Not cleared: the OS page cache (dropping
    it needs root and would slow the whole machine), so "cold" here means cold caches of the
    process, with the files already in memory, as on a robot that restarts a node;
  - warm: the same node again right after, with the same folders, so the bytecode compiled by
    the cold run is reused.
Measured from just before the process is spawned to the first message the bench process receives
(over loopback DDS, so discovery is included): the node's first /diagnostics, and its first output
on real input: camera_node first image_raw (the demo clip), microphone_node first audio (its WAV),
face_node first faces with a face and first vision/features (fed by a warm camera_node),
vocal_node first voice/features (fed by a warm microphone_node), fusion_node first emotion (fed by
warm camera, microphone, face and vocal nodes), tracker_node first pan_tilt/command (fed by warm
camera and face nodes). Then the whole graph (the launch-free GraphRunner, as demo.py and
bench_system.py start it), cold and warm, to the first /emotion.

The input is bench_system.py's: the demo sample (emotion_bringup.demo.make_sample: a real face
photo swept across a 640x480 frame at 30 fps, espeak-ng speech). Printed, never asserted. Run
inside a network namespace holding only `lo` (bench/run_all.py and `make bench` do that).

    source scripts/env.sh && python bench/bench_coldstart.py [--nodes face_node vocal_node] [--no-graph]
"""
from __future__ import annotations

import argparse
import site
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from table import print_table  # bench/table.py (scripts run from bench/)

from emotion_bringup.demo import make_sample
from emotion_bringup.graph import GraphArgs, robot_graph
from emotion_bringup.graph_runner import GraphRunner, wait_until
from emotion_msgs.msg import AudioChunk, Emotion, EmotionFeature, FaceArray, PanTilt
from emotion_test_tools.dds import NodeProcess, RosHarness, isolated_domain, ros_env

NODES = ['camera_node', 'microphone_node', 'face_node', 'vocal_node', 'fusion_node',
         'tracker_node']
# what each node's first output is: (label, topic, type, predicate on the message)
OUTPUTS: dict = {
    'camera_node': [('first image_raw', 'image_raw', Image, None)],
    'microphone_node': [('first audio', 'audio', AudioChunk, None)],
    'face_node': [('first face (faces)', 'faces', FaceArray, lambda m: len(m.faces) > 0),
                  ('first vision/features', 'vision/features', EmotionFeature, None)],
    'vocal_node': [('first voice/features', 'voice/features', EmotionFeature, None)],
    'fusion_node': [('first emotion', 'emotion', Emotion, None)],
    'tracker_node': [('first pan_tilt/command', 'pan_tilt/command', PanTilt, None)],
}
# the (warm) nodes that feed each measured node real input, and the topic that says they do
FEEDERS: dict = {
    'camera_node': ([], None),
    'microphone_node': ([], None),
    'face_node': (['camera_node'], ('image_raw', Image)),
    'vocal_node': (['microphone_node'], ('audio', AudioChunk)),
    'fusion_node': (['camera_node', 'microphone_node', 'face_node', 'vocal_node'],
                    ('voice/features', EmotionFeature)),
    'tracker_node': (['camera_node', 'face_node'], ('faces', FaceArray)),
}
TARGETS = {'diagnostics': '<= 3 s cold', 'face_node': '<= 8 s cold', 'vocal_node': '<= 8 s cold',
           'graph': '<= 12 s cold'}
TARGET_OUTPUT_LABEL = {'face_node': 'first vision/features', 'vocal_node': 'first voice/features'}


class FirstSeen:
    """Receive time (time.monotonic) of the first matching message per key since ``reset``."""

    def __init__(self, ros: RosHarness) -> None:
        self.ros = ros
        self.t0 = 0.0
        self.first: dict = {}
        self.lock = threading.Lock()
        self.subs: list = []

    def reset(self) -> float:
        with self.lock:
            self.first = {}
            self.t0 = time.monotonic()
            return self.t0

    def watch(self, key: str, topic: str, msg_type, predicate: Optional[Callable] = None) -> None:
        def on_msg(msg) -> None:
            now = time.monotonic()
            if predicate is None or predicate(msg):
                with self.lock:
                    self.first.setdefault(key, now - self.t0)
        self.subs.append(self.ros.node.create_subscription(msg_type, topic, on_msg,
                                                           qos_profile_sensor_data))

    def watch_diagnostics(self, exclude: list) -> None:
        """First /diagnostics status that is not from one of the feeder nodes in ``exclude``
        (their statuses are named '<node name>: ...')."""
        prefixes = tuple(f'{n}:' for n in exclude)
        self.watch('diagnostics', '/diagnostics', DiagnosticArray,
                   lambda m: any(not s.name.startswith(prefixes) for s in m.status))

    def unwatch(self) -> None:
        for sub in self.subs:
            self.ros.node.destroy_subscription(sub)
        self.subs = []

    def get(self, key: str) -> Optional[float]:
        with self.lock:
            return self.first.get(key)


def fresh_caches(tmp: Path, name: str) -> dict:
    """Environment entries that give a process empty bytecode and numba caches of its own."""
    pyc, nb = tmp / 'caches' / name / 'pycache', tmp / 'caches' / name / 'numba'
    pyc.mkdir(parents=True)
    nb.mkdir(parents=True)
    return {'PYTHONPYCACHEPREFIX': str(pyc), 'NUMBA_CACHE_DIR': str(nb)}


def numba_cache_files() -> int:
    """How many numba cache files (*.nbi index, *.nbc data) lie under site-packages."""
    n = 0
    for sp in {p for p in site.getsitepackages() + [site.getusersitepackages()] if Path(p).is_dir()}:
        n += sum(1 for _ in Path(sp).rglob('*.nbi')) + sum(1 for _ in Path(sp).rglob('*.nbc'))
    return n


def _fmt(t: Optional[float]) -> str:
    return f'{t:.2f} s' if t is not None else 'none'


def _summary(by_run: dict) -> str:
    """'<median> s cold (max <max>) / <median> s warm' over the repeats (None = nothing came)."""
    parts = []
    for run in ('cold', 'warm'):
        got = [t for t in by_run.get(run, []) if t is not None]
        n = len(by_run.get(run, []))
        if not got:
            parts.append(f'none {run}')
            continue
        text = f'{statistics.median(got):.2f} s {run}'
        if run == 'cold' and len(got) > 1:
            text += f' (max {max(got):.2f})'
        if len(got) < n:
            text += f' ({n - len(got)}/{n} none)'
        parts.append(text)
    return ' / '.join(parts)


def measure_node(name: str, specs: dict, seen: FirstSeen, tmp: Path, base_env: dict,
                 timeout: float, repeats: int) -> dict:
    """``repeats`` x (cold, then warm start) of one node with its feeders running;
    key -> {'cold': [s, ...], 'warm': [s, ...]} (None where nothing came)."""
    feeder_names, ready = FEEDERS[name]
    results: dict = {}
    feeders = GraphRunner([specs[f] for f in feeder_names], env=base_env,
                          log_dir=tmp / 'logs' / f'feed_{name}')
    with feeders:
        if ready is not None:
            seen.reset()
            seen.watch('ready', ready[0], ready[1])
            if not wait_until(lambda: seen.get('ready') is not None or bool(feeders.dead()),
                              90.0) or seen.get('ready') is None:
                print(f'[coldstart] {name}: feeders {feeder_names} gave no {ready[0]} in 90 s'
                      f'{", dead: " + str(feeders.dead()) if feeders.dead() else ""}',
                      file=sys.stderr, flush=True)
            seen.unwatch()
        outputs = OUTPUTS[name]
        seen.watch_diagnostics(exclude=feeder_names)
        for label, topic, msg_type, pred in outputs:
            seen.watch(label, topic, msg_type, pred)
        spec = specs[name]
        keys = ['diagnostics'] + [o[0] for o in outputs]
        for i, run in [(i, run) for i in range(repeats) for run in ('cold', 'warm')]:
            if run == 'cold':
                env = dict(base_env, **fresh_caches(tmp, f'{name}_{i}'))
                env.pop('PYTHONDONTWRITEBYTECODE', None)
            seen.reset()
            with NodeProcess(spec.package, spec.executable, env=env,
                             ros_args=spec.ros_args()[1:]) as proc:
                done = wait_until(lambda: all(seen.get(k) is not None for k in keys)
                                  or not proc.alive(), timeout)
                firsts = {k: seen.get(k) for k in keys}
                if not done or not proc.alive():
                    print(f'[coldstart] {name} {run}: {firsts}, alive {proc.alive()}\n'
                          f'{proc.output()[-1500:]}', file=sys.stderr, flush=True)
            for k in keys:
                results.setdefault(k, {}).setdefault(run, []).append(firsts[k])
            print(f'[coldstart] {name} {run}: ' +
                  ', '.join(f'{k} {_fmt(v)}' for k, v in firsts.items()), file=sys.stderr,
                  flush=True)
        seen.unwatch()
    return results


def measure_graph(args: GraphArgs, seen: FirstSeen, tmp: Path, base_env: dict,
                  timeout: float, repeats: int) -> dict:
    """``repeats`` x (cold, then warm start) of the whole graph; {'cold': [s, ...], 'warm': ...}
    to the first /emotion."""
    seen.watch('emotion', 'emotion', Emotion)
    out: dict = {'cold': [], 'warm': []}
    for i, run in [(i, run) for i in range(repeats) for run in ('cold', 'warm')]:
        if run == 'cold':
            env = dict(base_env, **fresh_caches(tmp, f'graph_{i}'))
            env.pop('PYTHONDONTWRITEBYTECODE', None)
        seen.reset()
        with GraphRunner(robot_graph(args), env=env,
                         log_dir=tmp / 'logs' / f'graph_{run}_{i}') as g:
            wait_until(lambda: seen.get('emotion') is not None or bool(g.dead()), timeout)
            t = seen.get('emotion')
            if t is None:
                print(f'[coldstart] graph {run}: no /emotion in {timeout:.0f} s, dead '
                      f'{g.dead()}\n{g.logs(800)}', file=sys.stderr, flush=True)
        out[run].append(t)
        print(f'[coldstart] graph {run}: first /emotion {_fmt(t)}', file=sys.stderr,
              flush=True)
    seen.unwatch()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--nodes', nargs='*', default=NODES, choices=NODES, help='nodes to measure')
    ap.add_argument('--no-graph', action='store_true', help='skip the whole-graph measurement')
    ap.add_argument('--timeout', type=float, default=45.0,
                    help='seconds to wait for a node\'s first messages (default 45)')
    ap.add_argument('--repeats', type=int, default=3,
                    help='cold + warm starts per node and of the graph; medians printed (default 3)')
    ap.add_argument('--model-bundle', default='', help="'' = the shipped bundle")
    a = ap.parse_args(argv)

    nb_files = numba_cache_files()
    rows: list = []
    with tempfile.TemporaryDirectory(prefix='bench_coldstart_') as tmp_name:
        tmp = Path(tmp_name)
        video, wav, _bag, _clip, _start = make_sample(tmp, 12.0,
                                                      ['happy', 'neutral', 'sad', 'angry'])
        args = GraphArgs(camera=str(video), audio_file=str(wav), transport='none',
                         model_bundle=a.model_bundle)
        specs = {s.name: s for s in robot_graph(args)}
        with isolated_domain() as domain_id, RosHarness('bench_coldstart') as ros:
            base_env = ros_env(domain_id)
            seen = FirstSeen(ros)
            for name in a.nodes:
                res = measure_node(name, specs, seen, tmp, base_env, a.timeout, a.repeats)
                for key, by_run in res.items():
                    if key == 'diagnostics':
                        figure, target = 'start -> first /diagnostics', TARGETS['diagnostics']
                    else:
                        figure = f'start -> {key}'
                        target = TARGETS[name] if TARGET_OUTPUT_LABEL.get(name) == key else '-'
                    rows.append((name, figure, target, _summary(by_run)))
            if not a.no_graph:
                g = measure_graph(args, seen, tmp, base_env, max(a.timeout, 60.0), a.repeats)
                rows.append(('graph (6 node processes)', 'start -> first /emotion',
                             TARGETS['graph'], _summary(g)))
    print(f'cold-start bench, median of {a.repeats} (cold: fresh PYTHONPYCACHEPREFIX and '
          f'NUMBA_CACHE_DIR per start, {nb_files} numba cache files under site-packages not used; '
          f'onnxruntime has no disk cache; OS page cache not dropped)')
    print_table(rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
