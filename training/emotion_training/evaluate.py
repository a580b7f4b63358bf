"""``emotion-eval``: measure a model bundle on held-out data.  Fixed output contract.

    emotion-eval faces  [--bundle DIR] IMAGE_DIR     one subfolder per class of face crops
    emotion-eval speech [--bundle DIR] WAV_DIR       EmoDB-named WAVs or one subfolder per class
    emotion-eval stream [--bundle DIR] [--speech ravdess]   the stream benchmark (stream_bench.py)
    emotion-eval bag    [--bundle DIR] BAG                  score the pipeline on a bag (eval_bag.py)

Each prints exactly ONE JSON line on stdout (n, accuracy, uar, macro_f1, per_class_recall, labels,
confusion); progress goes to stderr; ``--plot FILE.png`` draws the confusion matrix.  Without
``--bundle`` the shipped default bundle is used.  More subcommands register in ``SUBCOMMANDS``
(``bag`` lives in ``emotion_training.eval_bag`` with ``add_parser(subparsers)`` / ``run(args)``).
"""
from __future__ import annotations

import argparse
import importlib
import json
import pathlib
import sys
from typing import Callable, Optional, Sequence

import numpy as np
from tqdm import tqdm

from emotion_runtime.model_bundle import BundleError, ModelBundle
from emotion_runtime.voice_windows import aggregate, utterance_windows

from .audio_io import AudioReadError, read_mono
from .datasets import UnreadableImageError, load_audio_folders, load_emodb, load_image_folders, read_face
from .datasets.common import AUDIO_EXTS, IMAGE_EXTS, Sample
from .datasets.ravdess import load_ravdess
from .labels import canonical, label_mask
from .metrics import summarise
from .room_noise import NOISE_KINDS, add_room_noise

#: subcommand -> module providing add_parser(subparsers) and run(args) -> int.  Modules that are
#: not (yet) present are skipped, so another engineer can add ``eval_bag.py`` without edits here.
SUBCOMMANDS: dict[str, str] = {
    'faces': 'emotion_training.evaluate',
    'speech': 'emotion_training.evaluate',
    'bag': 'emotion_training.eval_bag',
    'stream': 'emotion_training.stream_bench',
}


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def emit(result: dict) -> None:
    """The single stdout JSON line."""
    sys.stdout.write(json.dumps(result) + '\n')
    sys.stdout.flush()


