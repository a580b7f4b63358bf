"""The offline replay (`emotion-eval bag`) says what the live robot says.

One short demo bag goes twice through the pipeline: once through the node processes of the robot
graph (face_node, vocal_node, fusion_node over Fast DDS, with the graph's own parameter files and
the shipped bundle), played at real time by `emotion-bag replay --restamp` and recorded with
`emotion-bag record`; once through `OfflinePipeline` (the same objects the nodes build, on the
bag's clock).  Their Emotion estimates are matched by face and stamp and the labels must agree on
at least 95 % of them.  The test also checks that the evaluator never imports rclpy.
"""
from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np

from emotion_training import media
from emotion_training.bag_make import write_clip
from emotion_training.labels import DEFAULT_LABELS

SECONDS, FPS, SIZE = 4.0, 15.0, (320, 240)
START_NS = 1_700_000_000 * 1_000_000_000
NODES = ('face_node', 'vocal_node', 'fusion_node')
MIN_AGREEMENT = 0.95


def test_eval_bag_does_not_import_rclpy():
    code = ('import sys, emotion_training.eval_bag as e\n'
            'assert "rclpy" not in sys.modules, "import"\n'
            'e.load_params([])\n'
            'e.node_params("face_node"); e.node_params("vocal_node")\n'
            'assert "rclpy" not in sys.modules, "parameters"\n'
            'import numpy as np\n'
            'from emotion_runtime.model_bundle import ModelBundle\n'
            'pipe = e.OfflinePipeline(ModelBundle.load(None))\n'
            'pipe.on_image(1, "cam", np.zeros((120, 160, 3), np.uint8))\n'
            'pipe.on_audio(1, "mic", 16000, np.zeros(1600, np.float32))\n'
            'pipe.finish(10**9)\n'
            'assert "rclpy" not in sys.modules, "offline run"\n')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def _match(offline: list, live: list, offset_ns: int) -> list:
    """Pairs (offline, live) of estimates of the same face and stamp, in order of emission
    (a held frame's stamp can come back in several steps)."""
    by_key: dict = {}
    for p in sorted(live, key=lambda p: p.emitted_ns):
        by_key.setdefault((p.face_id, p.stamp_ns - offset_ns), []).append(p)
    pairs = []
    for p in sorted(offline, key=lambda p: p.emitted_ns):
        queue = by_key.get((p.face_id, p.stamp_ns))
        if queue:
            pairs.append((p, queue.pop(0)))
    return pairs


