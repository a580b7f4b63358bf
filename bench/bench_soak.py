"""Soak benchmark: the whole graph for minutes on a looping clip; leaks, drift, drops, health.

Runs robot.launch.py's graph (robot_graph, with the health monitor, transport none) as separate
processes on the demo's generated clip (a real face photo swept across a 640x480 frame at 30 fps,
espeak-ng speech, one label per 3 s), looped by the camera and microphone nodes, for `--minutes`
(default 10), and compares the first with the last minute (`--window`, 60 s):
  - RSS of each node process (mean over the window), growth in %;
  - camera stamp -> /emotion latency p50 / p95 (as bench_system.py measures it), the drift;
  - dropped frames: face_node's frames_dropped, and camera frames that face_node never processed
    (dropped + lost in transport), over the whole run;
  - /diagnostics levels seen per node (counts of WARN / ERROR / STALE statuses) and every item the
    health monitor reported STALE after the warm-up.
Printed, never asserted (targets: RSS growth <= 5 %, no latency drift, nothing stale). Run inside
a network namespace holding only `lo` (`scripts/isolated.sh python bench/bench_soak.py`);
`bench/run_all.py` (`make bench`) runs it with `--minutes 3` to keep `make bench` bounded.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import yaml
from diagnostic_msgs.msg import DiagnosticArray

from emotion_bringup.demo import make_sample
from emotion_bringup.graph import GraphArgs, robot_graph
from emotion_bringup.graph_runner import GraphRunner, wait_until
from emotion_msgs.msg import Emotion
from emotion_test_tools.dds import RosHarness, isolated_domain, ros_env

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_system import rss_mb  # noqa: E402
from table import print_table  # noqa: E402

LEVELS = {0: 'OK', 1: 'WARN', 2: 'ERROR', 3: 'STALE'}


def _pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float('nan')


def _drift_ok(first: float, last: float) -> bool:
    """'No drift': the last window within 20 % (or 2 ms) of the first."""
    return last <= max(first * 1.2, first + 2.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--minutes', type=float, default=10.0, help='run time (default 10)')
    ap.add_argument('--window', type=float, default=60.0,
                    help='seconds compared at the start and at the end (default 60; at most a '
                         'third of the run)')
    ap.add_argument('--warmup', type=float, default=35.0,
                    help='ignored start-up time in s (default 35: model loading, and the health '
                         "monitor's 30 s start-up grace)")
    ap.add_argument('--model-bundle', default='', help="'' = the shipped bundle")
    ap.add_argument('--set', action='append', default=[], metavar='NODE:PARAM=VALUE',
                    help='override one node parameter (YAML value), e.g. fusion_node:hri_output=false')
    a = ap.parse_args(argv)

    run_s = a.minutes * 60.0
    window = min(a.window, run_s / 3)
    lock = threading.Lock()
    latencies: list = []                       # (t since start of measuring, ms)
    rss: dict = defaultdict(list)              # node -> [(t, MB)]
    levels: dict = defaultdict(Counter)        # node -> Counter(level name)
    worst: dict = {}                           # node -> (level, message) of its worst status
    diag_values: dict = {}                     # node -> {key: value} of its latest status
    first_values: dict = {}                    # node -> values at the start of measuring
    stale: Counter = Counter()                 # health items seen STALE -> count of reports
    health_levels: Counter = Counter()
    t0 = [None]
    load: list = []                            # 1-min load average of the machine, sampled

    with tempfile.TemporaryDirectory(prefix='bench_soak_') as tmp_name:
        tmp = Path(tmp_name)
        video, wav, _bag, _clip, _start = make_sample(tmp, 12.0,
                                                      ['happy', 'neutral', 'sad', 'angry'])
        args = GraphArgs(camera=str(video), audio_file=str(wav), transport='none',
                         loop_files=True, model_bundle=a.model_bundle)
        specs = robot_graph(args)
        for item in a.set:
            node, _, assignment = item.partition(':')
            key, _, value = assignment.partition('=')
            spec = next((s for s in specs if s.name == node), None)
            if spec is None or not key:
                ap.error(f'--set {item}: not NODE:PARAM=VALUE with a node of the graph')
            spec.parameters[key] = yaml.safe_load(value)
        with isolated_domain() as domain_id:
            with GraphRunner(specs, env=ros_env(domain_id), log_dir=tmp / 'logs') as g, \
                    RosHarness('bench_soak') as ros:
                clock = ros.node.get_clock()

                def since() -> float:
                    return time.monotonic() - t0[0]

                def on_emotion(msg: Emotion) -> None:
                    if t0[0] is not None and msg.face_id != 'voice':
                        stamp = msg.header.stamp.sec * 1e9 + msg.header.stamp.nanosec
                        with lock:
                            latencies.append((since(),
                                              (clock.now().nanoseconds - stamp) / 1e6))

                def on_diagnostics(msg: DiagnosticArray) -> None:
                    for st in msg.status:
                        node = st.name.split(':', 1)[0]
                        values = {kv.key: kv.value for kv in st.values}
                        with lock:
                            diag_values[node] = values
                            if t0[0] is None:
                                continue
                            first_values.setdefault(node, values)
                            level = st.level[0]
                            levels[node][LEVELS.get(level, str(level))] += 1
                            if level > worst.get(node, (0, ''))[0]:
                                worst[node] = (level, st.message)

                def on_health(msg: DiagnosticArray) -> None:
                    if t0[0] is None or not msg.status:
                        return
                    with lock:
                        health_levels[LEVELS.get(msg.status[0].level[0], '?')] += 1
                        for st in msg.status[1:]:
                            if st.level[0] == 3:
                                stale[st.name] += 1

                ros.node.create_subscription(Emotion, 'emotion', on_emotion, 50)
                ros.node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 50)
                ros.node.create_subscription(DiagnosticArray, 'health', on_health, 10)
                wait_until(lambda: False, a.warmup)
                with lock:
                    t0[0] = time.monotonic()
                next_report = 60.0
                while since() < run_s:
                    t = since()
                    load.append(os.getloadavg()[0])
                    for name, node in g.nodes.items():
                        if node.alive():
                            rss[name].append((t, rss_mb(node.proc.pid)))
                    if t >= next_report:
                        print(f'[soak] {t / 60:.0f} min: {len(latencies)} /emotion, total RSS '
                              f'{sum(v[-1][1] for v in rss.values()):.0f} MB, stale '
                              f'{dict(stale) or "none"}', file=sys.stderr, flush=True)
                        next_report += 60.0
                    time.sleep(2.0)
                dead = g.dead()
                for name in dead:
                    print(f'[soak] {name} died; its log ends:\n{g.nodes[name].output()[-3000:]}',
                          file=sys.stderr, flush=True)
                with lock:
                    last_values = {k: dict(v) for k, v in diag_values.items()}

    def in_first(t):
        return t < window

    def in_last(t):
        return t >= run_s - window

    rows = []
    total_first = total_last = 0.0
    for name in [s.name for s in specs]:
        samples = rss.get(name, [])
        first = [mb for t, mb in samples if in_first(t)]
        last = [mb for t, mb in samples if in_last(t)]
        if not first or not last:
            rows.append((f'{name} RSS', 'growth first->last', '<= 5 %', 'n/a (not running)'))
            continue
        f, la = float(np.mean(first)), float(np.mean(last))
        total_first, total_last = total_first + f, total_last + la
        growth = 100.0 * (la - f) / f
        rows.append((f'{name} RSS', f'first -> last {window:.0f} s', '<= 5 %',
                     f'{f:.0f} -> {la:.0f} MB ({growth:+.1f} %)'))
    if total_first:
        rows.append(('graph total RSS', f'first -> last {window:.0f} s', '<= 5 %',
                     f'{total_first:.0f} -> {total_last:.0f} MB '
                     f'({100 * (total_last - total_first) / total_first:+.1f} %)'))
    lat_first = [ms for t, ms in latencies if in_first(t)]
    lat_last = [ms for t, ms in latencies if in_last(t)]
    for q in (50, 95):
        f, la = _pct(lat_first, q), _pct(lat_last, q)
        rows.append(('camera stamp -> /emotion', f'p{q} first -> last', 'no drift',
                     f'{f:.1f} -> {la:.1f} ms ({"no drift" if _drift_ok(f, la) else "DRIFT"})'))
    rows.append(('camera stamp -> /emotion', 'messages', '-',
                 f'{len(latencies)} in {run_s / 60:.0f} min'))

    def delta(node, key):
        try:
            return float(last_values[node][key]) - float(first_values[node][key])
        except (KeyError, ValueError):
            return float('nan')
    frames = delta('camera_node', 'frames')
    dropped = delta('face_node', 'frames_dropped')
    processed = delta('face_node', 'frames_processed')
    rows.append(('face_node', 'frames dropped', '-',
                 f'{dropped:.0f} of {frames:.0f} camera frames ({100 * dropped / frames:.2f} %)'
                 if frames == frames and frames > 0 else 'n/a'))
    rows.append(('camera -> face_node', 'frames not processed', '-',
                 f'{frames - processed:.0f} ({100 * (frames - processed) / frames:.2f} %)'
                 if frames == frames and processed == processed and frames > 0 else 'n/a'))
    for name in [s.name for s in specs]:
        seen = levels.get(name)
        if not seen:
            rows.append((f'{name} diagnostics', 'levels seen', 'OK', 'none received'))
            continue
        text = ', '.join(f'{lvl} {seen[lvl]}' for lvl in ('OK', 'WARN', 'ERROR', 'STALE')
                         if seen[lvl])
        if name in worst:
            text += f' (worst: {worst[name][1][:60]})'
        rows.append((f'{name} diagnostics', 'levels seen', 'OK', text))
    rows.append(('health_monitor', 'aggregate levels', 'OK',
                 ', '.join(f'{k} {v}' for k, v in sorted(health_levels.items())) or 'none'))
    rows.append(('health_monitor', 'stale items', 'none',
                 ', '.join(f'{k} ({v}x)' for k, v in stale.most_common()) or 'none'))

    overrides = f', {" ".join(a.set)}' if a.set else ''
    print(f'soak bench ({run_s / 60:.0f} min, looping 12 s clip at 640x480 / 30 fps, '
          f'transport none{overrides}, {os.cpu_count()} CPUs, load average mean '
          f'{np.mean(load) if load else float("nan"):.1f}{", DEAD: " + str(dead) if dead else ""})')
    print_table(rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
