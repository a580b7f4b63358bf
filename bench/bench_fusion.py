#!/usr/bin/env python3
"""Bench of the fusion node's hot path (figures are printed, never asserted).

Stages measured:

1. ``fusion_step`` (onnxruntime, ModelBundle.fusion_step) for N faces in one batch, reported as
   ms per face per step (target <= 1 ms).
2. ``FusionEngine.step``: the same plus alignment queries, voice assignment, track bookkeeping and
   hysteresis, ms per face per step.
3. Later input -> Emotion publish, **in process through the node logic**, in both output modes: a
   real ``FusionNode`` (real bundle, real rclpy publishers) is not spun; the bench deserialises the
   later input and calls the node's callbacks; timed from before deserialisation to the return of
   the last ``publish`` (one Emotion per face, 2 faces).  p95 target <= 5 ms.
   * timer only (``step_on_vision: false``): the later input is the voice window (sent after both
     faces' vision features); its callback, then the output-step (timer) callback.
   * ``step_on_vision`` (default): the later input is f1's frame (after the voice window and f2's
     previous frame); its vision callback alone fuses and publishes.  The node runs on simulated
     time advanced 34 ms per step (> 1 / max_step_rate_hz), so every f1 frame triggers a step.
   This is compute only: it excludes DDS transport and any wait for a step (stage 4).
4. Frame arrival -> its Emotion publish, scheduling wait only, both modes: the same node callbacks
   on simulated time, driven by a simulated 30 fps camera with 2 faces (one feature message per
   face per frame, f1 first, +-3 ms arrival jitter), voice windows at 2 Hz, the output_rate_hz
   timer (random phase per run, 20 runs of 2 s) and the deferred one-shot fired at their due
   times; timer only, step_on_vision with the default max_step_rate_hz 30 and with 45.  Per face,
   the simulated time from a frame's arrival to the first Emotion carrying its stamp; frames no
   step used (superseded by a newer frame first) are counted as unused.  Add stage 3 for compute.
5. With ``--dds``: over real DDS (node process + in-process publisher/subscriber, loopback only),
   in both modes: the voice window, then both faces' frames (~30 Hz); from publishing f1's frame
   (the later input) to receiving the f1 Emotion carrying its stamp.  Frames that no step used (a
   newer frame arrived before the step) have no sample.  Informative, not held to the 5 ms target.

The bundle: ``--bundle PATH``; by default a random-weight bundle whose fusion step has the
production fusion head's structure (LayerNorm, presence masks, linear + ReLU, one LSTM step,
head, softmax, valence/arousal) and sizes (embeddings 128, hidden 64, 1 layer), written without
torch by emotion_test_tools.tiny_bundle, so the figures do not depend on a trained bundle being
present nor on the training package.

    source scripts/env.sh && python bench/bench_fusion.py [--faces 1,2,4,8] [--steps 300] [--dds]
"""
from __future__ import annotations

import argparse
import heapq
import os
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np
import rclpy
from builtin_interfaces.msg import Time as TimeMsg
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message, serialize_message
from rclpy.time import Time

from emotion_fusion.config import FusionConfig
from emotion_fusion.features import MODALITY_VISION, MODALITY_VOICE, Feature
from emotion_fusion.fusion_engine import FusionEngine
from emotion_fusion.fusion_node import FusionNode
from emotion_msgs.msg import Emotion, EmotionFeature
from emotion_runtime.model_bundle import ModelBundle
from emotion_runtime.node_kit import bring_up
from emotion_test_tools.dds import NodeProcess, RosHarness, isolated_domain, ros_env

NS = 1_000_000_000


def production_sized_bundle(out: pathlib.Path) -> pathlib.Path:
    """Tiny encoders, production-sized fusion head (what the step time depends on)."""
    from emotion_test_tools.tiny_bundle import make_tiny_bundle  # noqa: PLC0415 - default only
    return make_tiny_bundle(out, seed=0, embedding_size=128, hidden_size=64,
                            version='0.0.0-bench')