def plot_confusion(summary: dict, path: str, title: str) -> None:
    """Row-normalised confusion matrix with counts, saved as PNG."""
    import matplotlib  # noqa: PLC0415 - matplotlib: only when a plot is drawn
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # noqa: PLC0415 - after use('Agg')
    cm = np.array(summary['confusion'], float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    labels = summary['labels']
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(norm, cmap='Blues', vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f'{int(cm[i, j])}', ha='center', va='center',
                    color='white' if norm[i, j] > 0.5 else 'black', fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=45)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    ax.set_title(f'{title}: acc {summary["accuracy"]:.3f} UAR {summary["uar"]:.3f}')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def load_bundle(args) -> ModelBundle:
    try:
        return ModelBundle.load(args.bundle, threads=args.threads)
    except BundleError as exc:
        raise SystemExit(f'emotion-eval: {exc}') from exc


def skipped_folders(root: str | pathlib.Path, labels: Sequence[str],
                    exts: Sequence[str]) -> dict[str, int]:
    """{class folder name: files in it} for the subfolders of ``root`` that hold files of ``exts``
    but whose class is not among ``labels`` (CK+'s contempt; surprise for a six-label bundle):
    they are not scored, and the result says so instead of dropping them silently."""
    root = pathlib.Path(root)
    out = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if canonical(d.name, labels) is None:
            n = sum(1 for f in d.rglob('*') if f.is_file() and f.suffix.lower() in exts)
            if n:
                out[d.name] = n
    return out


def _report_skipped(skipped: dict[str, int], labels: Sequence[str]) -> dict:
    if skipped:
        progress(f'NOT scored (class not in the bundle\'s labels {list(labels)}): ' +
                 ', '.join(f'{k} ({n} files)' for k, n in skipped.items()))
    return {'skipped_classes': skipped}


def face_samples(image_dir: str, labels: Sequence[str]) -> list[Sample]:
    samples = load_image_folders(image_dir, labels)
    if not samples:
        raise SystemExit(f'emotion-eval: no images of labels {list(labels)} in class subfolders '
                         f'of {image_dir}')
    return samples


def speech_samples(wav_dir: str, labels: Sequence[str]) -> list[Sample]:
    root = pathlib.Path(wav_dir)
    if not root.is_dir():
        raise SystemExit(f'emotion-eval: {wav_dir} is not a directory')
    samples = load_audio_folders(root, labels)   # one subfolder per class ...
    for s in samples:
        s.extra.setdefault('corpus', '')
    if not samples:
        samples = load_emodb(root, labels)       # ... or EmoDB names (root or root/wav) ...
    if not samples:
        samples = load_ravdess(root, labels)     # ... or RAVDESS names (Actor_AA/), calm excluded
    if not samples:
        raise SystemExit(f'emotion-eval: no WAVs of labels {list(labels)} in {wav_dir} '
                         f'(EmoDB names SSaTTEv.wav, RAVDESS Actor_AA/MM-VC-EE-II-SS-RR-AA.flac '
                         f'or class subfolders expected)')
    return samples


def face_logits(bundle: ModelBundle, samples: Sequence[Sample], skip_unreadable: bool,
                batch: int = 256, align: Optional[Callable] = None,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Sample]]:
    """(embeddings, logits, y, kept samples) over image samples, batched.  ``align``: crop ->
    (crop, aligned?) applied to each image first (``--align``)."""
    idx = {k: i for i, k in enumerate(bundle.labels)}
    embs, logits, ys, kept = [], [], [], []
    for i in tqdm(range(0, len(samples), batch), desc='faces', file=sys.stderr, leave=False):
        crops = []
        for s in samples[i:i + batch]:
            try:
                crop = read_face(s.path)
                crops.append(align(crop)[0] if align is not None else crop)
                kept.append(s)
                ys.append(idx[s.label])
            except UnreadableImageError as exc:
                if not skip_unreadable:
                    raise SystemExit(f'emotion-eval: {exc}') from exc
                progress(f'skipping: {exc}')
        if crops:
            e, lg = bundle.encode_faces(crops)
            embs.append(e)
            logits.append(lg)
    return np.concatenate(embs), np.concatenate(logits), np.array(ys), kept


#: online calibration: the vocal node's default ``speaker_half_life_seconds``
ONLINE_HALF_LIFE_S = 300.0
CALIBRATION_NOTES = {
    'offline': 'per speaker, from the unlabelled audio of all the files scored',
    'online': 'per speaker, learnt while scoring its files in name order (as the vocal node)',
    'none': 'none (training population statistics)'}


def voice_window_outputs(bundle: ModelBundle, samples: Sequence[Sample], skip_unreadable: bool,
                         calibration: str = 'offline', noise: Optional[tuple[str, float]] = None
                         ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[Sample]]:
    """Per readable file, the (embeddings [W,E], logits [W,C]) of its active windows, in the order
    of ``samples``, and the files kept.

    A speaker-normalised bundle is calibrated per speaker id (files without one form one group):
    'offline' = from all of that speaker's windows first; 'online' = learnt while scoring its
    files in name order, each file added before it is scored (``ONLINE_HALF_LIFE_S``, as the
    vocal node); 'none' = the training population's statistics.  Each file is read and turned
    into its features (``ModelBundle.voice_features``) once; one speaker's windows are held in
    memory at a time.  ``noise`` (kind, dBFS): room noise added to every file first
    (``room_noise``; file i always gets the same).
    """
    mode = calibration if bundle.speaker_normalised else 'none'
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(s.speaker if mode != 'none' else '', []).append(i)
    if mode != 'none':
        progress(f'calibrating ({mode}) to {len(groups)} speaker(s): '
                 f'{", ".join(sorted(k or "(no id)" for k in groups))}')
    outputs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    bar = tqdm(total=len(samples), desc='speech', file=sys.stderr, leave=False)
    for members in groups.values():
        raw: dict[int, tuple] = {}
        for i in members:
            bar.update()
            try:
                audio, rate = read_mono(samples[i].path)
            except AudioReadError as exc:
                if not skip_unreadable:
                    raise SystemExit(f'emotion-eval: {exc}') from exc
                progress(f'skipping: {exc}')
                continue
            if noise is not None:
                audio = add_room_noise(audio, rate, noise[0], noise[1], seed=i)
            wins = utterance_windows(audio, rate, bundle.sample_rate, bundle.window_seconds,
                                     bundle.hop_seconds)
            raw[i] = bundle.voice_features(wins, bundle.sample_rate)
        cal = None
        if mode != 'none':
            cal = bundle.new_calibration(ONLINE_HALF_LIFE_S if mode == 'online' else None)
            if mode == 'offline':
                for r in raw.values():
                    bundle.learn_voice(cal, r)
        for i, r in raw.items():
            if mode == 'online':
                bundle.learn_voice(cal, r)
            outputs[i] = bundle.encode_voice_features(r, cal)
    bar.close()
    order = sorted(outputs)
    return [outputs[i] for i in order], [samples[i] for i in order]


