"""`emotion-train stream-fusion`: train the fusion LSTM on the stream the robot publishes.

    emotion-train stream-fusion [--bundle DIR] [--seeds 100 ... 109] [--val-seeds 200 201]
                                [--one-track-seeds 110 ... 119]
                                [--segments 60] [--out runs/stream_fusion] [--epochs 40]

Why: the fusion head of a bundle learnt from pseudo-pairs (one face and one voice window of a
label, always both present, no lag) never sees what the nodes give it on a robot: detector misses,
frames of a face that moved, silence, VAD windows of the wrong speaker's pause, speaker
calibration warming up, voice windows 0.5 s behind the face, a track that carries on across a
change of the true label.  Here it learns from exactly that.

1. **Training streams.**  For each seed, a stream clip is built as the stream benchmark builds its
   dev bags (`stream_bench.build_stream_clip`: segments of 3-10 s, pauses, silent segments, face
   gaps, two faces), but from the fusion half of the data (`splits.STREAM_FUSION`): the
   ``fusion`` half of FER2013 validation (the vision encoders never trained on it, so its features
   are as reliable as a robot's, not as a training set's) and RAVDESS actors 07-10 (the vocal
   encoder trained on 01-06, so these voices are as new to it as a robot's).  The stream
   benchmark scores the other half (``dev``) and actors 11-20.  Validation streams (early
   stopping) take a quarter of the fusion half's faces and actor 10; training streams the rest
   (actors 07-09), so the head is not selected for memorising faces or utterances.
   Ten more training streams (``--one-track-seeds``) are replayed with face_node's
   re-identification off: there one track carries on across a change of the true label, as for
   one person who changes expression, so the head learns to follow a change within a track too.
2. **Replay.**  The clip is written as a bag and replayed through the nodes' own pipelines
   (`eval_bag.OfflinePipeline`, the code face_node, vocal_node and fusion_node run); every step
   of the three fusion runners (fused, vision only, voice only) is recorded as the model saw it
   (`FusionEngine.input_observer`): per row the face id, whether its LSTM state was fresh, the
   two embeddings and presence flags, and the true label at the estimate's stamp.  A seed's steps
   are cached in ``OUT/steps/seedN.npz``; a later run with the same bundle reuses them.
3. **Training.**  Per runner and face, the rows form sequences that start where the engine
   started the track from zero state.  The LSTM head (`models.fusion_model.FusionModel`, the
   architecture of the bundle's head) is trained on random windows of these sequences with a
   class-balanced cross-entropy on every labelled step, early-stopped on the step UAR of the
   validation seeds' full sequences (`engine.fit`: checkpoints, curves, collapse checks of the
   fusion input).  Voice is dropped from some training windows (``--voice-dropout``) so that
   the head keeps working while nobody speaks, and half of the embedding values are zeroed
   (``--input-dropout``) so that it cannot memorise the few hundred faces and utterances.
   ``--prior-heads`` puts the encoders' own heads inside the model as a frozen starting point;
   ``--head-inputs`` feeds the LSTM their log-probabilities instead of the embeddings,
   ``--vision-head-input`` only the vision head's (with the voice embedding).  On the
   robot fusion_node multiplies a face row's output by the vocal encoder's decision carried by
   its voice window (``vocal_weight``) and publishes that decision alone on the audio-only track
   (``voice_only_output: vocal``; the head still steps that track).  The steps record that
   decision (``al``); ``--vocal-weight W`` trains and early-stops on the face rows as published
   with ``vocal_weight: W`` (`published_logits`), 0 on the head's own output.  The log gives the
   validation runners both ways.
4. **Bundle.**  The best head replaces the bundle's ``fusion_step.onnx`` in ``OUT/bundle``
   (`export.replace_in_bundle`: the encoders are copied byte for byte, the manifest says how the
   head was trained, the bundle is loaded back and checked).  Judge it with
   ``emotion-eval stream --bundle OUT/bundle``.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import pathlib
import sys
import time
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from emotion_runtime.model_bundle import BundleError, ModelBundle

from .bag_cli import _size
from .config import default_data_root
from .datasets.common import read_face
from .diagnostics import DEFAULT_THRESHOLD
from .engine import FitConfig, fit, load_checkpoint
from .media import _read_audio
from .metrics import summarise
from .parallel import check_jobs, map_ordered
from .seeding import seed_everything
from .splits import (
    FUSION_TRAIN,
    FUSION_VAL,
    STREAM_FUSION,
    STREAM_RAVDESS_ACTORS,
    VOCAL_TRAIN,
    stream_faces,
    stream_speech_spec,
)
from .stream_bench import camera_geometry, load_speech_spec, stream_bag

log = logging.getLogger('emotion_train')

RUNNERS = ('fused', 'vision_only', 'voice_only')
#: face_node without re-identification: one track carries on across a change of the true label,
#: as for one person who changes expression (the stream's faces change person at every change)
ONE_TRACK = {'identity_threshold': 0.0}
NS = 1_000_000_000
#: per-row arrays of a recorded sequence: the head's inputs, the vocal decision, the true label
SEQ_KEYS = ('ve', 'vp', 'ae', 'ap', 'al', 'y')
#: the ones `published_logits` reads
INPUT_KEYS = SEQ_KEYS[:-1]


# --------------------------------------------------------------------------- recording
def record_steps(bag: pathlib.Path, bundle_path: Optional[str], fusion_cfg: Any = None,
                 face_params: Optional[dict] = None, vocal_params: Optional[dict] = None,
                 progress: bool = False) -> dict[str, np.ndarray]:
    """Replay ``bag`` through the nodes' pipelines and return every fusion step's inputs.

    One row per (runner, step, face): ``runner`` (index into RUNNERS), ``t_ns`` (step time),
    ``stamp_ns`` (the estimate's stamp), ``face`` (an integer per face id), ``fresh`` (the row's
    LSTM state was zero), ``ve``/``vp``/``ae``/``ap`` (the model's inputs), ``al`` (the voice
    window's own logits, the vocal decision fusion_node multiplies in; zeros without one) and
    ``y`` (index of the true label at ``stamp_ns`` in the bundle's labels, -1 where none or
    outside them).
    """
    from .eval_bag import (  # noqa: PLC0415 - cv2, onnxruntime, rosbags: replay only
        AUDIO_TOPIC,
        IMAGE_TOPIC,
        TRUTH_TOPIC,
        OfflinePipeline,
        _warm_up,
        find_topic,
        image_connections,
        open_bag,
        play,
        read_truth,
    )
    rows: dict[str, list] = {k: [] for k in ('runner', 't_ns', 'stamp_ns', 'face', 'fresh',
                                              *INPUT_KEYS)}
    ids: dict[str, int] = {}

    def observer(runner: int):
        def on_step(s: Any) -> None:
            for i, fid in enumerate(s.face_ids):
                rows['runner'].append(runner)
                rows['t_ns'].append(s.t_ns)
                rows['stamp_ns'].append(s.stamps_ns[i])
                rows['face'].append(ids.setdefault(fid, len(ids)))
                rows['fresh'].append(bool(s.fresh[i]))
            rows['ve'].append(s.vision_emb)
            rows['vp'].append(s.vision_present)
            rows['ae'].append(s.voice_emb)
            rows['ap'].append(s.voice_present)
            rows['al'].append(s.voice_logits)
        return on_step

    bundle = ModelBundle.load(bundle_path)
    reader = open_bag(bag)
    try:
        truth = read_truth(reader, bag, TRUTH_TOPIC)
        pipe = OfflinePipeline(bundle, fusion_cfg, face_params, vocal_params)
        for k, name in enumerate(RUNNERS):
            pipe.engines[name].input_observer = observer(k)
        _warm_up(bundle)
        play(pipe, reader, bag, image_connections(reader, IMAGE_TOPIC),
             find_topic(reader, AUDIO_TOPIC), None, progress)
    finally:
        reader.close()
    index = {lab: i for i, lab in enumerate(bundle.labels)}
    y = [index.get(truth.at(s) or '', -1) for s in rows['stamp_ns']]
    ev, ea = bundle.vision_embedding_size, bundle.voice_embedding_size

    def cat(key: str, width: int) -> np.ndarray:
        parts = rows[key]
        return (np.concatenate(parts).astype(np.float32) if parts
                else np.zeros((0, width) if width else 0, np.float32))
    return {'runner': np.asarray(rows['runner'], np.int8),
            't_ns': np.asarray(rows['t_ns'], np.int64),
            'stamp_ns': np.asarray(rows['stamp_ns'], np.int64),
            'face': np.asarray(rows['face'], np.int32),
            'fresh': np.asarray(rows['fresh'], bool),
            've': cat('ve', ev), 'vp': cat('vp', 0), 'ae': cat('ae', ea), 'ap': cat('ap', 0),
            'al': cat('al', len(bundle.labels)), 'y': np.asarray(y, np.int64)}


def sequences(steps: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Split recorded rows into the sequences the engine ran: per runner and face, in step
    order, a new sequence wherever the row's state was fresh.  Each gets a ``runner`` name."""
    out = []
    for r in np.unique(steps['runner']):
        for f in np.unique(steps['face'][steps['runner'] == r]):
            idx = np.flatnonzero((steps['runner'] == r) & (steps['face'] == f))
            idx = idx[np.argsort(steps['t_ns'][idx], kind='stable')]
            starts = [0] + [k for k in range(1, idx.size) if steps['fresh'][idx[k]]] + [idx.size]
            for a, b in zip(starts[:-1], starts[1:]):
                sel = idx[a:b]
                out.append({'runner': RUNNERS[int(r)],
                            **{k: steps[k][sel] for k in SEQ_KEYS}})
    return out


# --------------------------------------------------------------------------- training
class StreamFusionStage:
    """`engine.fit` stage: the fusion head on windows of recorded stream sequences."""

    name = 'stream_fusion'

    def __init__(self, model: Any, labels: list[str], train: list[dict], val: list[dict],
                 window: int, batch_size: int, steps_per_epoch: int, voice_dropout: float,
                 seed: int, balance_power: float = 1.0, input_dropout: float = 0.0,
                 vocal_weight: float = 0.0) -> None:
        self.model, self.labels = model, labels
        self.vocal_weight = vocal_weight
        self.train, self.val = [s for s in train if s['y'].size], val
        self.window, self.batch_size = window, batch_size
        self._steps, self.voice_dropout = steps_per_epoch, voice_dropout
        self.input_dropout = input_dropout
        self.rng = np.random.default_rng(seed)
        counts = np.bincount(np.concatenate([s['y'][s['y'] >= 0] for s in self.train]),
                             minlength=len(labels)).astype(np.float64)
        if not counts.any():
            raise ValueError('no labelled training steps: more seeds or segments')
        missing = [lab for lab, c in zip(labels, counts) if c == 0]
        if missing:
            log.warning('no training steps of %s: the head cannot learn them (more seeds or '
                        'segments)', missing)
        weight = np.zeros(len(labels))
        weight[counts > 0] = (counts[counts > 0].mean() / counts[counts > 0]) ** balance_power
        self.class_weight = torch.tensor(weight, dtype=torch.float32)
        lengths = np.array([s['y'].size for s in self.train], np.float64)
        self.p_seq = lengths / lengths.sum()      # windows drawn in proportion to length

    def steps_per_epoch(self) -> int:
        return self._steps

    def _window(self, s: dict) -> dict:
        n = s['y'].size
        a = int(self.rng.integers(0, max(1, n - self.window + 1)))
        w = {k: s[k][a:a + self.window] for k in SEQ_KEYS}
        if self.voice_dropout > 0 and w['vp'].any() and self.rng.random() < self.voice_dropout:
            w['ap'] = np.zeros_like(w['ap'])    # a window in which nobody spoke
        if self.input_dropout > 0:   # against memorising the few hundred faces and utterances
            for k in ('ve', 'ae'):
                keep = self.rng.random(w[k].shape) >= self.input_dropout
                w[k] = w[k] * keep / (1.0 - self.input_dropout)
        return w

    def _batch(self, seqs: Sequence[dict]) -> dict[str, torch.Tensor]:
        T = max(s['y'].size for s in seqs)
        n = len(seqs)
        ev, ea = seqs[0]['ve'].shape[1], seqs[0]['ae'].shape[1]
        b = {'ve': np.zeros((n, T, ev), np.float32), 'vp': np.zeros((n, T), np.float32),
             'ae': np.zeros((n, T, ea), np.float32), 'ap': np.zeros((n, T), np.float32),
             'al': np.zeros((n, T, len(self.labels)), np.float32),
             'y': np.full((n, T), -1, np.int64)}
        for i, s in enumerate(seqs):
            m = s['y'].size
            for k in b:
                b[k][i, :m] = s[k]
        return {k: torch.from_numpy(v) for k, v in b.items()}

    def train_batches(self, epoch: int) -> Iterable[dict]:
        for _ in range(self._steps):
            pick = self.rng.choice(len(self.train), self.batch_size, p=self.p_seq)
            yield self._batch([self._window(self.train[i]) for i in pick])

    def loss(self, b: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = published_logits(self.model, b, self.vocal_weight)
        y = b['y']
        mask = y >= 0
        loss = F.cross_entropy(logits[mask], y[mask], weight=self.class_weight,
                               label_smoothing=0.05)
        return loss, logits[mask].detach(), y[mask]

    def evaluate(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Step UAR over the validation seeds' full sequences, from zero state as on the robot."""
        self.model.eval()
        y_t, y_p, fin = [], [], []
        with torch.no_grad():
            for s in self.val:
                b = self._batch([s])
                logits = published_logits(self.model, b, self.vocal_weight)
                keep = s['y'] >= 0
                y_t.append(s['y'][keep])
                y_p.append(logits[0].argmax(-1).numpy()[keep])
                if sum(x.shape[0] for x in fin) < 2000:
                    fin.append(self.model.step_input(b['ve'][0], b['vp'][0], b['ae'][0],
                                                     b['ap'][0]).numpy())
        return (np.concatenate(y_t), np.concatenate(y_p),
                {'fusion_input': np.concatenate(fin)[:2000]})

    def checkpoint_extra(self) -> dict:
        return {'model_config': self.model.config}


def published_logits(model: Any, b: dict, vocal_weight: float) -> torch.Tensor:
    """The head's logits on batch ``b`` as fusion_node publishes them with ``vocal_weight``: a
    row with a face and a voice window carrying logits adds ``vocal_weight`` x the window's
    log-probabilities (the engine's head probabilities x vocal decision ** weight,
    renormalised); every other row is the head's alone."""
    logits, _ = model(b['ve'], b['vp'], b['ae'], b['ap'])
    if vocal_weight <= 0:
        return logits
    al = b['al']
    with_vocal = (b['vp'] > 0) & (b['ap'] > 0) & (al != 0).any(-1)
    return logits + (vocal_weight * with_vocal[..., None].to(logits.dtype) *
                     F.log_softmax(al, dim=-1))


def runner_scores(model: Any, seqs: Sequence[dict], labels: Sequence[str],
                  vocal_weight: float = 0.0) -> dict:
    """Step UAR per runner (fused / vision_only / voice_only) of ``model`` on ``seqs``, face
    rows as published with ``vocal_weight`` (`published_logits`)."""
    out = {}
    model.eval()
    with torch.no_grad():
        for name in RUNNERS:
            y_t, y_p = [], []
            for s in (s for s in seqs if s['runner'] == name):
                t = {k: torch.from_numpy(s[k])[None] for k in INPUT_KEYS}
                logits = published_logits(model, t, vocal_weight)
                keep = s['y'] >= 0
                y_t.append(s['y'][keep])
                y_p.append(logits[0].argmax(-1).numpy()[keep])
            if y_t:
                r = summarise(np.concatenate(y_t), np.concatenate(y_p), list(labels))
                out[name] = {'n': int(r['n']), 'uar': round(float(r['uar']), 4),
                             'accuracy': round(float(r['accuracy']), 4)}
    return out


# --------------------------------------------------------------------------- encoder heads
def linear_heads(bundle: ModelBundle, faces: Sequence[Any], speech: Sequence[Any],
                 max_faces: int = 1500, max_clips: int = 200,
                 require: Sequence[str] = ('vision', 'voice')) -> dict:
    """The encoders' heads as linear maps (logits = W @ embedding + b), fitted by least squares
    to (embedding, logits) pairs the bundle's own graphs give for real faces and speech windows
    (their heads are linear layers on the embedding; an int8 graph makes it nearly so).

    Returns {'vision': (W, b), 'voice': (W, b), 'fit': {...}} where fit gives per modality the
    pairs, the largest logit error and the share of pairs whose argmax the map reproduces.
    A modality in ``require`` whose map reproduces under 97 % of the argmaxes raises ValueError;
    the others' maps are returned as fitted."""
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(faces))[:max_faces]
    crops = [read_face(faces[i].path) for i in pick]
    ve, vl = zip(*(bundle.encode_faces(crops[k:k + 256]) for k in range(0, len(crops), 256)))
    rate, n, hop = bundle.sample_rate, bundle.window_samples, int(bundle.hop_seconds *
                                                                  bundle.sample_rate)
    ae, al = [], []
    for i in rng.permutation(len(speech))[:max_clips]:
        x = _read_audio(speech[i].path, rate)
        wins = [x[a:a + n] for a in range(0, max(1, x.size - n + 1), hop) if x[a:a + n].size == n]
        if wins:
            e, lg = bundle.encode_voice_windows(wins, rate)
            ae.append(e)
            al.append(lg)
    out: dict = {'fit': {}}
    for name, e, lg in (('vision', ve, vl), ('voice', ae, al)):
        if not e:
            raise ValueError(f'no {name} pairs to fit the {name} head on')
        E, L = np.concatenate(e).astype(np.float64), np.concatenate(lg).astype(np.float64)
        A = np.hstack([E, np.ones((E.shape[0], 1))])
        sol = np.linalg.lstsq(A, L, rcond=None)[0]
        fit = A @ sol
        agree = float((fit.argmax(1) == L.argmax(1)).mean())
        out[name] = (sol[:-1].T.astype(np.float32), sol[-1].astype(np.float32))
        out['fit'][name] = {'pairs': int(E.shape[0]), 'max_abs_logit_error':
                            round(float(np.abs(fit - L).max()), 4), 'argmax_agreement':
                            round(agree, 4)}
        if agree < 0.97 and name in require:
            raise ValueError(f'the {name} encoder\'s head is not linear in its embedding '
                             f'(argmax agreement {agree:.3f}): train without --prior-heads '
                             f'and --head-inputs' + (' (--vision-head-input reads only the '
                                                     'vision head)' if name == 'voice' else ''))
    return out


# --------------------------------------------------------------------------- the run
def build_steps(args: argparse.Namespace, bundle: ModelBundle, seeds: Sequence[int],
                out: pathlib.Path, part: str = FUSION_TRAIN,
                face_overrides: Optional[dict] = None) -> dict[int, dict[str, np.ndarray]]:
    """Each seed's recorded steps from the faces and speech of ``part`` (fusion_train or
    fusion_val), face_node's defaults updated by ``face_overrides``: from OUT/steps/PART_seedN.npz
    when it was recorded with these encoders and settings, else built, replayed and cached."""
    from .eval_bag import load_params  # noqa: PLC0415 - PyYAML
    labels = list(bundle.labels)
    data = pathlib.Path(args.data)
    faces = stream_faces(data / 'fer2013' / 'validation', labels, part)
    speech = load_speech_spec(stream_speech_spec(part), data, labels, 'exclude')
    if not faces:
        raise ValueError(f'no FER2013 validation faces of {labels} under {data}')
    fusion_cfg, face_p, vocal_p = load_params(getattr(args, 'params', None) or [])
    face_p = {**face_p, **camera_geometry(args.size), **(face_overrides or {})}
    files = bundle.manifest['files']       # the encoders make the steps; the fusion head not
    key = {'part': part, 'encoders': {k: files[bundle.manifest[k]['file']]
                                      for k in ('vision', 'vocal')},
           'segments': args.segments,
           'size': list(args.size), 'fps': args.fps, 'faces': len(faces), 'speech': len(speech),
           'face_params': face_p, 'vocal_params': vocal_p, 'arrays': list(SEQ_KEYS)}
    cache = out / 'steps'
    cache.mkdir(parents=True, exist_ok=True)
    result, todo = {}, []
    for seed in seeds:
        path = cache / f'{part}_seed{seed}.npz'
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                if json.loads(str(z['key'])) == json.loads(json.dumps(key, default=str)):
                    result[seed] = {k: z[k] for k in z.files if k != 'key'}
                    log.info('%s seed %d: %d recorded rows from %s', part, seed,
                             result[seed]['y'].size, path)
                    continue
        todo.append(seed)
    record = functools.partial(
        _record_seed, faces=faces, speech=speech, labels=labels, segments=args.segments,
        size=tuple(args.size), fps=args.fps, bundle_path=str(bundle.path), fusion_cfg=fusion_cfg,
        face_p=face_p, vocal_p=vocal_p, progress=not args.quiet and args.jobs == 1)
    for seed, (steps, seconds) in zip(todo, map_ordered(record, todo, args.jobs)):
        np.savez_compressed(cache / f'{part}_seed{seed}.npz', key=json.dumps(key, default=str),
                            **steps)
        result[seed] = steps
        log.info('%s seed %d: replayed in %.0f s, %d rows (%s)', part, seed, seconds,
                 steps['y'].size, ', '.join(f'{n} {int((steps["runner"] == k).sum())}'
                                            for k, n in enumerate(RUNNERS)))
    return {seed: result[seed] for seed in seeds}


def _record_seed(seed: int, *, faces: list, speech: list, labels: list[str], segments: int,
                 size: tuple[int, int], fps: float, bundle_path: str, fusion_cfg: Any,
                 face_p: dict, vocal_p: dict, progress: bool) -> tuple[dict, float]:
    """One seed's stream built, written as a bag and replayed (``record_steps``), with the
    seconds it took.  Module level, so that ``--jobs`` workers run it."""
    t0 = time.perf_counter()
    with stream_bag(faces, speech, labels, seed, segments, size, fps) as (bag, *_):
        steps = record_steps(bag, bundle_path, fusion_cfg, face_p, vocal_p, progress=progress)
    return steps, time.perf_counter() - t0


def _heard_stream_voices(bundle: ModelBundle, decision: bool = False) -> list[str]:
    """The fusion streams' RAVDESS speakers that the bundle's vocal encoder trained on, where
    its manifest records them (``training.vocal.split``, written by emotion-export
    --from-bundle); with ``decision``, those that the encoders added to its decision heard
    instead (``vocal.decision_members``: the head never reads them unless trained with
    ``--vocal-weight``)."""
    if decision:
        splits = [m.get('split') or {} for m in bundle.manifest['vocal'].get(
            'decision_members') or []]
    else:
        splits = [((bundle.manifest.get('training') or {}).get('vocal') or {}).get('split') or {}]
    trained = {sp for split in splits for sp in split.get('train_speakers') or []}
    fusion = {f'ravdess:{a}' for a in STREAM_RAVDESS_ACTORS[STREAM_FUSION]}
    return sorted(trained & fusion)


def run(args: argparse.Namespace) -> dict:
    from emotion_training.models.fusion_model import FusionModel  # noqa: PLC0415 - torch model

    from .export import export_fusion_head  # noqa: PLC0415
    check_jobs(args.jobs)
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    bundle = ModelBundle.load(args.bundle)
    labels = list(bundle.labels)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    overlap = set(args.seeds) & set(args.val_seeds)
    if overlap:
        raise ValueError(f'--seeds and --val-seeds share {sorted(overlap)}')
    one = set(args.one_track_seeds) & set(args.seeds + args.val_seeds)
    if one:
        raise ValueError(f'--one-track-seeds share {sorted(one)} with --seeds/--val-seeds')
    heard = _heard_stream_voices(bundle)
    if heard:
        log.warning('the bundle\'s vocal encoder trained on %s, whose voices are in the fusion '
                    'streams: the head will learn to trust the voice more than it should on a '
                    'robot (train the vocal encoder on RAVDESS actors %s and EmoDB only)',
                    heard, ','.join(STREAM_RAVDESS_ACTORS[VOCAL_TRAIN]))
    heard = _heard_stream_voices(bundle, decision=True)
    if heard and args.vocal_weight > 0:
        log.warning('an encoder in the vocal decision trained on %s, whose voices are in the '
                    'fusion streams: with --vocal-weight %g the head trains on a decision that '
                    'reads those voices better than a robot\'s', heard, args.vocal_weight)
    steps = build_steps(args, bundle, args.seeds, out, FUSION_TRAIN)
    steps.update(build_steps(args, bundle, args.one_track_seeds, out, FUSION_TRAIN, ONE_TRACK))
    vsteps = build_steps(args, bundle, args.val_seeds, out, FUSION_VAL) if args.val_seeds else {}
    if args.record_only:
        return {'bundle': None, 'val_per_runner': {}, 'steps': str(out / 'steps'),
                'recorded': {f'{part}_seed{s}': int(v['y'].size)
                             for part, d in ((FUSION_TRAIN, steps), (FUSION_VAL, vsteps))
                             for s, v in d.items()}}
    val_seeds = list(args.val_seeds)
    train_seqs = [s for seed in [*args.seeds, *args.one_track_seeds]
                  for s in sequences(steps[seed])]
    val_seqs = [s for seed in val_seeds for s in sequences(vsteps[seed])]
    if not val_seqs:
        log.warning('no validation streams: early stopping on the training streams')
        val_seqs = train_seqs
    arch = bundle.manifest['fusion'].get('architecture', {})
    va = bundle.manifest['valence_arousal']
    model = FusionModel(bundle.vision_embedding_size, bundle.voice_embedding_size, len(labels),
                        [va[k] for k in labels], hidden_size=bundle.hidden_size,
                        num_layers=bundle.num_layers, dropout=float(arch.get('dropout', 0.2)),
                        prior_heads=args.prior_heads, head_inputs=args.head_inputs,
                        vision_head_input=args.vision_head_input)
    heads_fit = None
    if args.prior_heads or args.head_inputs or args.vision_head_input:
        data = pathlib.Path(args.data)
        heads = linear_heads(bundle, stream_faces(data / 'fer2013' / 'validation', labels,
                                                  FUSION_TRAIN),
                             load_speech_spec(stream_speech_spec(FUSION_TRAIN), data, labels,
                                              'exclude'),
                             require=(('vision', 'voice') if args.prior_heads or
                                      args.head_inputs else ('vision',)))
        model.set_prior_heads(*heads['vision'], *heads['voice'])
        heads_fit = heads['fit']
        log.info('encoder heads as linear maps: %s', heads_fit)
    stage = StreamFusionStage(model, labels, train_seqs, val_seqs, args.window, args.batch_size,
                              args.steps_per_epoch, args.voice_dropout, args.seed,
                              args.balance_power, args.input_dropout, args.vocal_weight)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=args.steps_per_epoch)
    cfg = FitConfig(epochs=args.epochs, out_dir=out / 'train', patience=args.patience,
                    collapse_threshold=args.collapse_threshold,
                    stop_on_collapse=args.stop_on_collapse, quiet=args.quiet,
                    steps_per_epoch=args.steps_per_epoch)
    best = fit(stage, opt, sched, cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    ck = load_checkpoint(out / 'train' / 'best.pt')
    model.load_state_dict(ck['model'])
    scores = runner_scores(model, val_seqs, labels)
    log.info('validation seeds %s, step UAR per runner (the head alone): %s', val_seeds, scores)
    published = runner_scores(model, val_seqs, labels, args.vocal_weight or 1.0)
    log.info('the same, face rows times the vocal decision (vocal_weight %g): %s',
             args.vocal_weight or 1.0, published)
    training = {
        'data': (f'stream fusion: {len(args.seeds)} training streams (seeds {list(args.seeds)}, '
                 f'{args.segments} segments of 3-10 s, {args.size[0]}x{args.size[1]} at '
                 f'{args.fps:g} fps) built from the fusion half of FER2013 validation (3/4 of '
                 f'it) and RAVDESS actors {stream_speech_spec(FUSION_TRAIN).partition(":")[2]}, '
                 f'and {len(args.one_track_seeds)} more (seeds {list(args.one_track_seeds)}) '
                 f'with face_node\'s re-identification off (one track across a change of the '
                 f'true label), replayed through the nodes\' pipelines; every step of the fused, vision-only '
                 f'and voice-only runners; early stopping on {len(val_seeds)} validation streams '
                 f'(seeds {val_seeds}) of the other 1/4 of those faces and actors '
                 f'{stream_speech_spec(FUSION_VAL).partition(":")[2]}'),
        'command': 'emotion-train stream-fusion ' + ' '.join(sys.argv[2:] if len(sys.argv) > 2
                                                             else []),
        'best_epoch': int(best['best_epoch']), 'val_step_uar': round(float(best['best_uar']), 4),
        'val_step_uar_per_runner': scores,
        'vocal_weight': args.vocal_weight,
        'val_step_uar_per_runner_with_vocal': {'vocal_weight': args.vocal_weight or 1.0,
                                               **published},
        'prior_heads': heads_fit if args.prior_heads else 'none',
        'head_inputs': heads_fit if args.head_inputs else 'none',
        'vision_head_input': heads_fit['vision'] if args.vision_head_input else 'none',
    }
    path = export_fusion_head(bundle.path, out / 'bundle', model, training,
                              version=args.version)
    result = {'bundle': str(path), 'best': best, 'val_per_runner': scores,
              'val_per_runner_with_vocal': published,
              'seeds': list(args.seeds), 'val_seeds': val_seeds}
    (out / 'stream_fusion.json').write_text(json.dumps(result, indent=1, default=str) + '\n')
    return result


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument('--data', default=str(default_data_root()),
                   help='data root with fer2013/validation and ravdess/ '
                        '(default $EMOTION_DATA or ../shared/data) [%(default)s]')
    p.add_argument('--bundle', default=None,
                   help='the bundle whose encoders feed the head (default: the shipped one)')
    p.add_argument('--seeds', type=int, nargs='+', default=list(range(100, 110)),
                   help='training stream seeds (default 100-109; the stream benchmark uses 0-4)')
    p.add_argument('--one-track-seeds', type=int, nargs='*', default=list(range(110, 120)),
                   help='more training seeds replayed with face_node\'s re-identification off '
                        '(identity_threshold 0), so a track carries on across a change of the '
                        'true label, as one person who changes expression; none: give the '
                        'option without seeds [110-119]')
    p.add_argument('--val-seeds', type=int, nargs='*', default=[200, 201],
                   help='validation stream seeds (early stopping), built from other faces and '
                        'actors than the training streams [200 201]')
    p.add_argument('--params', type=pathlib.Path, nargs='+', default=[], metavar='YAML',
                   help='node parameter files the streams are replayed with, as for emotion-eval '
                        'bag and stream (the recorded steps remember them) [the defaults]')
    p.add_argument('--segments', type=int, default=60, help='segments per stream [%(default)s]')
    p.add_argument('--size', type=_size, default=(320, 240), help='frame size WxH [320x240]')
    p.add_argument('--fps', type=float, default=15.0, help='frame rate [%(default)s]')
    p.add_argument('--out', default='runs/stream_fusion', help='output folder [%(default)s]')
    p.add_argument('--epochs', type=int, default=40)
    p.add_argument('--patience', type=int, default=10)
    p.add_argument('--steps-per-epoch', type=int, default=60)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--window', type=int, default=200,
                   help='steps per training window (200 = 20 s at 10 Hz) [%(default)s]')
    p.add_argument('--lr', type=float, default=1e-3, help='peak learning rate (one-cycle) [%(default)s]')
    p.add_argument('--weight-decay', type=float, default=1e-2)
    p.add_argument('--voice-dropout', type=float, default=0.2,
                   help='share of training windows with the voice removed [%(default)s]')
    p.add_argument('--prior-heads', action=argparse.BooleanOptionalAction, default=False,
                   help='put the encoders\' own heads inside the head: the LSTM learns a '
                        'correction to "vision head + voice head" (models.fusion_model); on the '
                        'dev stream it kept vision-only higher but fused lower [off]')
    p.add_argument('--head-inputs', action=argparse.BooleanOptionalAction, default=False,
                   help='the LSTM reads the encoders\' own heads\' log-probabilities (linear maps '
                        'fitted as for --prior-heads, frozen inside the head) instead of their '
                        'embeddings: 7 values per modality that it cannot memorise faces or '
                        'voices from (models.fusion_model) [off]')
    p.add_argument('--vision-head-input', action=argparse.BooleanOptionalAction, default=False,
                   help='the LSTM reads the vision head\'s log-probabilities (fitted as for '
                        '--head-inputs) instead of the vision embedding, and the voice '
                        'embedding as before: for a vision ensemble of many members, whose '
                        'concatenated embedding the head would over-fit, with a vocal graph whose '
                        'decision is not linear in its embedding; on five-member candidate '
                        'encoders it raised vision-only but let fused fall below it '
                        '(EXPERIMENTS.md beside the model card) [off]')
    p.add_argument('--vocal-weight', type=float, default=0.0,
                   help='train the head for what fusion_node publishes with this vocal_weight: '
                        'a face row with a voice window is scored as softmax(head logits + W x '
                        'the window\'s vocal log-probabilities), so the head learns what the '
                        'vocal decision leaves to it; 0 = the head\'s output alone [%(default)s]')
    p.add_argument('--input-dropout', type=float, default=0.5,
                   help='share of embedding values zeroed in training windows [%(default)s]')
    p.add_argument('--balance-power', type=float, default=1.0,
                   help='class weight = (mean count / class count) ** power [%(default)s]')
    p.add_argument('--version', default=None,
                   help='bundle version (default: the input bundle\'s, with +stream)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    p.add_argument('--collapse-threshold', type=float, default=DEFAULT_THRESHOLD)
    p.add_argument('--stop-on-collapse', action='store_true')
    p.add_argument('--record-only', action='store_true',
                   help='replay and cache the seeds\' steps (OUT/steps), train nothing; a later '
                        'run with the same encoders and settings reads them back')
    p.add_argument('--jobs', type=int, default=1,
                   help='streams replayed at once, each in its own process (the same steps as '
                        'one at a time; each replay keeps about 1.3 cores busy) [%(default)s]')
    p.add_argument('--quiet', action='store_true', help='no progress bars')


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog='emotion-train stream-fusion', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[stream-fusion] %(message)s')
    try:
        res = run(args)
    except (BundleError, FileNotFoundError, ValueError) as exc:
        print(f'emotion-train stream-fusion: {exc}', file=sys.stderr)
        return 2
    print(json.dumps({'bundle': res['bundle'], 'val_per_runner': res['val_per_runner']},
                     indent=1))
    return 0
