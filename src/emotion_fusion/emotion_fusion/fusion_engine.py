"""The fusion logic of fusion_node, without rclpy: buffers in, one batched LSTM step, estimates out.

Why a separate engine: the node is then a thin adapter (messages <-> dataclasses, timers,
publishers), and everything that decides *what* is published (alignment, voice assignment, track
lifecycle, presence masks, hysteresis, input checks) is tested and benchmarked in-process with a
fake clock.

One output step at ``now``:

1. forget buffered features older than their max age and tracks past ``track_timeout``;
2. every face whose newest vision feature is fresh takes part (sorted by id, at most
   ``max_tracks``), unless the newest faces list (``set_faces`` with a frame stamp) is newer than
   that feature and leaves the face out (``faces_in_view_only``: it left, or it is another id now);
3. the voice goes to the face(s) chosen by ``voice_assignment`` (see ``voice_owners``), fused with
   the voice window nearest to that face's frame within ``slop``; with no face at all, the newest
   fresh voice window drives the audio-only track ``voice_only_id``;
4. one batched fusion step (presence masks say which modality each row has), new LSTM states
   stored per track, hysteresis on the label, one EmotionEstimate per row whose stamp is the
   newest contributing input's stamp.  With ``voice_only_output`` "vocal" the audio-only row
   publishes the vocal encoder's own decision (softmax of the voice feature's logits; valence
   and arousal from the bundle's table) instead of the head's, and a face row fused with a
   voice window publishes the head's probabilities times that decision to the power
   ``vocal_weight``: the head learnt to read voices from the few speakers of its training
   streams, the encoder's head from all of its corpora.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Protocol, Sequence

import numpy as np

from .config import FusionConfig
from .face_tracks import FaceTracks
from .features import MODALITY_VISION, MODALITY_VOICE, Feature, check_feature
from .smoothing import LabelHysteresis
from .time_alignment import NS, TimeAligner

__all__ = ['FusionStep', 'StepInputs', 'FaceBox', 'EmotionEstimate', 'StepResult', 'FusionEngine']


class FusionStep(Protocol):
    """What the engine needs from a model; emotion_runtime's ModelBundle satisfies it.

    Tests may pass a deterministic fake with the same members.
    """

    labels: Sequence[str]

    @property
    def vision_embedding_size(self) -> int: ...

    @property
    def voice_embedding_size(self) -> int: ...

    def initial_state(self, n: int = 1) -> tuple[np.ndarray, np.ndarray]: ...

    def fusion_step(self, vision_emb: np.ndarray, vision_present: np.ndarray,
                    voice_emb: np.ndarray, voice_present: np.ndarray, h: np.ndarray,
                    c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class StepInputs:
    """What one step fed the fusion model, row by row (``FusionEngine.input_observer``).

    ``fresh[i]``: row i started from the zero LSTM state (a new track); ``stamps_ns[i]``: the
    newest contributing input's stamp (the published estimate's stamp).  The arrays are the
    model's inputs as given to ``fusion_step``; ``voice_logits`` (rows x labels) are the voice
    windows' own logits, the vocal decision that ``vocal_weight`` and ``voice_only_output``
    use (zeros where a row has no voice window or the window carries none).
    """

    t_ns: int
    face_ids: List[str]
    fresh: List[bool]
    stamps_ns: List[int]
    vision_emb: np.ndarray
    vision_present: np.ndarray
    voice_emb: np.ndarray
    voice_present: np.ndarray
    voice_logits: np.ndarray


@dataclass(frozen=True)
class FaceBox:
    """The part of emotion_msgs/Face the voice assignment needs."""

    face_id: str
    area: float


@dataclass
class EmotionEstimate:
    """One face's fused output of one step (the node turns it into emotion_msgs/Emotion)."""

    face_id: str
    stamp_ns: int
    frame_id: str
    expression: str
    confidence: float
    labels: List[str]
    probabilities: np.ndarray
    valence: float
    arousal: float
    modalities: int
    received_ns: int = 0   # node-clock arrival of the newest contributing input (latency figures)


@dataclass
class StepResult:
    estimates: List[EmotionEstimate] = field(default_factory=list)
    removed: List[str] = field(default_factory=list)   # track ids gone (expired or evicted)
    compute_s: float = 0.0                               # wall time of the model call
    error: Optional[str] = None                          # the model call failed: why


