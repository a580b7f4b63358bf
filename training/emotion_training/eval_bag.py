"""`emotion-eval bag`: score the emotion pipeline on a bag against its ground truth.

offline: the perception + fusion pipeline runs in this process on the bag's image_raw and audio,
         in header-stamp order on a virtual clock (the stamps), so a run is deterministic and
         needs no DDS (nor rclpy).  It runs the nodes' own objects, built by the same builders
         from the same parameter values: ``build_face_pipeline`` (face_node; the background
         whole-frame scan runs without its thread, its faces handed to the next frame as the node
         does when its worker keeps up), ``build_voice_pipeline``
         (vocal_node) and ``FusionRunner`` (fusion_node: engine + step schedule, driven at the
         times the node's timers would fire).  Parameter values come from the rclpy-free spec
         tables (emotion_perception.node_params, emotion_fusion.config), the packages' default
         YAML files and --params, as the nodes get them.  Three runners see the same features:
         fused, vision only and voice only (the ablation); the encoders' own classifier heads
         are scored as well.
live:    a bag recorded from a running graph (`emotion-bag record` of /emotion and
         /emotion/ground_truth while `emotion-bag replay --restamp` plays an evaluation bag) is
         scored as published; latency = receive (log) time - header stamp.

Why two modes: offline answers "how good is the model + fusion logic" reproducibly; live answers
"what does the robot really publish, and how late".  Both score every Emotion estimate against
the ground-truth label at the estimate's stamp, and write the same report.
"""
from __future__ import annotations

import argparse
import bisect
import dataclasses
import heapq
import json
import logging
import pathlib
import sys
import time
from typing import Any, Iterator, Optional, Sequence

import numpy as np
from tqdm import tqdm

from emotion_fusion.config import FusionConfig
from emotion_fusion.features import MODALITY_VISION, MODALITY_VOICE, Feature
from emotion_fusion.fusion_engine import FaceBox
from emotion_fusion.fusion_runner import FusionRunner
from emotion_perception import node_params as param_tables
from emotion_perception.audio_format import decode_pcm, to_mono
from emotion_runtime.params import validate

from .bag_io import (
    BagError,
    decode_image,
    find_topic,
    image_connections,
    iter_messages,
    open_bag,
    require_topics,
    stamp_ns,
)
from .bag_types import typestore
from .metrics import summarise

log = logging.getLogger('emotion_eval')

IMAGE_TOPIC, AUDIO_TOPIC = '/image_raw', '/audio'
TRUTH_TOPIC, EMOTION_TOPIC, FACES_TOPIC = '/emotion/ground_truth', '/emotion', '/faces'
NS = 1_000_000_000


# --------------------------------------------------------------------------- ground truth
class Truth:
    """Ground-truth labels over time: the label of the newest truth message at or before t.

    A truth sample holds for at most `max_gap_ns` (a bag whose truth stops does not extend its
    last label forever); estimates outside that are not scored and counted as `unscored`.
    """

    def __init__(self, samples: Sequence[tuple[int, str]], max_gap_ns: int) -> None:
        samples = sorted(samples)
        self.stamps = [s for s, _ in samples]
        self.labels = [lab for _, lab in samples]
        self.max_gap_ns = max_gap_ns

    def __len__(self) -> int:
        return len(self.stamps)

    def at(self, t_ns: int) -> Optional[str]:
        i = bisect.bisect_right(self.stamps, t_ns) - 1
        if i < 0 or t_ns - self.stamps[i] > self.max_gap_ns:
            return None
        return self.labels[i] or None

    def segments(self) -> list[tuple[int, int, str]]:
        """Runs of one label as (start_ns, end_ns, label), for plots."""
        out: list[list] = []
        for s, lab in zip(self.stamps, self.labels):
            if out and out[-1][2] == lab and s - out[-1][1] <= self.max_gap_ns:
                out[-1][1] = s
            else:
                out.append([s, s, lab])
        return [(a, b, lab) for a, b, lab in out]


