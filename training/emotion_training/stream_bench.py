"""`emotion-eval stream`: the stream benchmark (what the robot publishes, not clip by clip).

    emotion-eval stream [--data DIR] [--faces-half dev|fusion|fusion_val|all]
                        [--speech ravdess:11,...,20|ravdess:01,02|emodb:10,15]
                        [--seeds 0 1 2 3 4] [--segments 60] [--out DIR] [--bundle DIR]
                        [--jobs N]

For each seed it builds one dev stream bag (`build_stream_clip` + the bag writer of
`emotion-bag make`) from dev data only, replays it through the nodes' own pipelines
(`eval_bag.evaluate_offline`: face, voice and fusion pipelines on the bag's clock, with the
vision-only / voice-only ablation) and reports, per seed and as mean ± sd over the seeds: fused,
vision-only and voice-only UAR, coverage (fraction of ground-truth samples with an estimate
stamped within the last 0.5 s), output age (step time - newest input stamp, p50/p95) and the time
the fused label takes to follow a change of the true label (median per seed; `eval_bag.follow_times`).

Dev data (default): the dev half of FER2013 `validation` faces (PublicTest; no encoder trained on
it; `splits.stream_half` splits it by a hash of the file name) and RAVDESS actors 11-20 (English;
no encoder heard them).  The other halves (the fusion half of the faces, actors 07-10; 01-06
train the vocal encoder, 01-09 the second encoder of the shipped bundle's vocal decision) train
the stream-fusion head (`emotion-train stream-fusion`), so it is never scored on what it learnt
from.
EmoDB speakers (`emodb:SS,SS`) are only held out for dev bundles trained without them: the shipped
vocal encoders were trained on all 8 EmoDB speakers here.

A stream is a sequence of segments of 3-10 s, one true label each (face and speech of that
label; labels restricted to the bundle's; RAVDESS calm is excluded by default or mapped to
neutral with --ravdess-calm neutral; RAVDESS surprised is left out while the bundle has no
surprise label).  Placements are dealt from fixed decks per seed, so every seed has all of them:
segments without speech (~20 %), with one utterance (~50 %), with several utterances of one
speaker (~30 %); one face (~60 %), a stretch of 1-3 s without a face (~25 %), two faces of the
label at once (~15 %).  Utterances keep their own length and their recorded leading/trailing
silence (RAVDESS clips keep theirs, as `emotion-bag make` does) with pauses of 0.2-1.5 s between
them; an utterance that does not fit in 10 s is cut at the end of its segment.  The true label
changes at every segment boundary.  Frames are 320x240 at 15 fps by default, written as JPEG
CompressedImage by the bag writer (about 53 MB per 6 min seed), and face_node gets the detection
geometry of the robot's 640x480 camera (`camera_geometry`).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import logging
import math
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from emotion_runtime.cpu import cpu_summary
from emotion_runtime.model_bundle import BundleError, ModelBundle

from . import media
from .bag_cli import _size as _parse_size
from .bag_io import BagError
from .bag_make import write_clip
from .config import default_data_root
from .datasets.common import Sample, read_face
from .datasets.emodb import load_emodb
from .datasets.folders import load_image_folders
from .datasets.ravdess import load_ravdess
from .eval_bag import evaluate_offline, load_params
from .media import MediaError
from .parallel import check_jobs, map_ordered
from .report import _plt
from .splits import FUSION_VAL, STREAM_DEV, STREAM_FUSION, stream_faces, stream_speech_spec

log = logging.getLogger('emotion_eval')

START_NS = 1_700_000_000 * 1_000_000_000     # fixed bag start: a seed's bag is the same each run
MIN_SEG, MAX_SEG = 3.0, 10.0


# --------------------------------------------------------------------------- speech specs
def load_speech_spec(spec: str, data: pathlib.Path, labels: Sequence[str],
                     calm: str = 'exclude') -> list[Sample]:
    """'ravdess' | 'ravdess:01,02' | 'emodb' | 'emodb:10,15' -> utterances under ``data``."""
    corpus, _, who = spec.partition(':')
    speakers = [s.strip().zfill(2) for s in who.split(',') if s.strip()] or None
    if corpus == 'ravdess':
        items = load_ravdess(data / 'ravdess', labels, speakers, calm)
    elif corpus == 'emodb':
        items = load_emodb(data / 'emodb', labels, speakers)
    else:
        raise ValueError(f'--speech {spec!r}: use ravdess[:AA,AA] or emodb[:SS,SS]')
    if not items:
        raise ValueError(f'--speech {spec!r}: no utterances of {list(labels)} under {data}')
    return items


# --------------------------------------------------------------------------- the stream
@dataclasses.dataclass
class StreamSegment:
    """One segment of a dev stream: its true label and what the camera and microphone get."""

    start: float
    end: float
    label: str
    faces: list[int]                        # indices into the face pool (1 or 2 at once)
    face_gap: Optional[tuple[float, float]]  # absolute times without a face, or None
    utterances: list[tuple[float, int]]     # (absolute start, index into the speech pool)
    speaker: str = ''

    @property
    def speech(self) -> str:
        return 'none' if not self.utterances else 'one' if len(self.utterances) == 1 \
            else 'several'


def _deck(n: int, rng: np.random.Generator, shares: dict[str, float], rest: str) -> list[str]:
    """n kinds: at least one of each of ``shares`` (about its share of n), the rest ``rest``,
    shuffled."""
    deck = []
    for kind, share in shares.items():
        deck += [kind] * max(1, int(round(share * n)))
    deck = deck[:n] + [rest] * max(0, n - len(deck))
    return [deck[i] for i in rng.permutation(len(deck))]


def plan_stream(face_items: Sequence[Sample], speech_items: Sequence[Sample],
                labels: Sequence[str], seed: int, n_segments: int,
                utterance_seconds: Callable[[int], float]) -> list[StreamSegment]:
    """The placements of one seed (deterministic in ``seed`` and the item lists' order).

    ``utterance_seconds(i)`` is the length of speech item i (the plan keeps utterances at their
    own length)."""
    if n_segments < 2:
        raise ValueError(f'--segments {n_segments}: a stream needs at least 2 segments')
    rng = np.random.default_rng(seed)
    by_face: dict[str, list[int]] = {}
    for i, s in enumerate(face_items):
        by_face.setdefault(s.label, []).append(i)
    by_speaker: dict[tuple[str, str], list[int]] = {}
    for i, s in enumerate(speech_items):
        by_speaker.setdefault((s.label, s.speaker), []).append(i)
    usable = [lab for lab in labels if len(by_face.get(lab, [])) >= 2 and
              any(k[0] == lab for k in by_speaker)]
    if len(usable) < 2:
        raise ValueError(f'a stream needs >= 2 labels with faces and speech; have {usable}')
    speech_kinds = _deck(n_segments, rng, {'none': 0.2, 'several': 0.3}, 'one')
    face_kinds = _deck(n_segments, rng, {'gap': 0.25, 'two': 0.15}, 'one')
    segs: list[StreamSegment] = []
    t, prev = 0.0, None
    for k in range(n_segments):
        lab = str(rng.choice([x for x in usable if x != prev]))
        prev = lab
        pool = by_face[lab]
        n_faces = 2 if face_kinds[k] == 'two' else 1
        faces = [int(pool[j]) for j in rng.choice(len(pool), n_faces, replace=False)]
        speakers = sorted(sp for (lb, sp) in by_speaker if lb == lab)
        speaker = str(speakers[int(rng.integers(len(speakers)))])
        utts: list[tuple[float, int]] = []
        if speech_kinds[k] == 'none':
            dur = float(rng.uniform(MIN_SEG, 6.0))
        else:
            want = 1 if speech_kinds[k] == 'one' else int(rng.integers(2, 4))
            cands = list(by_speaker[(lab, speaker)])
            pos = float(rng.uniform(0.2, 1.0))          # lead pause
            for j in range(want):
                order = [cands[i] for i in rng.permutation(len(cands))]
                fits = [i for i in order if pos + utterance_seconds(i) <= MAX_SEG - 0.3]
                if j > 0 and not fits and len(utts) >= 2:
                    break
                pick = fits[0] if fits else order[0]    # else cut at the segment's end
                utts.append((pos, pick))
                pos += utterance_seconds(pick) + float(rng.uniform(0.2, 1.5))
                if pos >= MAX_SEG - 1.0:
                    break
            dur = float(np.clip(pos, MIN_SEG, MAX_SEG))
        gap = None
        if face_kinds[k] == 'gap':
            length = float(rng.uniform(1.0, min(3.0, dur - 1.0)))
            a = float(rng.uniform(0.0, dur - length))
            gap = (t + a, t + a + length)
        segs.append(StreamSegment(t, t + dur, lab, faces, gap,
                                  [(t + u, i) for u, i in utts], speaker))
        t += dur
    return segs


def face_centres(n: int, t: float, size: tuple[int, int], phase: float) -> list[tuple[float, float]]:
    """Where the faces of a frame are: one at the centre or two side by side, swaying gently
    (a person in front of the robot is never quite still)."""
    w, h = size
    dx = 0.03 * w * math.sin(2 * math.pi * t / 5.0 + phase)
    dy = 0.02 * h * math.sin(2 * math.pi * t / 3.7 + phase)
    xs = [0.5] if n == 1 else [0.28, 0.72]
    return [(x * w + dx, 0.5 * h + dy) for x in xs]


def build_stream_clip(face_items: Sequence[Sample], speech_items: Sequence[Sample],
                      labels: Sequence[str], seed: int, n_segments: int = 60,
                      size: tuple[int, int] = (320, 240), fps: float = 15.0, rate: int = 16000,
                      face_scale: float = 0.5) -> tuple[Any, list[StreamSegment]]:
    """One seed's dev stream as a `media.Clip` (frames rendered on demand) and its plan."""
    cache: dict[int, np.ndarray] = {}

    def audio(i: int) -> np.ndarray:
        if i not in cache:
            cache[i] = media._read_audio(speech_items[i].path, rate)
        return cache[i]

    segs = plan_stream(face_items, speech_items, labels, seed, n_segments,
                       lambda i: audio(i).size / rate)
    duration = segs[-1].end
    rng = np.random.default_rng([seed, 1])
    track = rng.normal(0, 1e-3, int(round(duration * rate))).astype(np.float32)  # a quiet room
    for seg in segs:
        stop = int(round(seg.end * rate))
        for u, i in seg.utterances:
            a = int(round(u * rate))
            m = max(0, min(audio(i).size, stop - a))
            track[a:a + m] += audio(i)[:m]
    track = np.clip(track, -1, 1).astype(np.float32)
    faces = {i: read_face(face_items[i].path) for seg in segs for i in seg.faces}
    bg = media.make_background(size, seed)
    face_h = int(size[1] * face_scale)
    n_frames = int(math.floor(duration * fps + 1e-9))
    phase = float(rng.uniform(0, 2 * math.pi))

    def frames() -> Iterator[tuple[float, np.ndarray]]:
        k = 0
        for f in range(n_frames):
            t = f / fps
            while k < len(segs) - 1 and t >= segs[k].end:
                k += 1
            seg = segs[k]
            frame = bg
            if seg.face_gap is None or not seg.face_gap[0] <= t < seg.face_gap[1]:
                for idx, (cx, cy) in zip(seg.faces, face_centres(len(seg.faces), t, size, phase)):
                    frame, _ = media.composite(frame, faces[idx], cx, cy, face_h)
            yield t, frame if frame is not bg else bg.copy()

    clip = media.Clip(duration, fps, size, n_frames, frames, track, rate,
                      [media.Segment(s.start, s.end, s.label) for s in segs],
                      f'dev stream seed {seed}: {len(segs)} segments')
    return clip, segs


def placement_counts(segs: Sequence[StreamSegment]) -> dict:
    """How many segments have each placement (what the plan promises; in the report)."""
    return {'segments': len(segs), 'no_speech': sum(s.speech == 'none' for s in segs),
            'one_utterance': sum(s.speech == 'one' for s in segs),
            'several_utterances': sum(s.speech == 'several' for s in segs),
            'face_gap': sum(s.face_gap is not None for s in segs),
            'two_faces': sum(len(s.faces) == 2 for s in segs),
            'utterances': sum(len(s.utterances) for s in segs),
            'speakers': sorted({s.speaker for s in segs if s.utterances}),
            'seconds': round(segs[-1].end, 2) if segs else 0.0}


def faces_in_view(segs: Sequence[StreamSegment], fps: float, n_frames: int) -> int:
    """Faces shown summed over the frames (the detector's denominator)."""
    n, k = 0, 0
    for f in range(n_frames):
        t = f / fps
        while k < len(segs) - 1 and t >= segs[k].end:
            k += 1
        gap = segs[k].face_gap
        n += 0 if gap is not None and gap[0] <= t < gap[1] else len(segs[k].faces)
    return n


# --------------------------------------------------------------------------- benchmark
def _mean_sd(values: Sequence[Optional[float]]) -> dict:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    if v.size == 0:
        return {'mean': None, 'sd': None, 'n': 0}
    return {'mean': round(float(v.mean()), 4), 'sd': round(float(v.std(ddof=1)), 4)
            if v.size > 1 else 0.0, 'n': int(v.size)}


def seed_row(seed: int, res: dict, counts: dict, wall: dict) -> dict:
    """The figures of one seed from an `evaluate_offline` result."""
    ab = res['ablation']
    age = res['latency_ms']['output_age']
    fol = res['follow']['fused']
    return {'seed': seed, 'uar_fused': ab['fused']['uar'],
            'uar_vision_only': ab['vision_only']['uar'], 'uar_voice_only': ab['voice_only']['uar'],
            'coverage': ab['fused']['coverage'],
            'coverage_vision_only': ab['vision_only']['coverage'],
            'coverage_voice_only': ab['voice_only']['coverage'],
            'output_age_p50_ms': age.get('p50'), 'output_age_p95_ms': age.get('p95'),
            'uar_vision_head': res['encoder_heads']['vision']['uar'],
            'uar_voice_head': res['encoder_heads']['voice']['uar'],
            'follow_median_s': fol['median_s'], 'followed': fol['followed'],
            'changes': fol['changes'], 'n_fused': ab['fused']['n'],
            'placements': counts, **wall}


FIGURES = ('uar_fused', 'uar_vision_only', 'uar_voice_only', 'uar_vision_head',
           'uar_voice_head', 'coverage', 'output_age_p50_ms', 'output_age_p95_ms',
           'follow_median_s', 'faces_tracked_per_shown')


def markdown(result: dict) -> str:
    """The stream table (per seed, then mean ± sd) as Markdown."""
    rows = result['seeds']
    face = result.get('params', {}).get('face_node', {})
    voice = result.get('params', {}).get('vocal_node', {})
    head = ('| seed | fused UAR | vision-only UAR | voice-only UAR | vision / voice head UAR | '
            'coverage | output age p50 / p95 [ms] | follow median [s] (followed) | '
            'faces tracked / shown | stream [s] | replay [s] |')
    lines = [f'# Stream benchmark: {result["faces"]} + speech {result["speech"]}', '',
             f'- bundle: `{result["bundle"]}`', f'- {result["note"]}',
             f'- CPU: {result.get("cpu", "not recorded")}',
             f'- face detector: {face.get("face_detector", "haar")}, min_face_size '
             f'{face.get("min_face_size")}; VAD: {voice.get("vad", "energy")}', '', head,
             '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']

    def f(x: Any, d: int = 3) -> str:
        return '-' if x is None else f'{x:.{d}f}'
    for r in rows:
        lines.append(f'| {r["seed"]} | {f(r["uar_fused"])} | {f(r["uar_vision_only"])} | '
                     f'{f(r["uar_voice_only"])} | {f(r.get("uar_vision_head"))} / '
                     f'{f(r.get("uar_voice_head"))} | {f(r["coverage"])} | '
                     f'{f(r["output_age_p50_ms"], 0)} / {f(r["output_age_p95_ms"], 0)} | '
                     f'{f(r["follow_median_s"], 2)} ({r["followed"]}/{r["changes"]}) | '
                     f'{f(r["faces_tracked_per_shown"], 2)} | '
                     f'{r["placements"]["seconds"]:.0f} | {r["replay_s"]:.0f} |')
    m = result['mean']

    def ms(k: str, d: int = 3) -> str:
        return '-' if m[k]['mean'] is None else f'{m[k]["mean"]:.{d}f} ± {m[k]["sd"]:.{d}f}'
    lines.append(f'| **mean ± sd** | **{ms("uar_fused")}** | {ms("uar_vision_only")} | '
                 f'{ms("uar_voice_only")} | {ms("uar_vision_head")} / {ms("uar_voice_head")} | '
                 f'{ms("coverage")} | {ms("output_age_p50_ms", 0)} / '
                 f'{ms("output_age_p95_ms", 0)} | {ms("follow_median_s", 2)} | '
                 f'{ms("faces_tracked_per_shown", 2)} | | |')
    p = rows[0]['placements'] if rows else {}
    lines += ['', 'Vision / voice head: the encoders\' own label per face per frame / per speech '
              'window, scored against the truth at its stamp, before the fusion head.']
    lines += ['', f'Placements (seed {rows[0]["seed"] if rows else "-"}): '
              + ', '.join(f'{k} {v}' for k, v in p.items() if k != 'speakers'), '',
              '![per-seed UAR and coverage](stream.png)', '']
    return '\n'.join(lines)


def plot(path: pathlib.Path, rows: Sequence[dict]) -> None:
    """Per-seed bars: fused / vision-only / voice-only UAR, coverage as a line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(rows))
    for j, (key, name) in enumerate((('uar_fused', 'fused'), ('uar_vision_only', 'vision only'),
                                     ('uar_voice_only', 'voice only'))):
        ax.bar(x + (j - 1) * 0.27, [r[key] or 0.0 for r in rows], 0.27, label=f'UAR {name}')
    ax.plot(x, [r['coverage'] for r in rows], 'k.--', label='coverage (fused)')
    ax.set_xticks(x, [f'seed {r["seed"]}' for r in rows])
    ax.set_ylim(0, 1)
    ax.axhline(1 / 6, color='grey', lw=0.8, ls=':')
    ax.legend(fontsize=7, ncol=4, loc='upper center', bbox_to_anchor=(0.5, 1.18))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def camera_geometry(size: tuple[int, int]) -> dict:
    """face_node parameters that give a frame of ``size`` the detection geometry of the robot's
    640x480 camera at the default parameters (detection_scale 0.5, min_face_size 48): the
    detector sees an image 320 px wide and the smallest face is the same fraction of the frame.
    Why: the stream bags are rendered at a quarter of the pixels to stay small and fast; the
    encoder gets the same 48x48 crop either way.  --params can override both."""
    scale = min(1.0, 320.0 / size[0])
    return {'detection_scale': scale, 'min_face_size': max(16, int(round(48 * size[0] / 640)))}


def default_data() -> pathlib.Path:
    """$EMOTION_DATA, else ../shared/data beside the checkout (as emotion-train)."""
    return default_data_root()


@contextlib.contextmanager
def stream_bag(face_items: Sequence[Sample], speech_items: Sequence[Sample], labels: list[str],
               seed: int, segments: int, size: tuple[int, int], fps: float,
               keep: Optional[pathlib.Path] = None) -> Iterator[tuple]:
    """One seed's stream built and written as a bag: yields (bag, clip, segments, the writer's
    summary).  The bag lives in a temporary folder removed on exit, or at ``keep``."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'stream_seed{seed}_'))
    bag = keep if keep is not None else tmp / 'bag'
    if bag.exists():
        shutil.rmtree(bag)
    bag.parent.mkdir(parents=True, exist_ok=True)
    try:
        clip, segs = build_stream_clip(face_items, speech_items, labels, seed, segments, size, fps)
        summary = write_clip(clip, bag, labels, 'mcap', 50.0, 5.0, START_NS, progress=False)
        yield bag, clip, segs, summary
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replay_seed(seed: int, *, face_items: list, speech_items: list, labels: list[str],
                 args: argparse.Namespace, fusion_cfg: Any, face_p: dict, vocal_p: dict,
                 out: pathlib.Path) -> tuple[dict, dict]:
    """One seed: its stream built, written as a bag and replayed offline (``seed_row`` and the
    node parameter values the replay used).  Module level, so that ``--jobs`` workers run it."""
    t0 = time.perf_counter()
    with stream_bag(face_items, speech_items, labels, seed, args.segments, args.size, args.fps,
                    out / 'bags' / f'seed{seed}' if args.keep_bags else None) as (
                        bag, clip, segs, summary):
        t1 = time.perf_counter()
        res = evaluate_offline(bag, out / f'seed{seed}', args.bundle, fusion_cfg,
                               video=False, progress=False, face_params=face_p,
                               vocal_params=vocal_p)
        t2 = time.perf_counter()
        size_mb = sum(p.stat().st_size for p in bag.rglob('*') if p.is_file()) / 1e6
    row = seed_row(seed, res, placement_counts(segs), {'build_s': round(t1 - t0, 1),
                                                       'replay_s': round(t2 - t1, 1),
                                                       'bag_mb': round(size_mb, 1)})
    row['frames'] = res['counts']['frames']
    row['bag_messages'] = summary['counts']
    shown = faces_in_view(segs, clip.fps, clip.n_frames)
    row['faces_tracked_per_shown'] = round(res['counts']['faces'] / max(1, shown), 4)
    return row, res['params']