@dataclass
class _TrackState:
    h: np.ndarray
    c: np.ndarray
    smoother: LabelHysteresis


class FusionEngine:
    """Per-step fusion of buffered features for every visible face (see module docstring)."""

    def __init__(self, cfg: FusionConfig, model: Optional[FusionStep] = None,
                 voice_window_s: float = 0.0) -> None:
        self.cfg = cfg
        self.model: Optional[FusionStep] = None
        self.labels: List[str] = []
        self.aligner = TimeAligner(
            slop_ns=int(cfg.slop * NS), vision_max_age_ns=int(cfg.vision_max_age * NS),
            voice_max_age_ns=int(cfg.voice_max_age * NS), queue_size=cfg.queue_size,
            max_faces=cfg.max_tracks * 2, voice_window_ns=int(voice_window_s * NS))
        self.tracks: FaceTracks[_TrackState] = FaceTracks(
            cfg.max_tracks, int(cfg.track_timeout * NS), self._new_state)
        self._faces: List[FaceBox] = []
        self._faces_at: Optional[int] = None
        self._in_view: Optional[tuple[int, set]] = None   # (frame stamp, ids in that frame)
        self.out_of_view_skips = 0
        self._target: str = ''
        self._target_at: Optional[int] = None
        self.rejected: Dict[str, int] = {}
        self.steps = 0
        self.estimates_out = 0
        self.voice_unassigned_steps = 0
        self.rows_over_capacity = 0
        self.model_errors = 0
        self.nonfinite_outputs = 0
        # called with each step's StepInputs before the model runs (training on replayed
        # streams records what the model saw; None on the robot)
        self.input_observer: Optional[Callable[[StepInputs], None]] = None
        if model is not None:
            self.set_model(model)

    # ------------------------------------------------------------------ model
    def set_model(self, model: FusionStep) -> None:
        """Use ``model`` from now on; existing tracks restart (their state fits the old model)."""
        self.model = model
        self.labels = list(model.labels)
        for fid in self.tracks.ids():
            self.tracks.remove(fid)

    def _new_state(self, face_id: str) -> _TrackState:
        assert self.model is not None
        h, c = self.model.initial_state(1)
        return _TrackState(np.array(h, np.float32), np.array(c, np.float32),
                           LabelHysteresis(self.cfg.hysteresis_steps, self.cfg.hysteresis_margin))

    # ------------------------------------------------------------------ inputs
    def add_vision(self, feature: Feature, now_ns: int) -> Optional[str]:
        """Check and buffer one vision feature; return None or why it was refused/dropped."""
        size = self.model.vision_embedding_size if self.model is not None else None
        return self._add(feature, now_ns, MODALITY_VISION, size, self.aligner.add_vision)

    def add_voice(self, feature: Feature, now_ns: int) -> Optional[str]:
        """Check and buffer one voice feature; return None or why it was refused/dropped."""
        size = self.model.voice_embedding_size if self.model is not None else None
        return self._add(feature, now_ns, MODALITY_VOICE, size, self.aligner.add_voice)

    def _add(self, feature: Feature, now_ns: int, modality: int, size: Optional[int],
             push) -> Optional[str]:
        reason = check_feature(feature.source_id, feature.modality, feature.embedding, modality,
                               size, feature.labels, self.labels if self.model is not None
                               else None, feature.quality, feature.logits)
        if reason is not None:
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
            return reason
        return push(feature, now_ns)

    def set_faces(self, boxes: Sequence[FaceBox], now_ns: int,
                  stamp_ns: Optional[int] = None, ids: Optional[Sequence[str]] = None) -> None:
        """The newest FaceArray: its boxes (for the 'largest' voice assignment) and, with the
        frame's ``stamp_ns``, the ids in view in that frame (``ids``, else the boxes' ids; for
        ``faces_in_view_only``)."""
        self._faces = list(boxes)
        self._faces_at = now_ns
        if stamp_ns is not None and (self._in_view is None or stamp_ns >= self._in_view[0]):
            self._in_view = (int(stamp_ns), set(ids if ids is not None
                                                else (b.face_id for b in boxes)))

    def set_target(self, target_id: str, now_ns: int) -> None:
        """The newest tracker/state target ('' = no target)."""
        self._target = target_id
        self._target_at = now_ns

    # ------------------------------------------------------------------ voice policy
    def voice_owners(self, visible: Sequence[str], now_ns: int) -> List[str]:
        """Which visible faces the voice is fused with this step.

        'all': every visible face.  'target': the tracker's target_id when tracker/state arrived
        within ``target_timeout`` and that face is visible, otherwise as 'largest'.  'largest':
        the visible face with the largest box in the newest fresh FaceArray; without a fresh
        FaceArray, the only visible face if there is exactly one.  [] = nobody (the voice is then
        not fused with any face this step, and counted as unassigned).
        """
        if not visible:
            return []
        policy = self.cfg.voice_assignment
        if policy == 'all':
            return list(visible)
        timeout = int(self.cfg.target_timeout * NS)
        if (policy == 'target' and self._target and self._target_at is not None and
                now_ns - self._target_at <= timeout and self._target in visible):
            return [self._target]
        if self._faces_at is not None and now_ns - self._faces_at <= timeout:
            seen = [b for b in self._faces if b.face_id in visible]
            if seen:
                return [max(seen, key=lambda b: (b.area, b.face_id)).face_id]
        return [visible[0]] if len(visible) == 1 else []

    # ------------------------------------------------------------------ the step
    def step(self, now_ns: int) -> StepResult:
        """Run one output step at ``now_ns`` (see module docstring)."""
        self.steps += 1
        result = StepResult()
        self.aligner.prune(now_ns)
        result.removed.extend(self.tracks.expire(now_ns))
        if self.model is None:
            return result
        cfg = self.cfg
        vision = self.aligner.latest_vision(now_ns)
        if cfg.faces_in_view_only and self._in_view is not None:
            # a face whose newest feature is older than the newest faces list, which does not
            # hold it, is out of view (it left, or became another id): no estimate for it
            shown_at, shown = self._in_view
            gone = [k for k, f in vision.items() if f.stamp_ns < shown_at and k not in shown]
            self.out_of_view_skips += len(gone)
            vision = {k: f for k, f in vision.items() if k not in gone}
        if len(vision) > cfg.max_tracks:
            # keep the faces with the newest frames; the others wait for a free slot
            keep = sorted(vision, key=lambda k: vision[k].stamp_ns, reverse=True)[:cfg.max_tracks]
            self.rows_over_capacity += len(vision) - len(keep)
            vision = {k: vision[k] for k in sorted(keep)}
        rows: List[tuple[str, Optional[Feature], Optional[Feature]]] = []
        if vision:
            owners = set(self.voice_owners(list(vision), now_ns))
            if not owners and self.aligner.voice_for(None, now_ns, cfg.require_speech):
                self.voice_unassigned_steps += 1
            for fid, vf in vision.items():
                af = (self.aligner.voice_for(vf.stamp_ns, now_ns, cfg.require_speech)
                      if fid in owners else None)
                rows.append((fid, vf, af))
        else:
            af = self.aligner.voice_for(None, now_ns, cfg.require_speech)
            if af is not None:
                rows.append((cfg.voice_only_id, None, af))
        if not rows:
            return self._finish(result)

        tracks = []
        for fid, _, _ in rows:
            track, removed = self.tracks.see(fid, now_ns)
            result.removed.extend(removed)
            tracks.append(track)
        n = len(rows)
        ve = np.zeros((n, self.model.vision_embedding_size), np.float32)
        ae = np.zeros((n, self.model.voice_embedding_size), np.float32)
        vp = np.zeros(n, np.float32)
        ap = np.zeros(n, np.float32)
        for i, (_, vf, af) in enumerate(rows):
            if vf is not None:
                ve[i], vp[i] = vf.embedding, 1.0
            if af is not None:
                ae[i], ap[i] = af.embedding, 1.0
        if self.input_observer is not None:
            al = np.zeros((n, len(self.labels)), np.float32)
            for i, (_, _, af) in enumerate(rows):
                z = self._own_logits(af)
                if z is not None:
                    al[i] = z
            self.input_observer(StepInputs(
                now_ns, [fid for fid, _, _ in rows], [t.steps == 0 for t in tracks],
                [max(f.stamp_ns for f in (vf, af) if f is not None) for _, vf, af in rows],
                ve.copy(), vp.copy(), ae.copy(), ap.copy(), al))
        h = np.concatenate([t.state.h for t in tracks], axis=1)
        c = np.concatenate([t.state.c for t in tracks], axis=1)
        t0 = time.perf_counter()
        try:
            probs, va, h2, c2 = self.model.fusion_step(ve, vp, ae, ap, h, c)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several types
            self.model_errors += 1
            result.error = f'fusion step failed: {exc}'
            return self._finish(result)
        result.compute_s = time.perf_counter() - t0
        probs = np.asarray(probs, np.float32)
        va = np.asarray(va, np.float32)
        for i, ((fid, vf, af), track) in enumerate(zip(rows, tracks)):
            if not (np.all(np.isfinite(probs[i])) and np.all(np.isfinite(va[i])) and
                    np.all(np.isfinite(h2[:, i])) and np.all(np.isfinite(c2[:, i]))):
                # never keep a poisoned state: restart this face from zero
                self.nonfinite_outputs += 1
                track.state.h, track.state.c = (np.array(a, np.float32)
                                                for a in self.model.initial_state(1))
                track.state.smoother.reset()
                continue
            track.state.h = np.array(h2[:, i:i + 1], np.float32)
            track.state.c = np.array(c2[:, i:i + 1], np.float32)
            track.steps += 1
            mixed = None
            if vf is None and fid == cfg.voice_only_id and cfg.voice_only_output == 'vocal':
                mixed = self._with_decisions(None, [(af, 1.0)])
            elif vf is not None and (cfg.vocal_weight > 0 or cfg.vision_weight > 0):
                mixed = self._with_decisions(probs[i], [(af, cfg.vocal_weight),
                                                        (vf, cfg.vision_weight)])
            if mixed is not None:
                probs[i], va[i] = mixed
            idx = track.state.smoother.update(probs[i])
            contributors = [f for f in (vf, af) if f is not None]
            newest = max(contributors, key=lambda f: f.stamp_ns)
            result.estimates.append(EmotionEstimate(
                face_id=fid,
                stamp_ns=newest.stamp_ns,
                frame_id=(vf.frame_id if vf is not None else af.frame_id),
                expression=self.labels[idx],
                confidence=float(probs[i, idx]),
                labels=self.labels,
                probabilities=probs[i].copy(),
                valence=float(np.clip(va[i, 0], -1.0, 1.0)),
                arousal=float(np.clip(va[i, 1], -1.0, 1.0)),
                modalities=(MODALITY_VISION if vf is not None else 0) |
                           (MODALITY_VOICE if af is not None else 0),
                received_ns=max(f.received_ns for f in contributors),
            ))
        return self._finish(result)

    def _own_logits(self, feature: Optional[Feature]) -> Optional[np.ndarray]:
        """A feature's own logits (the encoder's decision: a voice window's, or a face's), None
        when it carries none of the bundle's size."""
        if feature is None or feature.logits is None or \
                np.size(feature.logits) != len(self.labels):
            return None
        return np.asarray(feature.logits, np.float32).ravel()

    def _with_decisions(self, probs: Optional[np.ndarray],
                        decisions: Sequence[tuple[Optional[Feature], float]]
                        ) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """(probabilities, [valence, arousal]): the head's ``probs`` (None: left out) times each
        feature's own decision (softmax of its logits) to the power of its weight, renormalised;
        valence/arousal from the bundle's table.  A feature that is None, carries no logits or
        has weight 0 is left out.  None: nothing to mix in (the head's output stays), or the
        model has no valence/arousal table."""
        table = getattr(self.model, 'va_table', None)
        if table is None:
            return None
        log_p, mixed = None, False
        if probs is not None:
            log_p = np.log(np.maximum(np.asarray(probs, np.float64), 1e-12))
        for feature, weight in decisions:
            z = self._own_logits(feature) if weight > 0 else None
            if z is None:
                continue
            z = z.astype(np.float64)
            term = weight * (z - z.max() - np.log(np.exp(z - z.max()).sum()))
            log_p = term if log_p is None else log_p + term
            mixed = True
        if not mixed:
            return None
        p = np.exp(log_p - log_p.max())
        p /= p.sum()
        va = np.clip(p @ np.asarray(table, np.float64), -1.0, 1.0)
        return p.astype(np.float32), va.astype(np.float32)

    def _finish(self, result: StepResult) -> StepResult:
        # an id removed and re-created in the same step (seen again after its timeout) is not gone
        result.removed = [fid for fid in dict.fromkeys(result.removed) if fid not in self.tracks]
        self.estimates_out += len(result.estimates)
        return result

    def drops(self) -> Dict[str, int]:
        return self.aligner.drops()