def speech_logits(bundle: ModelBundle, samples: Sequence[Sample], skip_unreadable: bool,
                  calibration: str = 'offline', noise: Optional[tuple[str, float]] = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Sample]]:
    """Per-file (mean embedding, logits, y, kept) with the vocal node's windowing/aggregation,
    calibrated to each speaker as ``calibration`` says, with ``noise`` added (see
    ``voice_window_outputs``)."""
    idx = {k: i for i, k in enumerate(bundle.labels)}
    outputs, kept = voice_window_outputs(bundle, samples, skip_unreadable, calibration, noise)
    embs = [emb.mean(axis=0) for emb, _ in outputs]
    logits = [aggregate(lg) for _, lg in outputs]
    return np.stack(embs), np.stack(logits), np.array([idx[s.label] for s in kept]), kept


def _finish(args, summary: dict, title: str, extra: Optional[dict] = None) -> int:
    if extra:
        summary.update(extra)
    if args.plot:
        plot_confusion(summary, args.plot, title)
        progress(f'confusion matrix written to {args.plot}')
    emit(summary)
    return 0


def run_faces(args) -> int:
    bundle = load_bundle(args)
    skipped = _report_skipped(skipped_folders(args.image_dir, bundle.labels, IMAGE_EXTS),
                              bundle.labels)
    samples = face_samples(args.image_dir, bundle.labels)
    progress(f'{len(samples)} face images from {args.image_dir}; bundle {bundle.path}')
    align, counts = None, {'aligned': 0}
    if args.align:
        from emotion_perception.face_alignment import align_precropped  # noqa: PLC0415 - MTCNN/onnxruntime only with --align
        from emotion_perception.mtcnn_detection import MtcnnFaceDetector  # noqa: PLC0415 - as above
        detector = MtcnnFaceDetector()

        def align(crop):
            out, ok = align_precropped(crop, detector)
            counts['aligned'] += ok
            return out, ok
    _, logits, y, _ = face_logits(bundle, samples, args.skip_unreadable, align=align)
    if args.align:
        skipped = dict(skipped, aligned=counts['aligned'])
    return _finish(args, summarise(y, logits.argmax(1), bundle.labels), 'faces', skipped)


def run_speech(args) -> int:
    bundle = load_bundle(args)
    samples = speech_samples(args.wav_dir, bundle.labels)
    folders = any(s.extra.get('corpus') == '' for s in samples)   # class folders (not corpus names)
    skipped = _report_skipped(skipped_folders(args.wav_dir, bundle.labels, AUDIO_EXTS)
                              if folders else {}, bundle.labels)
    progress(f'{len(samples)} speech files from {args.wav_dir}; bundle {bundle.path}')
    noise = None if args.noise_dbfs is None else (args.noise_kind, float(args.noise_dbfs))
    _, logits, y, kept = speech_logits(bundle, samples, args.skip_unreadable, args.calibration,
                                       noise)
    extra = dict(_calibration_note(bundle, args), **skipped,
                 per_corpus=_per_corpus(y, logits, kept, bundle.labels))
    if noise is not None:
        extra['room_noise'] = {'kind': noise[0], 'dbfs': noise[1]}
    if bundle.speaker_normalised and args.calibration != 'none':
        # every calibrated figure also without calibration (the population statistics)
        _, lg0, y0, kept0 = speech_logits(bundle, samples, args.skip_unreadable, 'none', noise)
        extra['no_calibration'] = dict(
            {k: v for k, v in summarise(y0, lg0.argmax(1), bundle.labels).items()
             if k in _BRIEF}, per_corpus=_per_corpus(y0, lg0, kept0, bundle.labels))
    return _finish(args, summarise(y, logits.argmax(1), bundle.labels), 'speech', extra)