def run_benchmark(args: argparse.Namespace) -> dict:
    check_jobs(args.jobs)
    data = pathlib.Path(args.data)
    faces_dir = pathlib.Path(args.faces) if args.faces else data / 'fer2013' / 'validation'
    bundle = ModelBundle.load(args.bundle)
    labels = list(bundle.labels)
    face_items = (load_image_folders(faces_dir, labels) if args.faces
                  else stream_faces(faces_dir, labels, args.faces_half))
    if not face_items:
        raise ValueError(f'--faces {faces_dir}: no face images of {labels}')
    speech_items = load_speech_spec(args.speech, data, labels, args.ravdess_calm)
    fusion_cfg, face_p, vocal_p = load_params(args.params)
    base = load_params([])[1]     # the packages' defaults: what --params did not change
    face_p = {**face_p, **{k: v for k, v in camera_geometry(args.size).items()
                           if face_p.get(k) == base.get(k)}}
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, params = [], None
    replay = functools.partial(_replay_seed, face_items=face_items, speech_items=speech_items,
                               labels=labels, args=args, fusion_cfg=fusion_cfg, face_p=face_p,
                               vocal_p=vocal_p, out=out)
    for row, used in map_ordered(replay, args.seeds, args.jobs):
        rows.append(row)
        params = used            # the same on every seed: the node parameter values
        log.info('seed %d: fused %.3f vision %.3f voice %.3f coverage %.3f follow %s s '
                 '(build %.0f s, replay %.0f s, %.0f MB)', row['seed'], row['uar_fused'] or 0,
                 row['uar_vision_only'] or 0, row['uar_voice_only'] or 0, row['coverage'],
                 row['follow_median_s'], row['build_s'], row['replay_s'], row['bag_mb'])
    note = (f'stream figures (not per-clip): {args.segments} segments of 3-10 s per seed, '
            f'{args.size[0]}x{args.size[1]} at {args.fps:g} fps, 16 kHz audio in 50 ms chunks; '
            f'each seed\'s bag replayed through the nodes\' own pipelines (emotion-eval bag '
            f'offline, default node parameters{" + --params" if args.params else ""}); '
            f'RAVDESS calm: {args.ravdess_calm}')
    faces_desc = str(faces_dir) if args.faces else f'{faces_dir} ({args.faces_half} half)'
    result = {'command': 'stream', 'bundle': str(bundle.path), 'faces': faces_desc,
              'speech': args.speech, 'labels': labels, 'seeds': rows,
              'mean': {k: _mean_sd([r[k] for r in rows]) for k in FIGURES}, 'note': note,
              'params': params,              # every node parameter value the replays used
              'cpu': cpu_summary()}
    plot(out / 'stream.png', rows)
    (out / 'stream.md').write_text(markdown(result))
    (out / 'stream.json').write_text(json.dumps(result, indent=2) + '\n')
    result['files'] = {k: str(out / n) for k, n in (('plot', 'stream.png'),
                                                    ('report_md', 'stream.md'),
                                                    ('metrics', 'stream.json'))}
    return result


