"""The offline replay (`emotion-eval bag`) says what the live robot says.

One short demo bag goes twice through the pipeline: once through the node processes of the robot
graph (face_node, vocal_node, fusion_node over Fast DDS, with the graph's own parameter files and
the shipped bundle), played at real time by `emotion-bag replay --restamp` and recorded with
`emotion-bag record`; once through `OfflinePipeline` (the same objects the nodes build, on the
bag's clock, fed the frames whose FaceArray the live face_node published).  Their Emotion
estimates are matched by face and stamp; the labels must agree on at least 95 % of them, and the
probabilities wherever both runs stepped on the same inputs (live timing can hand a frame a newer
voice window or re-step it on the fallback timer).  The test also checks that the evaluator never
imports rclpy.
"""
from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter

import numpy as np

from emotion_fusion.time_alignment import interval_distance_ns
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


class _FramesSeenLive:
    """`OfflinePipeline` fed only the images whose FaceArray the live face_node published.

    Under load the live graph drops frames (the image subscription keeps the newest), and each
    dropped frame changes the tracker's and the LSTM's history of the steps after it.  Feeding the
    offline pipeline the same frames makes both runs see equal inputs whatever the load."""

    def __init__(self, pipe, live_stamps_ms: set):
        self.pipe, self.keep, self.skipped = pipe, live_stamps_ms, 0

    def on_image(self, stamp_ns: int, frame_id: str, bgr):
        ms = stamp_ns // 1_000_000
        if not any(ms + d in self.keep for d in (-1, 0, 1)):
            self.skipped += 1
            return []
        return self.pipe.on_image(stamp_ns, frame_id, bgr)

    def __getattr__(self, name):
        return getattr(self.pipe, name)


class _VoiceChoices:
    """Instruments an offline TimeAligner: which voice window each frame was fused with, and
    when each window became available (bag clock)."""

    def __init__(self, aligner, require_speech: bool):
        self.aligner, self.require_speech = aligner, require_speech
        self.used: dict = {}            # vision stamp -> fused window's stamp (None: none)
        self.windows: list = []         # (stamp, speech, available at)
        choose, add = aligner.voice_for, aligner.add_voice

        def voice_for(vision_stamp_ns, now_ns, require_speech=False):
            f = choose(vision_stamp_ns, now_ns, require_speech)
            if vision_stamp_ns is not None:
                self.used[vision_stamp_ns] = None if f is None else f.stamp_ns
            return f

        def add_voice(feature, now_ns):
            reason = add(feature, now_ns)
            if reason is None:
                self.windows.append((feature.stamp_ns, bool(feature.speech), now_ns))
            return reason

        aligner.voice_for, aligner.add_voice = voice_for, add_voice

    def may_differ(self, stamp_ns: int, latency_ns: int) -> bool:
        """True when the live graph, which fused the frame stamped `stamp_ns` `latency_ns` after
        its stamp, could have had a nearer voice window than the one fused offline at the stamp
        (TimeAligner's rule: nearest within slop, ties to the newest)."""
        if stamp_ns not in self.used:
            return True
        chosen, width, slop = self.used[stamp_ns], self.aligner.voice_window_ns, self.aligner.slop_ns
        best = None if chosen is None else (interval_distance_ns(stamp_ns, chosen, width), -chosen)
        for s, speech, available in self.windows:
            if not stamp_ns < available <= stamp_ns + latency_ns:
                continue
            if self.require_speech and not speech:
                continue
            d = interval_distance_ns(stamp_ns, s, width)
            if d <= slop and (best is None or (d, -s) < best):
                return True
        return False