_BRIEF = ('n', 'accuracy', 'uar', 'macro_f1', 'per_class_recall')


def _per_corpus(y: np.ndarray, logits: np.ndarray, kept: Sequence[Sample],
                labels: Sequence[str]) -> dict:
    """{corpus: brief metrics} for the corpora named by the files (EmoDB, RAVDESS names).

    A corpus without some of the bundle's labels (EmoDB has no surprise) also gets
    ``own_labels``: the same files with the decision taken among the corpus's labels only
    (``labels.label_mask``), the figure a model of those labels alone would be compared on."""
    corpus = np.array([s.extra.get('corpus') or 'unnamed' for s in kept])
    out = {}
    for c in sorted(set(corpus.tolist())):
        m = corpus == c
        entry = {k: v for k, v in summarise(y[m], logits[m].argmax(1), labels).items()
                 if k in _BRIEF}
        mask = np.array(label_mask(c, labels))
        if not mask.all():
            pred = np.where(mask, logits[m], -np.inf).argmax(1)
            entry['own_labels'] = dict(
                labels=[lab for lab, ok in zip(labels, mask) if ok],
                **{k: v for k, v in summarise(y[m], pred, labels).items() if k in _BRIEF})
        out[c] = entry
    return out


def _calibration_note(bundle: ModelBundle, args) -> dict:
    """Say in the JSON how the voice was normalised (a speaker-normalised bundle scores better
    with calibration, and a reader must know which number they see)."""
    if not bundle.speaker_normalised:
        return {}
    return {'speaker_calibration': CALIBRATION_NOTES[args.calibration]}


def add_parser(sub) -> None:
    """Register faces and speech.  (`fused`, pseudo-pair sequences that pooled several faces
    per sequence and skipped detection, windowing and lag, is retired: `emotion-eval stream`
    measures fusion as the robot runs it.)"""
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument('--bundle', default=None, help='bundle directory (default: shipped)')
        p.add_argument('--plot', default=None, help='write the confusion matrix to this PNG')
        p.add_argument('--threads', type=int, default=2, help='onnxruntime threads')
        p.add_argument('--skip-unreadable', action='store_true',
                       help='skip unreadable files (default: fail naming the file)')

    def calibration(p: argparse.ArgumentParser, modes: Sequence[str]) -> None:
        p.add_argument('--calibration', choices=modes, default='offline',
                       help='speaker-normalised bundles: offline = calibrate to each speaker from '
                       'all its files first; online = learn while scoring, files in name order, '
                       'as the vocal node does; none = the training population\'s statistics '
                       '(speaker ids from EmoDB/CREMA-D file names; files without one form one '
                       'group)')

    p = sub.add_parser('faces', help='face crops in class subfolders')
    common(p)
    p.add_argument('--align', action='store_true',
                   help='align each crop on its five MTCNN landmarks (found on the crop upscaled '
                   'to 144 px; crops without them stay as they are), as face_node\'s '
                   'align_faces; the JSON counts them under "aligned"')
    p.add_argument('image_dir')
    p.set_defaults(func=run_faces)
    p = sub.add_parser('speech', help='speech files with EmoDB or RAVDESS names or in class '
                       'subfolders; figures per corpus and pooled, and (speaker-normalised '
                       'bundles) also without calibration')
    common(p)
    calibration(p, ('offline', 'online', 'none'))
    p.add_argument('--noise-dbfs', type=float, default=None, metavar='DBFS',
                   help='add room noise at this level (dB full scale; -60 = white noise of RMS '
                        '0.001, a quiet microphone) to every file first: what a robot hears '
                        '[off]')
    p.add_argument('--noise-kind', choices=NOISE_KINDS, default='white',
                   help='room noise kind for --noise-dbfs [white]')
    p.add_argument('wav_dir')
    p.set_defaults(func=run_speech)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='emotion-eval', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    seen = set()
    for _name, module in SUBCOMMANDS.items():
        if module in seen:
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue   # optional subcommand not installed yet
        seen.add(module)
        mod.add_parser(sub)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return int(func(args) or 0)


if __name__ == '__main__':
    sys.exit(main())
