#!/usr/bin/env python3
"""Bench of the voice channel in the stream: voice-only stream UAR against the per-clip UAR of the
same clips (printed, not asserted; issue 19, "the voice channel in the stream").

For each seed it plans the dev stream of ``emotion-eval stream`` (``stream_bench.build_stream_clip``,
same seeds, same segments, same speech: RAVDESS actors 11-20 by default) but renders no frames:
only the audio track goes, in 50 ms S16LE chunks as the bag writer cuts it, through
``eval_bag.OfflinePipeline`` (the nodes' own voice pipeline and the fusion runners, on the
stream's clock).  Without images the fusion runner's voice_only track steps exactly as in
``emotion-eval stream``, so its voice-only UAR is the benchmark's (to rounding of the bag's last
stamp).  Figures per seed:

* ``voice_only``: the fusion runner on voice alone, every estimate scored against the true label
  at its stamp (eval_bag.score), and its coverage;
* ``encoder per window``: the vocal encoder's own head on each speech window (label at the window
  centre), as eval_bag's ``encoder_heads.voice``;
* ``encoder per utterance``: the mean logits of the stream's speech windows that start inside each
  placed utterance (what a per-utterance decision could reach with this encoder in the stream);
* ``per clip``: the same placed clips, each whole through the bundle's vocal path as
  ``emotion-eval speech`` scores a file (active windows, mean logits), uncalibrated
  (``--calibration none``: the training population's statistics), and calibrated per speaker
  offline for reference;
* ``per clip, noise floor``: the same clips whole, uncalibrated, with the stream's microphone
  noise floor added (white noise at -60 dBFS RMS, as ``build_stream_clip`` lays under the
  track): the same audio the stream carries, scored per clip, so the difference to the stream
  is what windowing, voice activity and the stream's timing cost, not the noise.

    source scripts/env.sh && python bench/bench_voice_stream.py [--seeds 0 1] [--segments 30]
        [--set vocal_node:NAME=VALUE ...] [--set fusion_node:NAME=VALUE ...]

``--set`` overrides a node parameter for the replay (as ``emotion-eval bag --params``), so two
settings of the voice pipeline can be compared on the same streams.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import time

import numpy as np
import soundfile as sf

REPO = pathlib.Path(__file__).resolve().parents[1]
# the source tree first (an un-rebuilt colcon build must not hide what is measured)
sys.path[:0] = [str(REPO / 'bench'), str(REPO / 'training'), str(REPO / 'src' / 'emotion_perception'),
                str(REPO / 'src' / 'emotion_runtime')]

from table import print_table  # noqa: E402

from emotion_perception.audio_format import S16LE, decode_pcm, encode_pcm, to_mono  # noqa: E402
from emotion_runtime.model_bundle import ModelBundle  # noqa: E402
from emotion_training.datasets.folders import load_image_folders  # noqa: E402
from emotion_training.eval_bag import (  # noqa: E402
    NS,
    OfflinePipeline,
    Truth,
    coverage,
    load_params,
    score,
)
from emotion_training.evaluate import speech_logits  # noqa: E402
from emotion_training.metrics import summarise  # noqa: E402
from emotion_training.splits import STREAM_DEV, stream_speech_spec  # noqa: E402
from emotion_training.stream_bench import (  # noqa: E402
    START_NS,
    build_stream_clip,
    camera_geometry,
    load_speech_spec,
)

RATE, CHUNK_MS, TRUTH_HZ = 16000, 50.0, 5.0
#: the stream's microphone floor: build_stream_clip lays white noise of std 1e-3 under the track
STREAM_FLOOR = ('white', -60.0)
#: per-clip scores: (key, calibration, room noise)
CLIP_MODES = (('none', 'none', None), ('offline', 'offline', None), ('floor', 'none', STREAM_FLOOR))
CLIP_TITLES = {'none': 'calibration none', 'offline': 'calibration offline',
               'floor': 'calibration none, with the stream\'s -60 dBFS noise floor'}


def data_root() -> pathlib.Path:
    return pathlib.Path(os.environ.get('EMOTION_DATA') or REPO.parent / 'shared' / 'data')


def parse_sets(items: list[str]) -> dict[str, dict]:
    """['vocal_node:span_pooling=none', ...] -> {'vocal_node': {'span_pooling': 'none'}, ...}."""
    import yaml  # noqa: PLC0415 - YAML scalars as ROS parameter files spell them
    out: dict[str, dict] = {'vocal_node': {}, 'fusion_node': {}}
    for item in items:
        node, _, rest = item.partition(':')
        name, eq, value = rest.partition('=')
        if node not in out or not name or not eq:
            raise SystemExit(f'--set {item!r}: use vocal_node:NAME=VALUE or fusion_node:NAME=VALUE')
        out[node][name] = yaml.safe_load(value)
    return out


def replay_voice(bundle, track: np.ndarray, duration: float, start_ns: int, fusion_cfg,
                 face_params: dict, vocal_params: dict):
    """The audio track through OfflinePipeline as the bag's 50 ms S16LE chunks; returns it."""
    pipe = OfflinePipeline(bundle, fusion_cfg, face_params, vocal_params)
    pipe.bench_windows = []          # (start stamp [s], the window's own logits) of speech windows
    pipe.bench_published = {}        # start stamp [ns] -> the logits published with the window
    push = pipe.voice.push

    def recorded_push(*args):
        result, windows = push(*args)
        for w in windows:
            own = getattr(w, 'window_logits', None)
            own = w.logits if own is None else own
            if w.speech and own is not None:
                pipe.bench_windows.append((w.stamp, own))
            if w.logits is not None:
                pipe.bench_published[int(round(w.stamp * NS))] = w.logits
        return result, windows
    pipe.voice.push = recorded_push
    n = int(round(RATE * CHUNK_MS / 1000.0))
    pcm = np.clip(track, -1.0, 1.0).astype(np.float32)
    last = start_ns
    for a in range(0, pcm.size, n):
        ns = start_ns + int(round(a / RATE * 1e9))
        x = to_mono(decode_pcm(encode_pcm(pcm[a:a + n], S16LE), S16LE, 1))
        pipe.on_audio(ns, 'microphone_link', RATE, x)
        last = ns
    # the bag's last message: the last frame, truth sample or chunk stamp
    pipe.finish(max(last, start_ns + int(round((duration - 1e-3) * 1e9))))
    return pipe