def read_truth(reader: Any, path: Any, topic: str = TRUTH_TOPIC) -> Truth:
    """All ground-truth Emotion messages of the bag (BagError when the topic is absent/empty)."""
    conns = require_topics(reader, [topic], path)[topic]
    samples = []
    for conn, _, raw in iter_messages(reader, conns, path):
        msg = typestore().deserialize_cdr(raw, conn.msgtype)
        samples.append((stamp_ns(msg), str(msg.expression)))
    if not samples:
        raise BagError(f'bag {path}: ground-truth topic {topic} has no messages')
    stamps = sorted(s for s, _ in samples)
    gaps = np.diff(stamps) if len(stamps) > 1 else np.array([NS // 2])
    period = float(np.median(gaps)) if gaps.size else NS / 2
    return Truth(samples, max_gap_ns=int(max(2.5 * period, 0.6 * NS)))


# --------------------------------------------------------------------------- predictions
@dataclasses.dataclass
class Prediction:
    """One published (or simulated) Emotion: what was said about which face and when."""

    stamp_ns: int          # header stamp (newest contributing input)
    face_id: str
    expression: str
    confidence: float
    modalities: int
    probabilities: Optional[list] = None
    emitted_ns: int = 0    # step time (offline) or receive time (live)
    truth: Optional[str] = None


def score(preds: Sequence[Prediction], truth: Truth, labels: Sequence[str]) -> dict:
    """Accuracy, UAR, macro-F1 and confusion of predictions whose truth is known and in `labels`."""
    idx = {lab: i for i, lab in enumerate(labels)}
    y_t, y_p = [], []
    unscored = outside = 0
    for p in preds:
        p.truth = truth.at(p.stamp_ns)
        if p.truth is None:
            unscored += 1
            continue
        if p.truth not in idx or p.expression not in idx:
            outside += 1
            continue
        y_t.append(idx[p.truth])
        y_p.append(idx[p.expression])
    out = summarise(y_t, y_p, list(labels))
    out['unscored'] = unscored
    out['outside_labels'] = outside
    return out


def coverage(preds: Sequence[Prediction], truth: Truth, window_ns: int = NS // 2) -> float:
    """Fraction of truth samples with at least one prediction stamped within `window_ns` before.

    Why: a pipeline that publishes nothing for half the clip would otherwise look as accurate as
    one that publishes all the time.
    """
    if not len(truth):
        return 0.0
    stamps = sorted(p.stamp_ns for p in preds)
    hit = 0
    for t in truth.stamps:
        i = bisect.bisect_right(stamps, t) - 1
        if i >= 0 and t - stamps[i] <= window_ns:
            hit += 1
    return hit / len(truth)


def follow_times(preds: Sequence[Prediction], truth: Truth) -> dict:
    """How long the published label takes to follow a change of the true label.

    A change is a ground-truth sample whose label differs from the previous sample's (no longer
    apart than the truth's `max_gap_ns`); its time is that sample's stamp.  Its follow time is
    the publish time (``emitted_ns``; the stamp where that is 0) of the first estimate, of any
    face, published at or after the change that says the new label, minus the change time.  A
    change that no estimate follows before the next change (or the end of the truth) counts in
    `changes` but not in `followed` and has no time.  Returns changes, followed, median_s, p90_s.
    """
    changes = []
    for i in range(1, len(truth.stamps)):
        a, b = truth.labels[i - 1], truth.labels[i]
        if b and a != b and truth.stamps[i] - truth.stamps[i - 1] <= truth.max_gap_ns:
            changes.append((truth.stamps[i], b))
    events = sorted((p.emitted_ns or p.stamp_ns, p.expression) for p in preds)
    times = [e for e, _ in events]
    end_of_truth = truth.stamps[-1] + truth.max_gap_ns if len(truth) else 0
    values = []
    for k, (tc, lab) in enumerate(changes):
        end = changes[k + 1][0] if k + 1 < len(changes) else end_of_truth
        i = bisect.bisect_left(times, tc)
        while i < len(events) and events[i][0] < end:
            if events[i][1] == lab:
                values.append((events[i][0] - tc) / NS)
                break
            i += 1
    v = np.asarray(values, np.float64)
    return {'changes': len(changes), 'followed': int(v.size),
            'median_s': round(float(np.median(v)), 3) if v.size else None,
            'p90_s': round(float(np.percentile(v, 90)), 3) if v.size else None}


def latency_stats(values_ms: Sequence[float]) -> dict:
    """n, mean, p50, p95, max of a list of milliseconds (empty -> n = 0 only)."""
    v = np.asarray([x for x in values_ms if np.isfinite(x)], np.float64)
    if v.size == 0:
        return {'n': 0}
    return {'n': int(v.size), 'mean': round(float(v.mean()), 3),
            'p50': round(float(np.percentile(v, 50)), 3),
            'p95': round(float(np.percentile(v, 95)), 3), 'max': round(float(v.max()), 3)}


# --------------------------------------------------------------------------- bag reading
def ordered(reader: Any, conns: list, path: Any, reorder_ns: int = NS // 2
            ) -> Iterator[tuple[int, int, Any, Any]]:
    """(header stamp ns, log time ns, connection, decoded msg) in header-stamp order.

    A bag is stored in log-time (receive) order; images and audio chunks of a recorded bag can be
    a few ms out of stamp order.  A heap holding `reorder_ns` of log time restores stamp order so
    the virtual clock never runs backwards.
    """
    ts = typestore()
    heap: list = []
    seq = 0
    for conn, t_log, raw in iter_messages(reader, conns, path):
        try:
            msg = ts.deserialize_cdr(raw, conn.msgtype)
        except Exception as exc:  # noqa: BLE001
            raise BagError(f'bag {path}: a {conn.msgtype} message on {conn.topic} does not '
                           f'decode: {exc}') from exc
        heapq.heappush(heap, (stamp_ns(msg), seq, t_log, conn, msg))
        seq += 1
        while heap and heap[0][0] < t_log - reorder_ns:
            s, _, tl, c, m = heapq.heappop(heap)
            yield s, tl, c, m
    while heap:
        s, _, tl, c, m = heapq.heappop(heap)
        yield s, tl, c, m


def image_fps(reader: Any, conns: list) -> float:
    """Frame rate from the image count and the bag's image time span (30 when unknown)."""
    n = sum(c.msgcount for c in conns)
    span = (reader.end_time - reader.start_time) / NS
    return float(np.clip((n - 1) / span, 1.0, 120.0)) if n > 1 and span > 0 else 30.0


# --------------------------------------------------------------------------- offline pipeline
@dataclasses.dataclass
class FrameOverlay:
    """What the annotated video shows for one frame."""

    stamp_ns: int
    boxes: list            # [(face_id, x, y, w, h)]
    pred: Optional[Prediction]
    truth: Optional[str]


class OfflinePipeline:
    """The nodes' own objects on a virtual clock (header stamps), in one process.

    What runs is what the nodes build from the same parameter values: ``build_face_pipeline``
    (face_node; ``scan_thread=False``: the background whole-frame scan runs at once and its faces
    are handed to the next frame, so a replay is reproducible), ``build_voice_pipeline``
    (vocal_node) and
    ``emotion_fusion.fusion_runner.FusionRunner`` (fusion_node: engine, step schedule, deferred
    steps, removed tracks).  This class only plays the clock and the transport:

    * an image is processed when it "arrives" (now = its stamp) and yields one vision feature per
      tracked face, given to the runners one at a time in track order (the node receives one
      message per face), with the frame's boxes as the ``faces`` message;
    * an audio chunk is pushed at its END time (a window is complete only once its last sample
      was captured): ``on_audio`` queues it as an event at that time, so the clock never runs
      backwards (a chunk stamped before an image but ending after it is pushed after it);
    * the runners' timer entry points are called at the times fusion_node's timers would fire:
      ``on_timer`` every ``timer_period_ns`` from the first input's stamp, ``on_deferred`` at each
      runner's ``deferred_due_ns``.

    Three runners see the same features: fused, vision_only and voice_only (the ablation).
    Inputs must come in header-stamp order (``ordered``); each input first runs every event due
    at or before its stamp (``advance``: at one instant the timer tick first, then one-shots, then
    queued audio, then the input, as a node's input arrives a little after its stamp); ``finish``
    runs the rest.  ``steps`` logs every step per runner as (time, 'vision' | 'deferred' |
    'timer').
    """

    NAMES = ('fused', 'vision_only', 'voice_only')

    def __init__(self, bundle: Any, fusion_cfg: Any = None,
                 face_params: Optional[dict] = None, vocal_params: Optional[dict] = None) -> None:
        from emotion_perception.vision_pipeline import build_face_pipeline  # noqa: PLC0415 - cv2, onnxruntime: offline run only
        from emotion_perception.voice_pipeline import build_voice_pipeline  # noqa: PLC0415 - onnxruntime: offline run only
        self.bundle = bundle
        self.cfg = fusion_cfg or FusionConfig()
        fp = node_params('face_node', face_params)
        vp = node_params('vocal_node', vocal_params)
        self.params = {'face_node': fp, 'vocal_node': vp}
        self.faces = build_face_pipeline(fp, bundle, scan_thread=False)
        self.voice = build_voice_pipeline(vp, bundle)
        self.runners = {name: FusionRunner(self.cfg, bundle, voice_window_s=bundle.window_seconds)
                        for name in self.NAMES}
        self.engines = {name: r.engine for name, r in self.runners.items()}
        self.preds: dict[str, list[Prediction]] = {k: [] for k in self.NAMES}
        self.latest: dict[str, Prediction] = {}       # fused, per face id
        self.period_ns = self.runners['fused'].timer_period_ns
        self.next_tick: Optional[int] = None          # the fallback timer's next tick
        self.steps: dict[str, list[tuple[int, str]]] = {name: [] for name in self.NAMES}
        self._audio_q: list = []        # (end, seq, stamp, frame_id, rate, mono): pushed at end
        self._seq = 0
        self.vision_head: list[tuple[int, str]] = []  # (stamp, argmax label) per face per frame
        self.voice_head: list[tuple[int, str]] = []   # (window centre stamp, label) speech only
        self.frame_ms: list[float] = []
        self.window_ms: list[float] = []
        self.step_ms: list[float] = []
        self.output_age_ms: list[float] = []
        self.voice_windows = self.speech_windows = 0
        self.faces_seen = 0
        self.frames_with_face = 0
        self.frames = 0

    def advance(self, now_ns: int) -> None:
        """Run every event due at or before `now_ns` in time order: timer ticks, one-shots and
        queued audio chunks, in that order at one instant."""
        if self.next_tick is None:
            self.next_tick = now_ns
        while True:
            t, name = self.next_tick, None
            for n, r in self.runners.items():
                if r.deferred_due_ns is not None and r.deferred_due_ns < t:
                    t, name = r.deferred_due_ns, n
            if self._audio_q and self._audio_q[0][0] < t:
                t, name = self._audio_q[0][0], ''
            if t > now_ns:
                return
            if name == '':                    # an audio chunk complete: the vocal node's input
                _, _, stamp, frame_id, rate, mono = heapq.heappop(self._audio_q)
                self._push_audio(stamp, t, frame_id, rate, mono)
            elif name is None:                # the output_rate_hz timer of every fusion node
                for n, r in self.runners.items():
                    self._call(n, r.on_timer, t)
                self.next_tick += self.period_ns
            else:                             # that node's one-shot
                self._call(name, self.runners[name].on_deferred, t)

    def _call(self, name: str, entry: Any, *args: Any) -> None:
        t0 = time.perf_counter()
        step = entry(*args)
        if isinstance(step, tuple):           # on_vision: (reason, step)
            step = step[1]
        if step is not None:
            self._record(name, step, (time.perf_counter() - t0) * 1e3)

    def _add_vision(self, f: Any, now_ns: int) -> None:
        """One face's feature arrives (one message per face, as the node receives them: this
        face's arrival may step before the next face's feature is in)."""
        for name in ('fused', 'vision_only'):
            self._call(name, self.runners[name].on_vision, f, now_ns)

    def _record(self, name: str, step: Any, ms: float) -> None:
        """What fusion_node would publish for `step`, as predictions."""
        self.steps[name].append((step.t_ns, step.kind))
        if name == 'fused':
            self.step_ms.append(ms)
        for e in step.estimates:
            p = Prediction(e.stamp_ns, e.face_id, e.expression, e.confidence,
                           e.modalities, [float(x) for x in e.probabilities], step.t_ns)
            self.preds[name].append(p)
            if name == 'fused':
                self.latest[e.face_id] = p
                self.output_age_ms.append((step.t_ns - e.stamp_ns) / 1e6)
        if name == 'fused':
            for fid in step.removed:
                self.latest.pop(fid, None)

    def step_counts(self) -> dict:
        """Per runner: steps by trigger, and the schedule's skipped timer ticks / deferrals."""
        out = {}
        for name, steps in self.steps.items():
            kinds = [k for _, k in steps]
            sched = self.runners[name].schedule
            out[name] = {'vision': kinds.count('vision'), 'deferred': kinds.count('deferred'),
                         'timer': kinds.count('timer'), 'timer_skipped': sched.timer_skips,
                         'vision_deferrals': sched.deferrals}
        return out

    def on_image(self, stamp: int, frame_id: str, bgr: np.ndarray) -> list:
        """Detect, track, encode one frame; feed vision features; returns the visible tracks."""
        self.advance(stamp)
        t0 = time.perf_counter()
        res = self.faces.process(bgr, stamp / NS)
        self.frames += 1
        self.faces_seen += len(res.tracks)
        self.frames_with_face += bool(res.tracks)
        boxes = [FaceBox(t.id, float(t.w * t.h)) for t in res.tracks]
        for name in ('fused', 'vision_only'):
            self.runners[name].on_faces(boxes, stamp, stamp)
        if res.embeddings is not None:
            for k, tr in enumerate(res.encoded):
                # as face_node publishes it: the encoder's labels and its own logits
                f = Feature(stamp, tr.id, MODALITY_VISION, res.embeddings[k],
                            quality=float(tr.confidence), speech=True, frame_id=frame_id,
                            received_ns=stamp, labels=tuple(self.bundle.labels),
                            logits=np.asarray(res.logits[k], np.float32))
                self._add_vision(f, stamp)
                self.vision_head.append((stamp, self.bundle.labels[int(np.argmax(res.logits[k]))]))
        elif res.model_error:
            log.warning('vision encoder failed at %d: %s', stamp, res.model_error)
        self.frame_ms.append((time.perf_counter() - t0) * 1e3)
        return res.tracks

    def on_audio(self, stamp: int, frame_id: str, rate: int, mono: np.ndarray) -> None:
        """Queue one chunk to be pushed at its end time (by ``advance``, in time order)."""
        end = stamp + int(round(mono.size / max(1, rate) * NS))
        self.advance(stamp)
        heapq.heappush(self._audio_q, (end, self._seq, stamp, frame_id, rate, mono))
        self._seq += 1

    def finish(self, end_ns: int) -> None:
        """The bag ended at `end_ns`: run every event up to then and push every queued chunk."""
        self.advance(max([end_ns] + [q[0] for q in self._audio_q]))

    def _push_audio(self, stamp: int, end: int, frame_id: str, rate: int,
                    mono: np.ndarray) -> None:
        """Push one chunk at its end time; feed every completed window as a voice feature."""
        t0 = time.perf_counter()
        _, windows = self.voice.push(stamp / NS, rate, mono)
        if windows:
            self.window_ms.append((time.perf_counter() - t0) * 1e3 / len(windows))
        for w in windows:
            self.voice_windows += 1
            self.speech_windows += int(w.speech)
            if w.embedding is None:
                continue
            ws = int(round(w.stamp * NS))
            # as vocal_node publishes it and fusion_node reads it: labels and (span-pooled) logits
            f = Feature(ws, 'voice', MODALITY_VOICE, w.embedding,
                        quality=float(w.speech_probability), speech=bool(w.speech),
                        frame_id=frame_id, received_ns=end, labels=tuple(self.bundle.labels),
                        logits=(None if w.logits is None
                                else np.asarray(w.logits, np.float32)))
            for name in ('fused', 'voice_only'):
                self.runners[name].on_voice(f, end)
            own = w.window_logits if w.window_logits is not None else w.logits
            if w.speech and own is not None:     # the encoder's head on the window itself
                centre = ws + int(self.bundle.window_seconds * NS / 2)
                self.voice_head.append((centre, self.bundle.labels[int(np.argmax(own))]))


# The nodes' parameter tables (rclpy-free), by node name.
PARAM_TABLES = {'face_node': 'FACE_PARAMS', 'vocal_node': 'VOCAL_PARAMS'}


def param_specs(node: str) -> list:
    """A pipeline node's ParamSpec table (emotion_perception.node_params; no rclpy)."""
    return getattr(param_tables, PARAM_TABLES[node])


def face_detection_summary(pipe: Any) -> dict:
    """Which detector ran and in what share of the frames it gave a tracked face (in a bag that
    shows a face in every frame, e.g. ``emotion-bag make --faces``: the found rate as face_node
    reports it, ``min_hits`` included; bench/bench_detection.py measures the detectors alone)."""
    frames = pipe.frames
    return {'detector': pipe.params['face_node'].get('face_detector', 'haar'),
            'frames_with_face': pipe.frames_with_face,
            'fraction': round(pipe.frames_with_face / frames, 4) if frames else None}


def node_params(node: str, overrides: Optional[dict] = None) -> dict:
    """A perception node's parameters: its spec table's defaults, overridden and validated."""
    specs = param_specs(node)
    values = {s.name: s.default for s in specs}
    unknown = sorted(set(overrides or {}) - set(values))
    if unknown:
        raise ValueError(f'{node}: unknown parameter(s) {unknown}')
    values.update(overrides or {})
    return validate(specs, values)


def _warm_up(bundle: Any) -> None:
    """Create the ONNX sessions and the log-mel caches before timing, so the first frame's and the
    first window's processing time measure inference, not one-off session creation."""
    bundle.encode_faces([np.zeros((48, 48), np.uint8)])
    bundle.encode_voice_window(np.zeros(bundle.window_samples, np.float32), bundle.sample_rate)
    h, c = bundle.initial_state(1)
    bundle.fusion_step(np.zeros((1, bundle.vision_embedding_size), np.float32), np.ones(1),
                       np.zeros((1, bundle.voice_embedding_size), np.float32), np.ones(1), h, c)


def _head_score(items: list[tuple[int, str]], truth: Truth, labels: Sequence[str]) -> dict:
    preds = [Prediction(s, '', lab, 1.0, 0) for s, lab in items]
    out = score(preds, truth, labels)
    return {k: out[k] for k in ('n', 'accuracy', 'uar', 'macro_f1', 'unscored')}


# --------------------------------------------------------------------------- video
class VideoOut:
    """cv2.VideoWriter with a codec this OpenCV build can write (mp4v .mp4, else MJPG .avi)."""

    def __init__(self, out_dir: pathlib.Path, fps: float, stem: str = 'annotated') -> None:
        self.out_dir, self.fps, self.stem = out_dir, fps, stem
        self.writer = None
        self.path: Optional[pathlib.Path] = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        import cv2  # noqa: PLC0415 - cv2: only when a video is written
        if self.writer is None:
            h, w = frame.shape[:2]
            for ext, fourcc in (('mp4', 'mp4v'), ('avi', 'MJPG')):
                path = self.out_dir / f'{self.stem}.{ext}'
                wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), self.fps, (w, h))
                if wr.isOpened():
                    self.writer, self.path = wr, path
                    break
                wr.release()
                path.unlink(missing_ok=True)
            if self.writer is None:
                raise RuntimeError('this OpenCV build can write neither mp4v/.mp4 nor MJPG/.avi')
        self.writer.write(frame)
        self.frames += 1

    def close(self) -> Optional[pathlib.Path]:
        if self.writer is not None:
            self.writer.release()
        return self.path


def annotate(frame: np.ndarray, ov: FrameOverlay, labels: Sequence[str],
             per_face: dict[str, Prediction], t0_ns: int) -> np.ndarray:
    """Face boxes with id and label, and a corner panel: predicted vs true emotion (the demo look).

    Green when the fused prediction equals the truth, red when it differs, grey when unknown.
    """
    import cv2  # noqa: PLC0415 - cv2: only when a video is written
    out = frame.copy()
    for fid, x, y, w, h in ov.boxes:
        p = per_face.get(fid)
        cv2.rectangle(out, (int(x), int(y)), (int(x + w), int(y + h)), (0, 255, 0), 2)
        text = fid + (f' {p.expression} {p.confidence:.2f}' if p else '')
        cv2.putText(out, text, (int(x), max(14, int(y) - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 255, 0), 1, cv2.LINE_AA)
    pred = ov.pred
    colour = ((160, 160, 160) if pred is None or ov.truth is None else
              (0, 200, 0) if pred.expression == ov.truth else (0, 0, 230))
    panel_w, panel_h = 230, 58 + 12 * len(labels)
    cv2.rectangle(out, (4, 4), (4 + panel_w, 4 + panel_h), (0, 0, 0), -1)
    cv2.rectangle(out, (4, 4), (4 + panel_w, 4 + panel_h), colour, 2)
    mods = '' if pred is None else ('V' if pred.modalities & 1 else '') + \
        ('A' if pred.modalities & 2 else '')
    ptxt = 'pred: -' if pred is None else f'pred: {pred.expression} {pred.confidence:.2f} [{mods}]'
    cv2.putText(out, ptxt, (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    cv2.putText(out, f'true: {ov.truth or "-"}', (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (255, 255, 255), 1, cv2.LINE_AA)
    probs = pred.probabilities if pred is not None and pred.probabilities else None
    for i, lab in enumerate(labels):
        y = 50 + 12 * i
        cv2.putText(out, lab[:8], (10, y + 9), cv2.FONT_HERSHEY_PLAIN, 0.8, (220, 220, 220), 1)
        if probs is not None and i < len(probs):
            cv2.rectangle(out, (80, y + 1), (80 + int(140 * float(probs[i])), y + 9),
                          (0, 180, 255) if lab != ov.truth else (0, 220, 0), -1)
    cv2.putText(out, f't={(ov.stamp_ns - t0_ns) / NS:6.2f}s', (out.shape[1] - 110,
                out.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _frame_bgr(msg: Any) -> np.ndarray:
    """An Image or a CompressedImage (JPEG/PNG) of the bag as bgr8."""
    return decode_image(msg)


def _pick(per_face: dict[str, Prediction]) -> Optional[Prediction]:
    """The estimate shown in the corner: the newest (largest stamp) of the faces shown."""
    return max(per_face.values(), key=lambda p: (p.stamp_ns, p.face_id)) if per_face else None


# --------------------------------------------------------------------------- offline mode
def play(pipe: OfflinePipeline, reader: Any, bag: Any, img_conns: list, aud_conns: list,
         on_frame: Any = None, progress: bool = False) -> None:
    """Feed the bag's images and audio to `pipe` in header-stamp order (its clock), then run
    what is left (``finish``).  ``on_frame(stamp, bgr, tracks)`` is called after each image."""
    bar = tqdm(total=sum(c.msgcount for c in img_conns + aud_conns), desc='offline eval',
               unit='msg', disable=not progress, leave=False)
    image_ids = {c.id for c in img_conns}
    for s, _, conn, msg in ordered(reader, img_conns + aud_conns, bag):
        bar.update(1)
        if conn.id in image_ids:
            bgr = _frame_bgr(msg)
            tracks = pipe.on_image(s, str(msg.header.frame_id), bgr)
            if on_frame is not None:
                on_frame(s, bgr, tracks)
        else:
            x = to_mono(decode_pcm(bytes(msg.data), str(msg.encoding), int(msg.channels)))
            pipe.on_audio(s, str(msg.header.frame_id), int(msg.sample_rate), x)
    bar.close()
    pipe.finish(reader.end_time)


def evaluate_offline(bag: pathlib.Path, out_dir: pathlib.Path, bundle_path: Optional[str] = None,
                     fusion_cfg: Any = None, video: bool = True, progress: bool = True,
                     image_topic: str = IMAGE_TOPIC, audio_topic: str = AUDIO_TOPIC,
                     truth_topic: str = TRUTH_TOPIC, face_params: Optional[dict] = None,
                     vocal_params: Optional[dict] = None) -> dict:
    """Run the pipeline on `bag`, score it, write the report files; returns the metrics dict."""
    from emotion_runtime.model_bundle import ModelBundle  # noqa: PLC0415 - onnxruntime
    reader = open_bag(bag)
    try:
        truth = read_truth(reader, bag, truth_topic)
        bundle = ModelBundle.load(bundle_path)
        img_conns = image_connections(reader, image_topic)   # raw or compressed
        aud_conns = find_topic(reader, audio_topic)
        if not img_conns and not aud_conns:
            require_topics(reader, [image_topic, audio_topic], bag)
        if not img_conns:
            log.warning('bag %s has no %s: vision is not evaluated', bag, image_topic)
        if not aud_conns:
            log.warning('bag %s has no %s: voice is not evaluated', bag, audio_topic)
        pipe = OfflinePipeline(bundle, fusion_cfg, face_params, vocal_params)
        _warm_up(bundle)
        fps = image_fps(reader, img_conns) if img_conns else 30.0
        vid = VideoOut(out_dir, fps) if video and img_conns else None
        t0_ns = reader.start_time

        def on_frame(s: int, bgr: np.ndarray, tracks: list) -> None:
            if vid is not None:
                shown = {t.id: pipe.latest[t.id] for t in tracks if t.id in pipe.latest}
                ov = FrameOverlay(s, [(t.id, *t.box) for t in tracks],
                                  _pick(shown) or _pick(pipe.latest), truth.at(s))
                vid.write(annotate(bgr, ov, bundle.labels, shown, t0_ns))

        wall0 = time.perf_counter()
        play(pipe, reader, bag, img_conns, aud_conns, on_frame, progress)
        end_ns = reader.end_time
        wall = time.perf_counter() - wall0
    finally:
        reader.close()
    labels = bundle.labels
    ablation = {name: {**score(p, truth, labels), 'coverage': round(coverage(p, truth), 4)}
                for name, p in pipe.preds.items()}
    fused = ablation['fused']
    video_path = vid.close() if vid is not None else None
    result = {
        'mode': 'offline', 'bag': str(bag), 'bundle': str(bundle.path), 'labels': labels,
        'n': fused['n'], 'accuracy': fused['accuracy'], 'uar': fused['uar'],
        'macro_f1': fused['macro_f1'], 'coverage': fused['coverage'],
        'per_class_recall': fused['per_class_recall'], 'confusion': fused['confusion'],
        'ablation': {k: {m: v[m] for m in ('n', 'accuracy', 'uar', 'macro_f1', 'coverage')}
                     for k, v in ablation.items()},
        'encoder_heads': {'vision': _head_score(pipe.vision_head, truth, labels),
                          'voice': _head_score(pipe.voice_head, truth, labels)},
        'follow': {k: follow_times(p, truth) for k, p in pipe.preds.items()},
        'latency_ms': {'frame_processing': latency_stats(pipe.frame_ms),
                       'voice_window_processing': latency_stats(pipe.window_ms),
                       'fusion_step': latency_stats(pipe.step_ms),
                       'output_age': latency_stats(pipe.output_age_ms)},
        'counts': {'frames': pipe.frames, 'faces': pipe.faces_seen,
                   'voice_windows': pipe.voice_windows, 'speech_windows': pipe.speech_windows,
                   'estimates': {k: len(v) for k, v in pipe.preds.items()},
                   'truth_samples': len(truth)},
        'steps': pipe.step_counts(),
        'face_detection': face_detection_summary(pipe),
        'params': {**pipe.params, 'fusion_node': dataclasses.asdict(pipe.cfg)},
        'wall_s': round(wall, 3),
        'realtime_factor': round((end_ns - t0_ns) / NS / wall, 3) if wall > 0 else None,
        'video': str(video_path) if video_path else None,
        'video_frames': vid.frames if vid is not None else 0,
    }
    from .report import write_report  # noqa: PLC0415 - matplotlib: only when a report is written
    files = write_report(out_dir, result, truth, {k: v for k, v in pipe.preds.items()},
                         latency_values=pipe.frame_ms, latency_title='processing time per frame',
                         t0_ns=t0_ns)
    result['files'] = files
    return result


# --------------------------------------------------------------------------- live mode
def _read_emotions(reader: Any, path: Any, topic: str) -> list[Prediction]:
    conns = require_topics(reader, [topic], path)[topic]
    out = []
    for conn, t_log, raw in iter_messages(reader, conns, path):
        m = typestore().deserialize_cdr(raw, conn.msgtype)
        out.append(Prediction(stamp_ns(m), str(m.face_id), str(m.expression),
                              float(m.confidence), int(m.modalities),
                              [float(x) for x in m.probabilities], int(t_log)))
    if not out:
        raise BagError(f'bag {path}: topic {topic} has no messages')
    return out


def evaluate_live(bag: pathlib.Path, out_dir: pathlib.Path,
                  truth_bag: Optional[pathlib.Path] = None,
                  video: bool = True, progress: bool = True, emotion_topic: str = EMOTION_TOPIC,
                  truth_topic: str = TRUTH_TOPIC, image_topic: str = IMAGE_TOPIC,
                  faces_topic: str = FACES_TOPIC) -> dict:
    """Score the /emotion messages recorded in `bag` against the ground truth.

    The truth comes from `bag` itself when it recorded the truth topic (the replay restamps both
    consistently), else from `truth_bag` (the evaluation bag; then the emotions must carry that
    bag's stamps, i.e. the replay ran without --restamp).
    """
    reader = open_bag(bag)
    try:
        preds = _read_emotions(reader, bag, emotion_topic)
        labels = next((list(map(str, typestore().deserialize_cdr(raw, c.msgtype).labels))
                       for c, _, raw in iter_messages(reader, find_topic(reader, emotion_topic),
                                                      bag)), [])
        if find_topic(reader, truth_topic):
            truth, truth_src = read_truth(reader, bag, truth_topic), str(bag)
        elif truth_bag is not None:
            r2 = open_bag(truth_bag)
            try:
                truth, truth_src = read_truth(r2, truth_bag, truth_topic), str(truth_bag)
            finally:
                r2.close()
        else:
            raise BagError(f'bag {bag} lacks the ground-truth topic {truth_topic}; record it too '
                           f'(emotion-bag record OUT --topics {emotion_topic} {truth_topic}) or '
                           'pass --truth EVAL_BAG')
        t0_ns = min(truth.stamps[0], min(p.stamp_ns for p in preds))
        lat = [(p.emitted_ns - p.stamp_ns) / 1e6 for p in preds]
        med = float(np.median(lat)) if lat else 0.0
        if abs(med) > 60_000:
            log.warning('median latency %.0f s: the header stamps are not on the recorder\'s clock '
                        '(replay with --restamp for latency figures)', med / 1000)
        overlap = any(truth.at(p.stamp_ns) is not None for p in preds)
        if not overlap:
            raise BagError(f'no /emotion stamp of {bag} falls inside the ground truth of '
                           f'{truth_src}: the replay was restamped; record {truth_topic} together '
                           f'with {emotion_topic} (or replay without --restamp)')
        if not labels:
            labels = sorted({p.expression for p in preds if p.expression})
        by_mod: dict[str, list[Prediction]] = {}
        for p in preds:
            key = {1: 'vision_only', 2: 'voice_only', 3: 'fused'}.get(p.modalities, 'none')
            by_mod.setdefault(key, []).append(p)
        overall = score(preds, truth, labels)
        ablation = {}
        for k, v in by_mod.items():
            s = score(v, truth, labels)
            ablation[k] = {m: s[m] for m in ('n', 'accuracy', 'uar', 'macro_f1')}
        # Video: images from this bag, else from the truth bag.
        vid_frames = 0
        video_path = None
        if video:
            src_reader, src, offset = reader, bag, 0
            if not image_connections(reader, image_topic) and truth_bag is not None:
                src_reader, src = open_bag(truth_bag), truth_bag
                if truth_src == str(bag):   # restamped replay: find its shift from the truths
                    orig = read_truth(src_reader, src, truth_topic)
                    offset = truth_offset(list(zip(truth.stamps, truth.labels)),
                                          list(zip(orig.stamps, orig.labels)))
            try:
                video_path, vid_frames = _live_video(src_reader, src, out_dir, preds, truth,
                                                     labels, image_topic, faces_topic, reader,
                                                     bag, t0_ns, progress, offset)
            finally:
                if src_reader is not reader:
                    src_reader.close()
    finally:
        reader.close()
    result = {
        'mode': 'live', 'bag': str(bag), 'truth_source': truth_src, 'labels': labels,
        'n': overall['n'], 'accuracy': overall['accuracy'], 'uar': overall['uar'],
        'macro_f1': overall['macro_f1'], 'coverage': round(coverage(preds, truth), 4),
        'per_class_recall': overall['per_class_recall'], 'confusion': overall['confusion'],
        'ablation': ablation,
        'follow': {'published': follow_times(preds, truth)},
        'latency_ms': {'end_to_end': latency_stats(lat)},
        'counts': {'estimates': len(preds), 'faces': len({p.face_id for p in preds}),
                   'truth_samples': len(truth), 'unscored': overall['unscored']},
        'video': str(video_path) if video_path else None, 'video_frames': vid_frames,
    }
    from .report import write_report  # noqa: PLC0415 - matplotlib: only when a report is written
    result['files'] = write_report(out_dir, result, truth, {'published': preds},
                                   latency_values=lat, latency_title='end-to-end latency '
                                   '(receive time - header stamp)', t0_ns=t0_ns)
    return result


def _live_video(src_reader: Any, src: Any, out_dir: pathlib.Path, preds: list[Prediction],
                truth: Truth, labels: Sequence[str], image_topic: str, faces_topic: str,
                rec_reader: Any, rec: Any, t0_ns: int, progress: bool, offset_ns: int = 0
                ) -> tuple[Optional[pathlib.Path], int]:
    """Annotate the replayed images with the latest /emotion per face at each frame's stamp.

    `offset_ns` maps the image bag's stamps onto the recording's (a --restamp replay).
    """
    conns = image_connections(src_reader, image_topic)
    if not conns:
        log.warning('no %s in %s: no annotated video', image_topic, src)
        return None, 0
    faces: dict[int, list] = {}
    for c, _, raw in iter_messages(rec_reader, find_topic(rec_reader, faces_topic), rec):
        m = typestore().deserialize_cdr(raw, c.msgtype)
        faces[stamp_ns(m)] = [(f.id, f.x, f.y, f.width, f.height) for f in m.faces]
    fstamps = sorted(faces)
    preds = sorted(preds, key=lambda p: p.stamp_ns)
    pstamps = [p.stamp_ns for p in preds]
    vid = VideoOut(out_dir, image_fps(src_reader, conns))
    for _, _, _, msg in tqdm(ordered(src_reader, conns, src), total=sum(c.msgcount for c in conns),
                             desc='video', disable=not progress, leave=False):
        s = stamp_ns(msg) + offset_ns
        k = bisect.bisect_right(pstamps, s)
        per_face: dict[str, Prediction] = {}
        for p in preds[max(0, k - 50):k]:
            if s - p.stamp_ns <= NS:
                per_face[p.face_id] = p
        # boxes of the newest FaceArray at or before this frame (the face node skips frames
        # under load), held for at most 0.3 s
        j = bisect.bisect_right(fstamps, s) - 1
        boxes = faces[fstamps[j]] if j >= 0 and s - fstamps[j] <= 0.3 * NS else []
        ov = FrameOverlay(s, boxes, _pick(per_face), truth.at(s))
        vid.write(annotate(_frame_bgr(msg), ov, labels, per_face, t0_ns))
    return vid.close(), vid.frames


def truth_offset(recorded: Sequence[tuple[int, str]], original: Sequence[tuple[int, str]]) -> int:
    """The shift (ns) a --restamp replay at rate 1 applied: recorded = original + offset.

    Every recorded truth sample is an original one (same label) plus one offset.  The offset that
    maps the most recorded samples exactly (within 1 ms) onto original samples with the same label
    wins; the label boundaries make it unique, and among equals (a single-label bag) the one that
    maps the first recorded sample onto the first original one is preferred (the recorder usually
    starts before the replay).  0 when no offset explains at least half of them (no restamp).
    """
    if not recorded or not original:
        return 0
    orig = {int(o // 1_000_000): lab for o, lab in original}

    def hits(off: int) -> int:
        n = 0
        for x, lab in recorded:
            ms = int((x - off) // 1_000_000)
            n += any(orig.get(ms + d) == lab for d in (-1, 0, 1))
        return n

    first = recorded[0][0] - original[0][0]
    cands = {r - o for r, _ in recorded[:3] for o, _ in original}
    scored = sorted(cands, key=lambda off: (-hits(off), abs(off - first)))
    best = scored[0]
    return best if hits(best) >= len(recorded) / 2 else 0


PIPELINE_NODES = ('face_node', 'vocal_node', 'fusion_node')


def default_param_files() -> list[pathlib.Path]:
    """The parameter files every pipeline node loads first: each package's own defaults
    (emotion_perception's perception.yaml, emotion_fusion's fusion.yaml), from the colcon
    install, else from the source tree; missing ones are skipped (the spec tables hold the same
    defaults)."""
    out = []
    for package, name in (('emotion_perception', 'perception.yaml'),
                          ('emotion_fusion', 'fusion.yaml')):
        path = None
        try:
            from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415 - ROS optional
            path = pathlib.Path(get_package_share_directory(package)) / 'config' / name
        except Exception:  # noqa: BLE001 - not installed or no ament index: the source tree
            pass
        if path is None or not path.exists():
            path = pathlib.Path(__file__).resolve().parents[2] / 'src' / package / 'config' / name
        if path.exists():
            out.append(path)
    return out


def load_params(paths: Sequence[pathlib.Path] = (), defaults: bool = True
                ) -> tuple[Any, dict, dict]:
    """(FusionConfig, face_node values, vocal_node values) from ROS parameter YAML files.

    The nodes' own way: the spec tables' defaults, then (``defaults``) the packages' default
    files (``default_param_files``), then each of ``paths`` in turn, later values winning.  A
    section keyed by a node name applies to that node only (``face_node``, ``vocal_node``,
    ``fusion_node``; sections of other nodes, e.g. camera_node or tracker_node in robot.yaml, are
    skipped); a wildcard section ("/**") gives each parameter to whichever pipeline node declares
    it.  So the launch's own config files can be passed unchanged.  model_bundle and the thread
    counts are ignored (the bundle is --bundle; threads do not change results).
    """
    import yaml  # noqa: PLC0415 - only the CLI reads YAML
    names = {'face_node': set(node_params('face_node')),
             'vocal_node': set(node_params('vocal_node')),
             'fusion_node': {f.name for f in dataclasses.fields(FusionConfig)}}
    values: dict[str, dict] = {n: {} for n in PIPELINE_NODES}
    files = [(p, True) for p in (default_param_files() if defaults else [])]
    files += [(pathlib.Path(p), False) for p in paths or ()]
    for path, is_default in files:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f'--params {path}: cannot read it as YAML: {exc}') from exc
        for key, section in (data or {}).items():
            if not isinstance(section, dict) or 'ros__parameters' not in section:
                continue
            node = str(key).rstrip('/').rsplit('/', 1)[-1]
            if node == 'fusion':
                node = 'fusion_node'
            if node in names:
                targets = [node]
            elif '*' in node:
                targets = list(PIPELINE_NODES)
            else:
                continue                     # another node's section (camera_node, ...)
            for k, v in (section['ros__parameters'] or {}).items():
                if k in ('model_bundle', 'encoder_threads', 'onnx_threads'):
                    continue
                hit = [n for n in targets if k in names[n]]
                for n in hit:
                    values[n][k] = v
                if not hit and not is_default:
                    log.warning('--params %s: parameter %s belongs to no node of the pipeline '
                                '(%s); ignored', path, k, ', '.join(targets))
    return (FusionConfig.from_mapping(values['fusion_node']), values['face_node'],
            values['vocal_node'])


# --------------------------------------------------------------------------- CLI glue
def add_parser(sub: Any) -> None:
    """Register the `bag` subcommand on emotion-eval's subparsers (evaluate.SUBCOMMANDS)."""
    p = sub.add_parser('bag', help='evaluate the pipeline on a ROS 2 bag (offline or live)',
                       description='Score the emotion pipeline on a ROS 2 bag against its '
                       'ground truth (emotion/ground_truth). offline: the perception and fusion '
                       'modules of the nodes run in-process on image_raw and audio, in stamp '
                       'order, deterministic, with a vision-only / voice-only / fused ablation. '
                       'live: score the /emotion recorded from a running graph (emotion-bag '
                       'record), latency = receive time - header stamp. Prints one JSON line; '
                       'writes metrics.json, report.md/html, PNG plots and annotated video to '
                       '--out.')
    p.add_argument('bag', type=pathlib.Path, help='evaluation bag (offline) or recorded bag (live)')
    p.add_argument('--bundle', default=None,
                   help='model bundle directory (offline; default: the shipped bundle)')
    p.add_argument('--mode', choices=('offline', 'live'), default='offline')
    p.add_argument('--out', type=pathlib.Path, default=pathlib.Path('eval_bag_out'),
                   help='output directory for metrics.json, report.md/html, plots, video '
                        '(default %(default)s)')
    p.add_argument('--truth', type=pathlib.Path, default=None,
                   help='live: the evaluation bag (ground truth and images) when the recorded '
                        'bag lacks them')
    p.add_argument('--params', type=pathlib.Path, nargs='+', default=[], metavar='YAML',
                   help='offline: ROS parameter files of the face, vocal and fusion nodes, '
                        'applied after the packages\' defaults, later files winning (e.g. '
                        'launch/config/robot.yaml); default: the nodes\' defaults')
    p.add_argument('--no-video', action='store_true', help='skip the annotated video')
    p.add_argument('--image-topic', default=IMAGE_TOPIC)
    p.add_argument('--audio-topic', default=AUDIO_TOPIC)
    p.add_argument('--truth-topic', default=TRUTH_TOPIC)
    p.add_argument('--emotion-topic', default=EMOTION_TOPIC)
    p.set_defaults(func=run)


def evaluate(args: Any) -> dict:
    """Run `emotion-eval bag` from parsed arguments; returns the full metrics dict."""
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = sys.stderr.isatty()
    if args.mode == 'offline':
        fusion_cfg, face, vocal = load_params(args.params)
        return evaluate_offline(args.bag, out, args.bundle, fusion_cfg, not args.no_video,
                                progress, args.image_topic, args.audio_topic, args.truth_topic,
                                face_params=face, vocal_params=vocal)
    return evaluate_live(args.bag, out, args.truth, not args.no_video, progress,
                         args.emotion_topic, args.truth_topic, args.image_topic)


def summary_line(res: dict) -> dict:
    """The one JSON line (emotion-eval's contract keys first; the full result is metrics.json)."""
    keys = ('mode', 'bag', 'n', 'accuracy', 'uar', 'macro_f1', 'per_class_recall', 'labels',
            'confusion', 'coverage', 'ablation', 'latency_ms', 'video', 'video_frames', 'files')
    return {'command': 'bag', **{k: res.get(k) for k in keys}}


def run(args: Any) -> int:
    """emotion-eval's entry for `bag`: one JSON line on stdout, exit 2 with a clear error."""

    from emotion_runtime.model_bundle import BundleError  # noqa: PLC0415 - onnxruntime: only when the CLI runs
    logging.basicConfig(level=logging.INFO, format='[emotion-eval] %(levelname)s: %(message)s')
    try:
        res = evaluate(args)
    except (BagError, BundleError, FileNotFoundError, ValueError) as exc:
        print(f'emotion-eval bag: error: {exc}', file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(summary_line(res)) + '\n')
    sys.stdout.flush()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Stand-alone entry (`python -m emotion_training.eval_bag BAG ...` = emotion-eval bag)."""
    parser = argparse.ArgumentParser(prog='emotion-eval')
    sub = parser.add_subparsers(dest='command', required=True)
    add_parser(sub)
    args = parser.parse_args(['bag', *(sys.argv[1:] if argv is None else argv)])
    return run(args)


if __name__ == '__main__':
    raise SystemExit(main())