def pct(values, q):
    return float(np.percentile(np.asarray(values, float), q)) if values else float('nan')


def bench_fusion_step(bundle, faces, steps):
    rows = {}
    rng = np.random.default_rng(0)
    for n in faces:
        ve = rng.standard_normal((n, bundle.vision_embedding_size)).astype(np.float32)
        ae = rng.standard_normal((n, bundle.voice_embedding_size)).astype(np.float32)
        vp = np.ones(n, np.float32)
        ap = np.zeros(n, np.float32)
        ap[0] = 1.0
        h, c = bundle.initial_state(n)
        for _ in range(20):
            bundle.fusion_step(ve, vp, ae, ap, h, c)
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            _, _, h, c = bundle.fusion_step(ve, vp, ae, ap, h, c)
            times.append((time.perf_counter() - t0) * 1e3 / n)
        rows[n] = times
    return rows


def bench_engine(bundle, faces, steps):
    rng = np.random.default_rng(1)
    rows = {}
    for n in faces:
        eng = FusionEngine(FusionConfig(max_tracks=max(8, n), voice_assignment='all'), bundle,
                           voice_window_s=bundle.window_seconds)
        embs = rng.standard_normal((n, bundle.vision_embedding_size)).astype(np.float32)
        voice = rng.standard_normal(bundle.voice_embedding_size).astype(np.float32)
        t = 100 * NS
        times = []
        for k in range(steps + 20):
            t += NS // 10
            for i in range(n):
                eng.add_vision(Feature(t, f'f{i}', MODALITY_VISION, embs[i]), t)
            eng.add_voice(Feature(t, 'voice', MODALITY_VOICE, voice), t)
            t0 = time.perf_counter()
            res = eng.step(t)
            dt = (time.perf_counter() - t0) * 1e3 / n
            assert len(res.estimates) == n
            if k >= 20:
                times.append(dt)
        rows[n] = times
    return rows


def _feature_msg(stamp_ns, sid, modality, emb):
    m = EmotionFeature()
    m.header.stamp = TimeMsg(sec=stamp_ns // NS, nanosec=stamp_ns % NS)
    m.source_id, m.modality, m.embedding, m.speech = sid, modality, emb, True
    return m


def _node(ctx, bundle_path, **params):
    params = dict(model_bundle=str(bundle_path), voice_assignment='all', output_rate_hz=10.0,
                  **params)
    return bring_up(FusionNode(context=ctx, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()]))   # lifecycle: configure + activate


def _set_time(node, ns):
    clock = node.get_clock()
    clock.set_ros_time_override(Time(nanoseconds=ns, clock_type=clock.clock_type))


def _counting_node(bundle_path, **node_kwargs):
    """A fusion node in its own context whose Emotion publishes are counted, plus two face
    embeddings and one voice embedding of the bundle's sizes (fixed seed)."""
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = _node(ctx, bundle_path, **node_kwargs)
    b = ModelBundle.load(bundle_path)
    rng = np.random.default_rng(2)
    v = rng.standard_normal((2, b.vision_embedding_size)).astype(np.float32)
    a = rng.standard_normal(b.voice_embedding_size).astype(np.float32)
    published = [0]
    orig = node.emotion_pub.publish

    def counting_publish(m):
        published[0] += 1
        orig(m)
    node.emotion_pub.publish = counting_publish
    return ctx, node, v, a, published


def bench_node_inprocess(bundle_path, steps):
    """Timer-only mode: the later input is the voice window, then the timer callback."""
    ctx, node, v, a, published = _counting_node(bundle_path, step_on_vision=False)
    msg = _feature_msg
    times = []
    try:
        for k in range(steps + 20):
            now = node.get_clock().now().nanoseconds
            node._on_vision(msg(now - 2_000_000, 'f1', 1, v[0]))
            node._on_vision(msg(now - 2_000_000, 'f2', 1, v[1]))
            raw = serialize_message(msg(now - 1_000_000, 'voice', 2, a))
            before = published[0]
            t0 = time.perf_counter()
            node._on_voice(deserialize_message(raw, EmotionFeature))
            node._on_step()
            dt = (time.perf_counter() - t0) * 1e3
            assert published[0] - before == 2, 'expected one Emotion per face'
            if k >= 20:
                times.append(dt)
            time.sleep(0.002)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    return times


