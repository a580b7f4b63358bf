"""Sequences for fusion training.

Pseudo-pairs (no paired data needed): FER2013 faces and EmoDB utterances come from different
people, so a "pair" is a face and a speech window that merely share the emotion label.  Each
training sequence picks one label, then at every step draws a face of that label and the next
window of one utterance of that label; each modality is present at a step with probability
``p_present`` (random per-step modality dropout) and, with probability ``p_absent``, is missing
for the whole sequence (so the head also learns single-modality behaviour).  This teaches the
LSTM how to weigh and accumulate two noisy, conditionally independent opinions; it cannot teach
real audio-visual correlations (timing, who is speaking) -- train on real pairs (CREMA-D, SEMAINE)
for that where available (``RealPairs``).
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np


@dataclasses.dataclass
class SeqBatch:
    """Indices into the face pool / voice pool and presence masks, all [N, T]; labels [N]
    (-1: no categorical label, e.g. SEMAINE); ``va`` [N, T, 2] valence/arousal targets per step
    (NaN where there is none; None for a batch without any)."""

    face_idx: np.ndarray
    face_present: np.ndarray
    voice_idx: np.ndarray
    voice_present: np.ndarray
    labels: np.ndarray
    va: Optional[np.ndarray] = None

    def va_targets(self) -> np.ndarray:
        """``va``, or an all-NaN [N, T, 2] array where the batch has none."""
        if self.va is not None:
            return self.va
        return np.full(self.face_idx.shape + (2,), np.nan, np.float32)


class PseudoPairs:
    """Draws same-label face/voice sequences from two labelled pools."""

    def __init__(self, face_labels: np.ndarray, voice_labels: np.ndarray, voice_files: np.ndarray,
                 n_classes: int, steps: int = 6, p_present: float = 0.75,
                 p_absent: float = 0.15, face_noise: float = 0.0,
                 voice_noise: float = 0.0) -> None:
        """``face_noise`` / ``voice_noise``: probability that a step's face (resp. a sequence's
        utterance) is drawn from another label.  Why: encoders are near-perfect on their own
        training data, so a head trained on those embeddings over-trusts them; the noise makes
        each modality in the training pool about as reliable as it is on unseen people (set it to
        1 - held-out accuracy, e.g. from the leave-speakers-out CV)."""
        self.steps, self.p_present, self.p_absent = steps, p_present, p_absent
        self.face_noise, self.voice_noise = face_noise, voice_noise
        # A label that only one modality has (surprise: FER2013 faces, but no EmoDB speech) is
        # still trained: its sequences have that modality alone (the other absent throughout).
        face_cls = {c for c in range(n_classes) if (face_labels == c).any()}
        voice_cls = {c for c in range(n_classes) if (voice_labels == c).any()}
        if not face_cls & voice_cls:
            raise ValueError('no label has both faces and speech: cannot build pseudo-pairs')
        self.classes = sorted(face_cls | voice_cls)
        self.faces = {c: np.nonzero(face_labels == c)[0] for c in sorted(face_cls)}
        # utterances per class, each a list of its window indices in time order
        self.utts: dict[int, list[np.ndarray]] = {c: [] for c in sorted(voice_cls)}
        for f in np.unique(voice_files):
            w = np.nonzero(voice_files == f)[0]
            c = int(voice_labels[w[0]])
            if c in self.utts:
                self.utts[c].append(w)

    def sample(self, n: int, rng: np.random.Generator, all_present: bool = False) -> SeqBatch:
        T = self.steps
        labels = rng.choice(self.classes, size=n)
        fi = np.zeros((n, T), np.int64)
        vi = np.zeros((n, T), np.int64)
        others_f = {c: [o for o in self.faces if o != c] for c in self.classes}
        others_v = {c: [o for o in self.utts if o != c] for c in self.classes}
        no_face, no_voice = np.zeros(n, bool), np.zeros(n, bool)
        for i, c in enumerate(labels):
            if c in self.faces:
                fi[i] = rng.choice(self.faces[c], size=T)
                if self.face_noise > 0 and len(self.faces) > 1:
                    for t in np.nonzero(rng.random(T) < self.face_noise)[0]:
                        fi[i, t] = rng.choice(self.faces[rng.choice(others_f[c])])
            else:
                no_face[i] = True
            if c not in self.utts:
                no_voice[i] = True
                continue
            cu = c
            if self.voice_noise > 0 and len(self.utts) > 1 and rng.random() < self.voice_noise:
                cu = rng.choice(others_v[c])
            u = self.utts[cu][rng.integers(len(self.utts[cu]))]
            start = rng.integers(len(u))
            vi[i] = u[(start + np.arange(T)) % len(u)]
        if all_present:
            fp = np.ones((n, T), np.float32)
            vp = np.ones((n, T), np.float32)
        else:
            fp = (rng.random((n, T)) < self.p_present).astype(np.float32)
            vp = (rng.random((n, T)) < self.p_present).astype(np.float32)
            fp[rng.random(n) < self.p_absent] = 0
            vp[rng.random(n) < self.p_absent] = 0
        fp[no_face] = 0
        vp[no_voice] = 0
        return SeqBatch(fi, fp, vi, vp, labels.astype(np.int64))


def observed_mask(fp: np.ndarray, vp: np.ndarray) -> np.ndarray:
    """[N,T] True from the first step at which anything was observed (loss is taken there)."""
    any_seen = np.maximum.accumulate(np.maximum(fp, vp), axis=1)
    return any_seen > 0


def fixed_eval_batch(pairs: PseudoPairs, n: int, seed: int, all_present: bool = False) -> SeqBatch:
    """A deterministic validation set of sequences."""
    return pairs.sample(n, np.random.default_rng(seed), all_present=all_present)


def labels_present(batch: SeqBatch) -> Sequence[int]:
    return sorted(set(batch.labels.tolist()))
