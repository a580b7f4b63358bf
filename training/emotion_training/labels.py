"""Label sets, name aliases, dataset emotion codes and the valence/arousal table.

Why here: every loader maps its own spelling (anger, ANG, W, ...) to the project's canonical names
through one function, so a configurable label set (``--labels``) is honoured everywhere and classes
outside it are skipped consistently.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

#: The project's seven labels (FER2013's classes), in the order bundles, messages and training use.
#: A bundle declares its own list in its manifest (``labels``; the shipped bundle has all seven,
#: 0.6.0 the first six), and everything on the robot reads the list from the manifest.
DEFAULT_LABELS: tuple[str, ...] = ('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad',
                                   'surprise')

#: alias -> canonical name (lower case).  Canonical names map to themselves.
ALIASES: dict[str, str] = {
    'angry': 'angry', 'anger': 'angry', 'ang': 'angry', 'mad': 'angry',
    'disgust': 'disgust', 'disgusted': 'disgust', 'dis': 'disgust',
    'fear': 'fear', 'fearful': 'fear', 'afraid': 'fear', 'fea': 'fear', 'scared': 'fear',
    'happy': 'happy', 'happiness': 'happy', 'hap': 'happy', 'joy': 'happy',
    'neutral': 'neutral', 'neu': 'neutral', 'calm': 'neutral',
    'sad': 'sad', 'sadness': 'sad', 'unhappy': 'sad',
    'surprise': 'surprise', 'surprised': 'surprise', 'sur': 'surprise',
    'boredom': 'boredom', 'bored': 'boredom',
    'contempt': 'contempt',
}

#: EmoDB emotion letter (6th character of SSaTTEv.wav) -> canonical name.
EMODB_CODES: dict[str, str] = {'W': 'angry', 'L': 'boredom', 'E': 'disgust', 'A': 'fear',
                               'F': 'happy', 'T': 'sad', 'N': 'neutral'}

#: RAVDESS emotion code (third field of MM-VC-EE-II-SS-RR-AA) -> canonical name.  'calm' is kept
#: as its own name here: it is not in the label set, and the RAVDESS loader either drops it
#: (default) or merges it into neutral on request (``datasets.ravdess.load_ravdess(calm=...)``).
RAVDESS_CODES: dict[str, str] = {'01': 'neutral', '02': 'calm', '03': 'happy', '04': 'sad',
                                 '05': 'angry', '06': 'fear', '07': 'disgust', '08': 'surprise'}

#: CREMA-D emotion code (third field of ActorID_Sentence_Emotion_Level) -> canonical name.
CREMAD_CODES: dict[str, str] = {'ANG': 'angry', 'DIS': 'disgust', 'FEA': 'fear', 'HAP': 'happy',
                                'NEU': 'neutral', 'SAD': 'sad'}

#: The canonical emotions each corpus can express (its classes).  A clip of a corpus can only be
#: trained against these: the label mask of a clip (``label_mask``) is the run's labels that its
#: corpus has, so that e.g. an EmoDB clip (no surprise) is not taught "not surprise" by the loss.
#: A source without an entry (class folders, CSV manifests) is taken to express every label.
CORPUS_LABELS: dict[str, frozenset[str]] = {
    'emodb': frozenset(EMODB_CODES.values()),
    'ravdess': frozenset(v for v in RAVDESS_CODES.values() if v != 'calm'),
    'cremad': frozenset(CREMAD_CODES.values()),
    'fer2013': frozenset(DEFAULT_LABELS),
}


def label_mask(corpus: Optional[str], labels: Sequence[str]) -> list[bool]:
    """Which of ``labels`` a clip of ``corpus`` can have (all True for an unknown corpus)."""
    known = CORPUS_LABELS.get(corpus or '')
    return [True] * len(labels) if known is None else [lab in known for lab in labels]


#: Circumplex coordinates [valence, arousal] in [-1, 1], the pleasure and arousal values of
#: Russell & Mehrabian (1977, "Evidence for a three-factor theory of emotions", J. Res. Pers. 11)
#: for the terms angry, disgusted, afraid, happy, sad, surprised, bored and contemptuous (their
#: scores lie in [-1, 1] already; "surprised", the seventh label's term: pleasure +.40, arousal
#: +.67, the same source as the other six); neutral is the origin.
VALENCE_AROUSAL: dict[str, tuple[float, float]] = {
    'angry': (-0.51, 0.59), 'disgust': (-0.60, 0.35), 'fear': (-0.64, 0.60),
    'happy': (0.81, 0.51), 'neutral': (0.0, 0.0), 'sad': (-0.63, -0.27),
    'surprise': (0.40, 0.67), 'boredom': (-0.65, -0.62), 'contempt': (-0.55, 0.10),
}
VA_SOURCE = ('Russell & Mehrabian (1977) pleasure/arousal ratings of emotion terms; '
             'neutral = (0, 0); probabilities @ table gives the expected valence/arousal')


def canonical(name: str, labels: Optional[Sequence[str]] = None) -> Optional[str]:
    """Map a dataset's class name to a label in ``labels`` (None if unknown or outside the set)."""
    key = name.strip().lower()
    canon = ALIASES.get(key, key)
    if labels is None:
        return canon if canon in ALIASES.values() else None
    return canon if canon in labels else None


def parse_labels(text: str | Iterable[str] | None) -> list[str]:
    """Parse ``--labels angry,sad,...`` (aliases allowed) into canonical names, order kept."""
    if text is None:
        return list(DEFAULT_LABELS)
    items = [t for t in (text.split(',') if isinstance(text, str) else text) if t.strip()]
    out = []
    for t in items:
        c = canonical(t)
        if c is None:
            raise ValueError(f'unknown emotion label {t!r}; known: {sorted(set(ALIASES.values()))}')
        if c in out:
            raise ValueError(f'label {c!r} given twice')
        out.append(c)
    if len(out) < 2:
        raise ValueError('need at least two labels')
    return out


def va_table(labels: Sequence[str]) -> dict[str, list[float]]:
    """The manifest's valence_arousal section for ``labels``."""
    return {k: [float(v) for v in VALENCE_AROUSAL[k]] for k in labels}