def bench_node_inprocess_on_vision(bundle_path, steps):
    """step_on_vision mode: the later input is f1's frame; its vision callback publishes."""
    ctx, node, v, a, published = _counting_node(bundle_path, step_on_vision=True,
                                                use_sim_time=True)
    times = []
    t = 1000 * NS
    try:
        for k in range(steps + 20):
            t += 34_000_000            # > 1 / max_step_rate_hz (33.3 ms): f1 steps at once
            _set_time(node, t)
            node._on_voice(_feature_msg(t - 3_000_000, 'voice', 2, a))
            raw = serialize_message(_feature_msg(t - 1_000_000, 'f1', 1, v[0]))
            before = published[0]
            t0 = time.perf_counter()
            node._on_vision(deserialize_message(raw, EmotionFeature))
            dt = (time.perf_counter() - t0) * 1e3
            got = published[0] - before
            # f2's frame of this camera frame: within the spacing, deferred to the next step
            node._on_vision(_feature_msg(t - 1_000_000, 'f2', 1, v[1]))
            if k == 0:
                continue                # f2 not seen yet: one face only
            assert got == 2, f'expected one Emotion per face, got {got}'
            if k >= 20:
                times.append(dt)
            time.sleep(0.002)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    return times


def bench_schedule_sim(bundle_path, step_on_vision, faces=2, max_step_rate_hz=30.0, runs=20,
                       seconds=2.0, fps=30.0, jitter_ms=3.0, seed=4):
    """Frame arrival -> first Emotion with its stamp, per face, simulated time (see docstring).

    ``runs`` runs of ``seconds`` each, each with a new node and a random phase of the
    output_rate_hz timer relative to the camera (the tick wait depends on it).
    """
    b = ModelBundle.load(bundle_path)
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((faces, b.vision_embedding_size)).astype(np.float32)
    a = rng.standard_normal(b.voice_embedding_size).astype(np.float32)
    ids = [f'f{i + 1}' for i in range(faces)]
    lat: dict[str, list] = {fid: [] for fid in ids}
    missed = {fid: 0 for fid in ids}
    total = {fid: 0 for fid in ids}
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        for _ in range(runs):
            node = _node(ctx, bundle_path, step_on_vision=step_on_vision, use_sim_time=True,
                         max_step_rate_hz=max_step_rate_hz)
            now = [0]
            first_pub: dict[tuple[str, int], int] = {}

            def capture(m, first_pub=first_pub, now=now):
                key = (m.face_id, m.header.stamp.sec * NS + m.header.stamp.nanosec)
                first_pub.setdefault(key, now[0])
            node.emotion_pub.publish = capture
            t0 = 1000 * NS
            events: list = []      # (time, order, kind, payload)

            def push(t, kind, payload=None, events=events):
                heapq.heappush(events, (t, len(events) + 10 * t, kind, payload))
            arrivals: dict[tuple[str, int], int] = {}
            for k in range(int(seconds * fps)):
                stamp = t0 + int(k * NS / fps)
                # camera + face pipeline delay 15 ms +- jitter, one message per face, f1 first
                arrive = stamp + 15_000_000 + int(rng.uniform(-jitter_ms, jitter_ms) * 1e6)
                for i, fid in enumerate(ids):
                    push(arrive + i * 200_000, 'vision', (fid, stamp, i))
                    arrivals[(fid, stamp)] = arrive + i * 200_000
            for k in range(int(seconds * 2)):
                stamp = t0 + k * NS // 2
                push(stamp + NS, 'voice', stamp)       # a 1 s window arrives after its end
            tick = int(NS / node.cfg.output_rate_hz)
            phase = int(rng.uniform(0, tick))
            for k in range(int(seconds * node.cfg.output_rate_hz)):
                push(t0 + phase + k * tick, 'timer')
            deferred_at = None
            while events:
                t, _, kind, payload = heapq.heappop(events)
                now[0] = t
                _set_time(node, t)
                if kind == 'vision':
                    fid, stamp, i = payload
                    node._on_vision(_feature_msg(stamp, fid, 1, v[i]))
                elif kind == 'voice':
                    node._on_voice(_feature_msg(payload, 'voice', 2, a))
                elif kind == 'timer':
                    node._on_step()
                elif kind == 'deferred':
                    if deferred_at != t:
                        continue
                    deferred_at = None
                    node._on_deferred_step()
                timer = node._deferred_timer
                if timer is not None and not timer.is_canceled() and deferred_at is None:
                    deferred_at = t + timer.timer_period_ns
                    push(deferred_at, 'deferred')
            node.destroy_node()
            for key, arr in arrivals.items():
                total[key[0]] += 1
                if key in first_pub:
                    lat[key[0]].append((first_pub[key] - arr) / 1e6)
                else:
                    missed[key[0]] += 1
    finally:
        rclpy.shutdown(context=ctx)
    return {fid: (lat[fid], missed[fid], total[fid]) for fid in ids}