def _same_inputs(pairs: list, offline: list, live: list, offset_ns: int,
                 voice: _VoiceChoices, settle: int = 3) -> list:
    """Per pair: True where both runs stepped the LSTM on the same inputs.

    Two things the live graph does on its own clock: it fuses a frame when its vision feature
    arrives (after detection and encoding), by when a nearer voice window may have finished, and
    its fallback timer re-steps a held frame at other instants than the bag-clock timer does (a
    frame's stamp comes back in a different number of estimates, or in none).  A face's stamp
    differs when either happened at it; a pair compares equal inputs when neither its stamp nor
    the face's `settle` stamps before it differ (the LSTM forgets within a few steps)."""
    n_off = Counter((p.face_id, p.stamp_ns) for p in offline)
    n_live = Counter((p.face_id, p.stamp_ns - offset_ns) for p in live)
    timeline = sorted(set(n_off) | set(n_live))          # per face, in stamp order
    differs = {k for k in timeline if n_off[k] != n_live[k]}
    differs |= {(a.face_id, a.stamp_ns) for a, b in pairs
                if voice.may_differ(a.stamp_ns, b.emitted_ns - a.stamp_ns - offset_ns)}
    index = {k: i for i, k in enumerate(timeline)}
    out = []
    for a, _ in pairs:
        i = index[(a.face_id, a.stamp_ns)]
        before = [k for k in timeline[max(0, i - settle):i + 1] if k[0] == a.face_id]
        out.append(not differs.intersection(before))
    return out


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
    from emotion_training.bag_io import find_topic, iter_messages, open_bag, stamp_ns
    from emotion_training.bag_record import RecordOptions, record
    from emotion_training.bag_types import typestore
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
            opts = RecordOptions(['/emotion', '/emotion/ground_truth', '/faces'],
                                 {'/emotion': 'emotion_msgs/msg/Emotion',
                                  '/emotion/ground_truth': 'emotion_msgs/msg/Emotion',
                                  '/faces': 'emotion_msgs/msg/FaceArray'})
            recorder = threading.Thread(target=record, args=(rec, opts),
                                        kwargs={'stop': stop, 'ready': up}, daemon=True)
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
        face_stamps = [stamp_ns(typestore().deserialize_cdr(raw, c.msgtype))
                       for c, _, raw in iter_messages(reader, find_topic(reader, '/faces'), rec)]
    finally:
        reader.close()
    reader = open_bag(bag)
    try:
        truth = read_truth(reader, bag)
    finally:
        reader.close()
    offset = truth_offset(list(zip(live_truth.stamps, live_truth.labels)),
                          list(zip(truth.stamps, truth.labels)))
    assert offset > 0, 'the replay was not restamped'
    assert len(face_stamps) >= 0.5 * SECONDS * FPS, \
        f'face_node published {len(face_stamps)} FaceArrays\n{logs}'

    # offline: emotion-eval bag's pipeline with the same parameter files and bundle, fed the
    # frames that the live face_node processed
    fusion_cfg, face, vocal = load_params(param_files)
    pipe = _FramesSeenLive(OfflinePipeline(ModelBundle.load(None), fusion_cfg, face, vocal),
                           {(s - offset) // 1_000_000 for s in face_stamps})
    voice = _VoiceChoices(pipe.engines['fused'].aligner, pipe.engines['fused'].cfg.require_speech)
    reader = open_bag(bag)
    try:
        play(pipe, reader, bag, find_topic(reader, '/image_raw'), find_topic(reader, '/audio'))
    finally:
        reader.close()
    offline = pipe.preds['fused']
    assert pipe.frames == len(face_stamps), \
        f'{pipe.frames} offline frames for {len(face_stamps)} live FaceArrays'
    pairs = _match(offline, live, offset)
    matched = len(pairs)
    comparable = _same_inputs(pairs, offline, live, offset, voice)
    agreement = sum(a.expression == b.expression for a, b in pairs) / max(1, matched)
    prob_diff = [float(np.abs(np.subtract(a.probabilities, b.probabilities)).max())
                 for a, b in pairs]
    diffs = [(a.face_id, round((a.stamp_ns - START_NS) / 1e9, 3), a.expression, b.expression)
             for a, b in pairs if a.expression != b.expression]
    same = [d for d, c in zip(prob_diff, comparable) if c]
    close = sum(d <= 0.05 for d in same) / max(1, len(same))
    print(f'\nlive: {len(live)} estimates ({len(face_stamps)} FaceArrays, '
          f'{pipe.skipped} frames dropped live); '
          f'offline: {len(offline)}, steps {pipe.step_counts()["fused"]}; matched {matched}, '
          f'label agreement {agreement:.3f}, differing labels {diffs[:10]}; '
          f'max |dp| median {np.median(prob_diff or [0]):.2g}; on the {len(same)} pairs stepped on '
          f'the same inputs: {close:.3f} within 0.05, max {max(same or [0]):.2g}')
    assert matched >= 0.8 * len(offline) and matched >= 30, \
        f'only {matched} of {len(offline)} offline estimates found live\n{logs}'
    assert any(a.modalities == 3 for a, _ in pairs), 'no fused (vision + voice) estimate'
    assert agreement >= MIN_AGREEMENT, diffs
    # The demo face smiles throughout, so labels alone could hardly tell two pipelines apart:
    # the probabilities must agree as well: where the inputs were the same, all but a few of them.
    assert len(same) >= 10, f'only {len(same)} of {matched} pairs on the same inputs'
    assert close >= 0.95 and float(np.median(prob_diff)) <= 0.01, \
        f'probabilities differ: {close:.2f} of {len(same)} pairs on the same inputs within 0.05, ' \
        f'median over all {np.median(prob_diff):.2g}'