def test_live_graph_and_offline_replay_agree(tmp_path):
    from emotion_bringup.graph import GraphArgs, robot_graph
    from emotion_bringup.graph_runner import GraphRunner, wait_until
    from emotion_runtime.model_bundle import ModelBundle
    from emotion_test_tools.dds import RosHarness, isolated_domain, ros_env
    from emotion_training.bag_io import find_topic, open_bag
    from emotion_training.bag_record import RecordOptions, record
    from emotion_training.eval_bag import (
        OfflinePipeline,
        _read_emotions,
        load_params,
        play,
        read_truth,
        truth_offset,
    )

    bag = tmp_path / 'demo'
    clip = media.demo_source(SECONDS, ('happy', 'sad'), SIZE, FPS, 16000, 'sweep', True)
    write_clip(clip, bag, DEFAULT_LABELS, 'mcap', 20.0, 5.0, START_NS, progress=False,
               raw_images=True)
    specs = [s for s in robot_graph(GraphArgs(transport='none')) if s.name in NODES]
    param_files = list(dict.fromkeys(p for s in specs for p in s.param_files))

    # live: the node processes, the bag played at real time, /emotion recorded
    rec = tmp_path / 'rec'
    with isolated_domain() as domain_id:
        env = ros_env(domain_id)
        with GraphRunner(specs, env=env, log_dir=tmp_path / 'logs') as graph, \
                RosHarness('equivalence_probe') as probe:
            node = probe.node

            def ready() -> bool:
                return (node.count_subscribers('/image_raw') >= 1
                        and node.count_subscribers('/audio') >= 1
                        and node.count_subscribers('/vision/features') >= 1
                        and node.count_subscribers('/voice/features') >= 1
                        and node.count_publishers('/emotion') >= 1)

            assert wait_until(ready, 40), 'graph not up:\n' + graph.logs()
            stop, up = threading.Event(), threading.Event()
            result: dict = {}
            opts = RecordOptions(['/emotion', '/emotion/ground_truth', '/faces'],
                                 {'/emotion': 'emotion_msgs/msg/Emotion',
                                  '/emotion/ground_truth': 'emotion_msgs/msg/Emotion',
                                  '/faces': 'emotion_msgs/msg/FaceArray'})
            recorder = threading.Thread(
                target=lambda: result.update(record(rec, opts, stop=stop, ready=up)), daemon=True)
            recorder.start()
            assert up.wait(20), 'recorder did not start'
            assert wait_until(lambda: node.count_subscribers('/emotion') >= 1, 20)
            replay = subprocess.run(
                [sys.executable, '-m', 'emotion_training.bag_cli', 'replay', str(bag),
                 '--restamp', '--wait-subscribers', '20', '--delay', '1.0'],
                env=env, capture_output=True, text=True, timeout=60)
            assert replay.returncode == 0, replay.stderr
            threading.Event().wait(1.0)         # the last frames' Emotion
            stop.set()
            recorder.join(10)
            assert not graph.dead(), graph.logs()
            logs = graph.logs()
    reader = open_bag(rec)
    try:
        live = _read_emotions(reader, rec, '/emotion')
        live_truth = read_truth(reader, rec)
        faces_seen = result['counts'].get('/faces', 0)
    finally:
        reader.close()

    # offline: emotion-eval bag's pipeline with the same parameter files and bundle
    fusion_cfg, face, vocal = load_params(param_files)
    pipe = OfflinePipeline(ModelBundle.load(None), fusion_cfg, face, vocal)
    reader = open_bag(bag)
    try:
        truth = read_truth(reader, bag)
        play(pipe, reader, bag, find_topic(reader, '/image_raw'), find_topic(reader, '/audio'))
    finally:
        reader.close()
    offline = pipe.preds['fused']

    offset = truth_offset(list(zip(live_truth.stamps, live_truth.labels)),
                          list(zip(truth.stamps, truth.labels)))
    assert offset > 0, 'the replay was not restamped'
    pairs = _match(offline, live, offset)
    matched = len(pairs)
    agreement = sum(a.expression == b.expression for a, b in pairs) / max(1, matched)
    prob_diff = [float(np.abs(np.subtract(a.probabilities, b.probabilities)).max())
                 for a, b in pairs]
    diffs = [(a.face_id, round((a.stamp_ns - START_NS) / 1e9, 3), a.expression, b.expression)
             for a, b in pairs if a.expression != b.expression]
    print(f'\nlive: {len(live)} estimates ({faces_seen} FaceArrays of {pipe.frames} frames); '
          f'offline: {len(offline)}, steps {pipe.step_counts()["fused"]}; matched {matched}, '
          f'label agreement {agreement:.3f}, max |dp| median {np.median(prob_diff or [0]):.2g} '
          f'max {max(prob_diff or [0]):.2g}; differing labels {diffs[:10]}')
    assert matched >= 0.8 * len(offline) and matched >= 30, \
        f'only {matched} of {len(offline)} offline estimates found live\n{logs}'
    assert any(a.modalities == 3 for a, _ in pairs), 'no fused (vision + voice) estimate'
    assert agreement >= MIN_AGREEMENT, diffs
    # The demo face smiles throughout, so labels alone could hardly tell two pipelines apart:
    # the probabilities must agree as well (a frame dropped live under load moves a few).
    close = sum(d <= 0.05 for d in prob_diff) / max(1, matched)
    assert close >= 0.9 and float(np.median(prob_diff)) <= 0.01, \
        f'probabilities differ: {close:.2f} of pairs within 0.05, median {np.median(prob_diff):.2g}'