def bench_dds(bundle_path, seconds, step_on_vision, max_step_rate_hz=30.0):
    rng = np.random.default_rng(3)
    with isolated_domain() as domain:
        node = NodeProcess('emotion_fusion', 'fusion_node', env=ros_env(domain), params=dict(
            model_bundle=str(bundle_path), voice_assignment='all', output_rate_hz=10.0,
            step_on_vision=step_on_vision, max_step_rate_hz=max_step_rate_hz))
        try:
            with RosHarness('bench_fusion') as ros:
                sent: dict[int, float] = {}
                got: list[float] = []

                def on_emotion(m):
                    ns = m.header.stamp.sec * NS + m.header.stamp.nanosec
                    if m.face_id == 'f1' and ns in sent and m.modalities == 3:
                        got.append((time.perf_counter() - sent.pop(ns)) * 1e3)
                ros.node.create_subscription(Emotion, 'emotion', on_emotion,
                                             QoSProfile(depth=100,
                                                        reliability=ReliabilityPolicy.RELIABLE))
                vis = ros.publisher(EmotionFeature, 'vision/features', qos_profile_sensor_data)
                voi = ros.publisher(EmotionFeature, 'voice/features', qos_profile_sensor_data)
                if not ros.wait_for_subscribers(voi, timeout=30):
                    raise RuntimeError('fusion_node did not subscribe:\n' + node.output())
                ve = rng.standard_normal(ModelBundle.load(bundle_path).vision_embedding_size
                                         ).astype(np.float32)
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    now = time.time_ns()
                    # the voice window [now - 1 s, now] first, then both faces' frames (the
                    # later input); the Emotion of f1 carries the frame's stamp
                    for sid, mod, t_ns in (('voice', 2, now - NS), ('f1', 1, now - 1_000_000),
                                           ('f2', 1, now - 1_000_000)):
                        m = EmotionFeature()
                        m.header.stamp = TimeMsg(sec=t_ns // NS, nanosec=t_ns % NS)
                        m.source_id, m.modality, m.speech = sid, mod, True
                        m.embedding = ve
                        if sid == 'f1':
                            sent[t_ns] = time.perf_counter()
                        (vis if mod == 1 else voi).publish(m)
                    time.sleep(0.033)
                time.sleep(0.3)
        finally:
            node.close()
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--bundle', default='', help='bundle directory (default: production-sized '
                    'random bundle in a temp dir)')
    ap.add_argument('--faces', default='1,2,4,8')
    ap.add_argument('--steps', type=int, default=300)
    ap.add_argument('--dds', action='store_true', help='also measure over DDS (needs colcon build)')
    ap.add_argument('--dds-seconds', type=float, default=8.0)
    ap.add_argument('--dds-max-step-rate', type=float, default=30.0,
                    help='max_step_rate_hz of the step_on_vision DDS run (default 30 = default)')
    args = ap.parse_args()
    faces = [int(x) for x in args.faces.split(',')]

    tmp = tempfile.TemporaryDirectory(prefix='bench_fusion_')
    path = pathlib.Path(args.bundle) if args.bundle else production_sized_bundle(
        pathlib.Path(tmp.name) / 'bundle')
    bundle = ModelBundle.load(path, threads=1)
    print(f'bundle: {path}  (vision emb {bundle.vision_embedding_size}, voice emb '
          f'{bundle.voice_embedding_size}, hidden {bundle.hidden_size}, layers '
          f'{bundle.num_layers}, labels {len(bundle.labels)}); onnxruntime threads 1; '
          f'{os.cpu_count()} CPUs; load avg {os.getloadavg()[0]:.2f}')

    step = bench_fusion_step(bundle, faces, args.steps)
    eng = bench_engine(bundle, faces, args.steps)
    node = bench_node_inprocess(path, args.steps)
    node_v = bench_node_inprocess_on_vision(path, args.steps)
    sims = {'timer only 10 Hz': bench_schedule_sim(path, False),
            'step_on_vision, max 30 Hz': bench_schedule_sim(path, True),
            'step_on_vision, max 45 Hz': bench_schedule_sim(path, True, max_step_rate_hz=45.0)}
    table = []
    for n in faces:
        table.append((f'fusion_step (ONNX), {n} face(s), ms/face/step',
                      f'median {statistics.median(step[n]):.3f}, p95 {pct(step[n], 95):.3f}',
                      '<= 1 ms', 'ok' if statistics.median(step[n]) <= 1.0 else 'OVER'))
    for n in faces:
        table.append((f'engine.step (align+tracks+hysteresis+ONNX), {n} face(s), ms/face/step',
                      f'median {statistics.median(eng[n]):.3f}, p95 {pct(eng[n], 95):.3f}',
                      '-', ''))
    for label, t in (('timer only: voice cb + timer cb', node),
                     ('step_on_vision: f1 vision cb', node_v)):
        table.append((f'later input -> Emotion publish, in-process, 2 faces, {label}, ms',
                      f'p50 {pct(t, 50):.3f}, p95 {pct(t, 95):.3f}, max {max(t):.3f}',
                      'p95 <= 5 ms', 'ok' if pct(t, 95) <= 5.0 else 'OVER'))
    for name, res in sims.items():
        for fid, (lat, missed, n) in res.items():
            table.append((f'frame arrival -> its Emotion, sim 30 fps, {name}, {fid}, wait ms',
                          f'p50 {pct(lat, 50):.1f}, p95 {pct(lat, 95):.1f}, unused {missed}/{n}',
                          'info', ''))
    if args.dds:
        for mode in (False, True):
            name = (f'step_on_vision max {args.dds_max_step_rate:g} Hz' if mode
                    else 'timer only 10 Hz')
            dds = bench_dds(path, args.dds_seconds, mode, args.dds_max_step_rate)
            if dds:
                table.append((f'f1 frame publish -> its Emotion received, DDS, {name}, '
                              f'n={len(dds)}, ms',
                              f'p50 {pct(dds, 50):.1f}, p95 {pct(dds, 95):.1f}',
                              'info (incl. step wait)', ''))
            else:
                table.append((f'f1 frame publish -> its Emotion received, DDS, {name}',
                              'no samples', '', ''))
    w = max(len(r[0]) for r in table)
    print(f'\n{"stage":<{w}}  {"measured":<40} {"target":<14} ')
    print('-' * (w + 62))
    for stage, fig, target, verdict in table:
        print(f'{stage:<{w}}  {fig:<40} {target:<14} {verdict}')
    tmp.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