def truth_of(segs, duration: float, start_ns: int):
    """The ground truth the bag writer records (5 Hz samples of each segment's label)."""
    samples = []
    for t in np.arange(0.0, duration, 1.0 / TRUTH_HZ):
        lab = next((s.label for s in segs if s.start <= t < s.end), None)
        if lab is not None:
            samples.append((start_ns + int(round(t * 1e9)), lab))
    return Truth(samples, max_gap_ns=int(max(2.5 / TRUTH_HZ * NS, 0.6 * NS)))


def utterance_scores(pipe, segs, speech_items, labels, start_ns: int) -> tuple[list, list]:
    """(y, pred) per placed utterance from the stream's own speech windows: mean encoder logits
    of the windows that start inside the utterance (none: the utterance is not decided)."""
    wins = [(int(round(w_stamp * 1e9)), lg) for w_stamp, lg in pipe.bench_windows]
    idx = {lab: i for i, lab in enumerate(labels)}
    y, pred = [], []
    for seg in segs:
        for u, i in seg.utterances:
            a = start_ns + int(round(u * 1e9))
            b = min(start_ns + int(round(seg.end * 1e9)),
                    a + int(round(pipe.bench_lengths[i] * 1e9)))
            lg = [g for s, g in wins if a <= s < b]
            if lg:
                y.append(idx[speech_items[i].label])
                pred.append(int(np.argmax(np.mean(lg, axis=0))))
    return y, pred


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    ap.add_argument('--segments', type=int, default=30)
    ap.add_argument('--speech', default=stream_speech_spec(STREAM_DEV),
                    help="speech spec as emotion-eval stream's (default: its dev speech, "
                         '%(default)s)')
    ap.add_argument('--data', type=pathlib.Path, default=data_root())
    ap.add_argument('--bundle', default=None)
    ap.add_argument('--set', dest='sets', nargs='*', default=[], metavar='NODE:NAME=VALUE')
    ap.add_argument('--no-per-clip', action='store_true', help='skip the per-clip figures')
    args = ap.parse_args()

    sets = parse_sets(args.sets)
    if not (args.data / 'ravdess').is_dir() or not (args.data / 'fer2013' / 'validation').is_dir():
        print(f'bench_voice_stream: needs {args.data}/ravdess and {args.data}/fer2013/validation '
              '(--data DIR or $EMOTION_DATA)', file=sys.stderr)
        return 2
    bundle = ModelBundle.load(args.bundle)
    labels = list(bundle.labels)
    faces = load_image_folders(args.data / 'fer2013' / 'validation', labels)
    speech = load_speech_spec(args.speech, args.data, labels)
    fusion_cfg, face_p, vocal_p = load_params([])
    face_p = {**face_p, **camera_geometry((320, 240))}
    vocal_p = {**vocal_p, **sets['vocal_node']}
    if sets['fusion_node']:
        fusion_cfg = dataclasses.replace(fusion_cfg, **sets['fusion_node'])
    rows, placed_all = [], []
    head = {'voice_only': [], 'window': [], 'utterance': [],
            **{f'clip_{key}': [] for key, _, _ in CLIP_MODES}}
    for seed in args.seeds:
        t0 = time.perf_counter()
        clip, segs = build_stream_clip(faces, speech, labels, seed, args.segments)
        pipe = replay_voice(bundle, clip.audio, clip.duration, START_NS, fusion_cfg, face_p,
                            vocal_p)
        truth = truth_of(segs, clip.duration, START_NS)
        vo = score(pipe.preds['voice_only'], truth, labels)
        # the same estimates (stamps, repeats) with the published voice logits' own label: what
        # voice_only would score if the fusion passed the vocal head's decision through
        head_preds = [dataclasses.replace(p, expression=labels[int(np.argmax(
            pipe.bench_published[p.stamp_ns]))]) for p in pipe.preds['voice_only']
            if p.stamp_ns in pipe.bench_published]
        hd = score(head_preds, truth, labels)
        cov = coverage(pipe.preds['voice_only'], truth)
        wy = [(truth.at(s), lab) for s, lab in pipe.voice_head]
        wy = [(a, b) for a, b in wy if a is not None]
        win = summarise([labels.index(a) for a, _ in wy], [labels.index(b) for _, b in wy],
                        labels)
        placed = [i for s in segs for _, i in s.utterances]
        pipe.bench_lengths = {i: sf.info(str(speech[i].path)).duration for i in placed}
        uy, up = utterance_scores(pipe, segs, speech, labels, START_NS)
        utt = summarise(uy, up, labels)
        row = {'seed': seed, 'voice_only': vo, 'coverage': cov, 'window': win, 'utterance': utt,
               'head': hd}
        if not args.no_per_clip:
            items = [speech[i] for i in placed]
            for key, mode, noise in CLIP_MODES:
                _, lg, y, _ = speech_logits(bundle, items, False, mode, noise)
                row[f'clip_{key}'] = summarise(y, lg.argmax(1), labels)
                head[f'clip_{key}'].append((y, lg.argmax(1)))
        placed_all += placed
        row['wall_s'] = time.perf_counter() - t0
        rows.append(row)
        print(f'seed {seed}: voice_only {vo["uar"]:.3f} (n {vo["n"]}), window '
              f'{win["uar"]:.3f}, utterance {utt["uar"]:.3f} (n {utt["n"]}), clips '
              f'{len(placed)}, {row["wall_s"]:.0f} s', file=sys.stderr)
    table = []
    for r in rows:
        s = f'seed {r["seed"]}'
        table += [
            (s, 'voice-only stream UAR (fusion runner)', 'per clip - 0.05',
             f'{r["voice_only"]["uar"]:.3f} (n {r["voice_only"]["n"]}, coverage '
             f'{r["coverage"]:.3f})'),
            (s, 'same estimates, published voice logits\' label UAR', '-',
             f'{r["head"]["uar"]:.3f} (n {r["head"]["n"]})'),
            (s, 'encoder head per speech window UAR', '-',
             f'{r["window"]["uar"]:.3f} (n {r["window"]["n"]})'),
            (s, 'encoder per placed utterance (stream windows) UAR', '-',
             f'{r["utterance"]["uar"]:.3f} (n {r["utterance"]["n"]})')]
        for key, _, _ in CLIP_MODES:
            if f'clip_{key}' in r:
                c = r[f'clip_{key}']
                table.append((s, f'per clip, same clips, {CLIP_TITLES[key]}, UAR', '-',
                              f'{c["uar"]:.3f} (n {c["n"]})'))
    if len(rows) > 1:
        m = np.mean([r['voice_only']['uar'] for r in rows])
        table.append(('mean', 'voice-only stream UAR', '-', f'{m:.3f}'))
        for key, _, _ in CLIP_MODES:
            if f'clip_{key}' in rows[0]:
                m = np.mean([r[f'clip_{key}']['uar'] for r in rows])
                table.append(('mean', f'per clip, {CLIP_TITLES[key]}, UAR', '-', f'{m:.3f}'))
            if head[f'clip_{key}']:
                y = np.concatenate([a for a, _ in head[f'clip_{key}']])
                p = np.concatenate([b for _, b in head[f'clip_{key}']])
                c = summarise(y, p, labels)
                table.append(('pooled', f'per clip, {CLIP_TITLES[key]}, UAR', '-',
                              f'{c["uar"]:.3f} (n {c["n"]}, {len(set(placed_all))} distinct)'))
    if args.sets:
        table.append(('params', 'overrides', '-', ' '.join(args.sets)))
    print_table(table)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
