"""Live-graph benchmark: camera stamp -> /emotion latency at 30 fps, and the graph's memory.

Runs robot.launch.py's graph (robot_graph) as separate processes on a generated clip (the demo's
sample: a real face photo moving across a 640x480 frame at 30 fps, espeak-ng speech), with
transport none, and measures
  - latency: receive time of each /emotion message minus its header stamp (which is the capture
    stamp of the newest camera frame or audio window that contributed);
  - memory: the summed resident set size (RSS) of every node process, sampled each second.
Printed, never asserted. Run inside a network namespace holding only `lo` (bench/run_all.py and
`make bench` do that).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from table import print_table  # bench/table.py (scripts run from bench/)

from emotion_bringup.demo import make_sample
from emotion_bringup.graph import GraphArgs, robot_graph
from emotion_bringup.graph_runner import GraphRunner, wait_until
from emotion_msgs.msg import Emotion
from emotion_test_tools.dds import RosHarness, isolated_domain, ros_env


def rss_mb(pid: int) -> float:
    """Resident set size of one process and all of its children, in MB."""
    total = 0.0
    pids = [pid]
    try:
        children = Path(f'/proc/{pid}/task/{pid}/children').read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f'/proc/{p}/status').read_text().splitlines():
                if line.startswith('VmRSS:'):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seconds', type=float, default=20.0, help='measurement time (default 20)')
    ap.add_argument('--warmup', type=float, default=8.0, help='ignored start-up time (default 8)')
    ap.add_argument('--model-bundle', default='', help="'' = the shipped bundle")
    a = ap.parse_args(argv)

    # the generated clip and the node logs (~0.3 GB) go when the run ends
    with tempfile.TemporaryDirectory(prefix='bench_system_') as tmp_name:
        tmp = Path(tmp_name)
        video, wav, _bag, _clip, _start = make_sample(tmp, 12.0,
                                                      ['happy', 'neutral', 'sad', 'angry'])
        args = GraphArgs(camera=str(video), audio_file=str(wav), transport='none',
                         model_bundle=a.model_bundle)
        latencies: list = []
        memory: list = []
        with isolated_domain() as domain_id:
            with GraphRunner(robot_graph(args), env=ros_env(domain_id),
                             log_dir=tmp / 'logs') as g, \
                    RosHarness('bench_system') as ros:
                clock = ros.node.get_clock()
                measuring = [False]

                def on_emotion(msg: Emotion) -> None:
                    if measuring[0] and msg.face_id != 'voice':
                        stamp = msg.header.stamp.sec * 1e9 + msg.header.stamp.nanosec
                        latencies.append((clock.now().nanoseconds - stamp) / 1e6)
                ros.node.create_subscription(Emotion, 'emotion', on_emotion, 50)
                wait_until(lambda: False, a.warmup)
                measuring[0] = True
                end = time.monotonic() + a.seconds
                while time.monotonic() < end:
                    memory.append(sum(rss_mb(n.proc.pid) for n in g.nodes.values() if n.alive()))
                    time.sleep(1.0)
                dead = g.dead()
                n_nodes = len(g.nodes)
    lat = np.array(latencies) if latencies else np.array([np.nan])
    rows = [
        ('camera stamp -> /emotion', 'latency p50', '-', f'{np.percentile(lat, 50):.1f} ms'),
        ('camera stamp -> /emotion', 'latency p95', '<= 40 ms', f'{np.percentile(lat, 95):.1f} ms'),
        ('camera stamp -> /emotion', 'messages', '-', f'{len(latencies)} in {a.seconds:.0f} s'),
        (f'graph ({n_nodes} node processes)', 'total RSS max', '<= 1.5 GB',
         f'{max(memory) / 1024:.2f} GB' if memory else 'n/a'),
    ]
    print(f'live graph bench (640x480 at 30 fps, transport none{", DEAD: " + str(dead) if dead else ""})')
    print_table(rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
