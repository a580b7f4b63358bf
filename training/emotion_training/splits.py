"""What each checkpoint was trained on, so that a later run can tell when its validation data was
already seen by the checkpoint it starts from.

Warm starts are the easy way to leak: a vision encoder fine-tuned from a checkpoint whose holdout
was drawn with another seed "validates" on faces the checkpoint learnt, and its validation UAR
(and so the choice of best.pt) becomes optimistic.  Every vision and vocal checkpoint records its
split here; vision, vocal and fusion runs compare it with their own and warn loudly.
"""
from __future__ import annotations

import hashlib
import pathlib
from typing import Callable, Iterable, Optional


def face_split(train_dir: str | pathlib.Path, faces_val: Optional[str], holdout: float,
               seed: int) -> dict:
    """Identity of a face train/validation split (the holdout is drawn by ``seed``).

    ``train_files`` / ``val_files`` fingerprint the folders' contents (``folder_fingerprint``),
    so two runs on copies of one data set unpacked at different paths (a GPU machine's temporary
    folder) are known to share the split."""
    return {'faces_train': str(pathlib.Path(train_dir).resolve()),
            'faces_val': str(pathlib.Path(faces_val).resolve()) if faces_val else None,
            'holdout': None if faces_val else float(holdout),
            'seed': None if faces_val else int(seed),
            'train_files': folder_fingerprint(train_dir),
            'val_files': folder_fingerprint(faces_val) if faces_val else None}


def folder_fingerprint(root: str | pathlib.Path) -> str:
    """sha256 (16 hex digits) of the sorted relative paths and sizes of every file under
    ``root``: the same for two copies of a data set wherever they lie."""
    root = pathlib.Path(root)
    rows = sorted(f'{f.relative_to(root).as_posix()}\t{f.stat().st_size}'
                  for f in root.rglob('*') if f.is_file())
    return hashlib.sha256('\n'.join(rows).encode()).hexdigest()[:16]


def same_face_split(a: Optional[dict], b: Optional[dict]) -> bool:
    """Whether two recorded face splits are the same: by content fingerprint where both records
    carry one, else (records written before fingerprints) by path."""
    a, b = a or {}, b or {}
    if a.get('train_files') and b.get('train_files'):
        keys = ('train_files', 'val_files', 'holdout', 'seed')
        return all(a.get(k) == b.get(k) for k in keys)
    strip = ('train_files', 'val_files')
    return {k: v for k, v in a.items() if k not in strip} == \
        {k: v for k, v in b.items() if k not in strip}


def holdout_seed(args) -> int:
    """The seed that draws the face holdout: ``--holdout-seed`` where given, else ``--seed``.

    Kept apart from ``--seed`` so that ensemble members can start from different weights and
    batch orders yet be selected and compared on one holdout that none of them trained on."""
    seed = getattr(args, 'holdout_seed', None)
    return int(args.seed if seed is None else seed)


def speech_split(train_speakers: Iterable[str]) -> dict:
    """The speakers whose speech trained a vocal encoder."""
    return {'train_speakers': sorted(set(train_speakers))}


def check_face_split(checkpoint: dict, current: dict, source: str,
                     log: Callable[[str], None]) -> bool:
    """Warn when ``checkpoint`` (loaded from ``source``) was trained on another face split than
    ``current``; True when the splits are known to match."""
    old = (checkpoint.get('split') or {})
    if 'faces_train' not in old:
        log(f'WARNING: {source} records no face split; make sure it never trained on this '
            f'run\'s validation faces, or the validation metrics are optimistic')
        return False
    if not same_face_split(old, current):
        log(f'WARNING: {source} was trained on another face split ({old}) than this run '
            f'({current}): its training faces overlap this validation set, so validation '
            f'metrics and the choice of best.pt are optimistic. Use the same --holdout and '
            f'--holdout-seed (default: --seed).')
        return False
    return True


def check_speech_split(checkpoint: dict, val_speakers: Iterable[str], source: str,
                       log: Callable[[str], None]) -> bool:
    """Warn when the vocal ``checkpoint`` heard any of ``val_speakers``; True when it did not."""
    val = set(val_speakers)
    if not val:
        return True
    heard = (checkpoint.get('split') or {}).get('train_speakers')
    if heard is None:
        log(f'WARNING: {source} records no training speakers; make sure it never heard the '
            f'validation speakers {sorted(val)}')
        return False
    seen = sorted(val & set(heard))
    if seen:
        log(f'WARNING: {source} was trained on validation speakers {seen}: validation '
            f'metrics are optimistic (not speaker-independent)')
        return False
    return True


# --------------------------------------------------------------------------- stream data
# The stream benchmark (stream_bench) and the stream-trained fusion head (stream_fusion) split the
# dev data in two halves, so the head is never judged on faces or voices it was trained on:
# FER2013 validation faces by a stable hash of the file name, RAVDESS by actor (5 m + 5 f each).
# The fusion half is split again: its validation streams (early stopping) use other faces and
# other actors than its training streams, or the head would be selected for memorising them.
# RAVDESS actors 01-06 train the vocal encoder (with EmoDB), so the fusion head's streams speak
# with voices the encoder never heard (07-09 train it, 10 validates it), as the robot's will.
STREAM_DEV, STREAM_FUSION = 'dev', 'fusion'
FUSION_TRAIN, FUSION_VAL = 'fusion_train', 'fusion_val'
VOCAL_TRAIN = 'vocal_train'
STREAM_RAVDESS_ACTORS = {VOCAL_TRAIN: tuple(f'{i:02d}' for i in range(1, 7)),
                         STREAM_FUSION: ('07', '08', '09', '10'),
                         FUSION_TRAIN: ('07', '08', '09'),
                         FUSION_VAL: ('10',),
                         STREAM_DEV: tuple(f'{i:02d}' for i in range(11, 21))}


def stream_half(path: str | pathlib.Path) -> str:
    """'dev' or 'fusion': the half of FER2013 validation a face file belongs to (sha1 of its
    file name, so the same on every machine and independent of the folder it sits in)."""
    return STREAM_DEV if _name_hash(path)[0] % 2 == 0 else STREAM_FUSION


def stream_part(path: str | pathlib.Path) -> str:
    """'dev', 'fusion_train' or 'fusion_val' (a quarter of the fusion half)."""
    if stream_half(path) == STREAM_DEV:
        return STREAM_DEV
    return FUSION_VAL if _name_hash(path)[1] % 4 == 0 else FUSION_TRAIN


def _name_hash(path: str | pathlib.Path) -> bytes:
    return hashlib.sha1(pathlib.Path(path).name.encode()).digest()


def stream_faces(folder: str | pathlib.Path, labels: Iterable[str], half: str) -> list:
    """The face items of ``folder`` (class sub-folders) in ``half``: 'dev', 'fusion' (both of
    its parts), 'fusion_train', 'fusion_val' or 'all'."""
    from .datasets.folders import load_image_folders  # noqa: PLC0415
    items = load_image_folders(folder, list(labels))
    if half == 'all':
        return items
    if half in (STREAM_DEV, STREAM_FUSION):
        return [s for s in items if stream_half(s.path) == half]
    return [s for s in items if stream_part(s.path) == half]


def stream_speech_spec(half: str) -> str:
    """The RAVDESS speech spec of a half or part ('ravdess:01,...')."""
    return 'ravdess:' + ','.join(STREAM_RAVDESS_ACTORS[half])