# --------------------------------------------------------------------------- CLI glue
def _size(text: str) -> tuple[int, int]:
    return _parse_size(text)


def add_parser(sub: Any) -> None:
    """Register `stream` on emotion-eval's subparsers (evaluate.SUBCOMMANDS)."""
    p = sub.add_parser('stream', help='the stream benchmark: dev stream bags, scored as replayed',
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', type=pathlib.Path, default=default_data(),
                   help='data root with fer2013/, ravdess/, emodb/ (default: $EMOTION_DATA, '
                        'else ../shared/data beside the checkout)')
    p.add_argument('--faces', default=None,
                   help='face folder, all of it (default: the --faces-half of '
                        'DATA/fer2013/validation)')
    p.add_argument('--faces-half', choices=(STREAM_DEV, STREAM_FUSION, FUSION_VAL, 'all'),
                   default=STREAM_DEV,
                   help='which half of FER2013 validation (splits.stream_half): dev (default), '
                        'fusion, the half emotion-train stream-fusion trains the head on, or '
                        'fusion_val, the quarter of it that only validates the head (with '
                        '--speech ravdess:10: streams to choose node settings on without '
                        'scoring the dev half)')
    p.add_argument('--speech', default=stream_speech_spec(STREAM_DEV),
                   help='speech spec: ravdess[:AA,...] or emodb[:SS,...] (default: RAVDESS actors '
                        '11-20, the dev half; actors 01-06 train the vocal encoder (01-09 the '
                        'second encoder of its decision), 07-10 the stream-fusion head; EmoDB '
                        'only for bundles trained without those speakers) [%(default)s]')
    p.add_argument('--ravdess-calm', choices=('exclude', 'neutral'), default='exclude')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    p.add_argument('--segments', type=int, default=60, help='segments per seed (default 60)')
    p.add_argument('--size', type=_size, default=(320, 240), help='frame size (default 320x240)')
    p.add_argument('--fps', type=float, default=15.0, help='frame rate (default 15)')
    p.add_argument('--bundle', default=None, help='model bundle (default: the shipped one)')
    p.add_argument('--params', type=pathlib.Path, nargs='+', default=[], metavar='YAML',
                   help='node parameter files, as for emotion-eval bag')
    p.add_argument('--out', type=pathlib.Path, default=pathlib.Path('eval_stream_out'))
    p.add_argument('--keep-bags', action='store_true',
                   help='keep the bags in OUT/bags/seedN (default: a temporary folder each)')
    p.add_argument('--jobs', type=int, default=1,
                   help='seeds replayed at once, each in its own process (the same figures as '
                        'one at a time; each replay keeps about 1.3 cores busy, so the CPU '
                        'count / 1.3 is about the useful maximum) [%(default)s]')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format='[emotion-eval] %(levelname)s: %(message)s')
    try:
        res = run_benchmark(args)
    except (BagError, BundleError, MediaError, FileNotFoundError, ValueError) as exc:
        print(f'emotion-eval stream: error: {exc}', file=sys.stderr)
        return 2
    keys = ('command', 'speech', 'mean', 'files')
    sys.stdout.write(json.dumps({**{k: res[k] for k in keys}, 'seeds': [
        {k: r[k] for k in ('seed', *FIGURES)} for r in res['seeds']]}) + '\n')
    sys.stdout.flush()
    return 0
