"""Time alignment of the vision and voice feature streams (no rclpy).

Why not message_filters.ApproximateTimeSynchronizer: it only emits a set when *every* stream has a
message, so the fusion would stop the moment somebody stops talking (or the microphone node dies),
and it pairs each message at most once while the two streams run at very different rates (vision
~15-30 Hz per face, voice ~2 Hz with ~1 s windows).  The fusion instead runs at a fixed output rate
and asks, at each step, "what is the newest vision feature of this face, and which voice window
belongs with it?".  What is kept from ApproximateTime:

* bounded queues per source (``queue_size``), oldest entries pushed out first;
* ``slop``: the largest time distance between the two members of a fused pair;
* per source, stamps must increase: an out-of-order or duplicate message is dropped and counted
  (ApproximateTime drops those too), and so is a message older than ``max_age`` on arrival
  ("late": it could never be fused).

Voice windows have a length (a window stamped at its first sample covers ``[stamp, stamp +
window]``), so the vision/voice distance is the distance from the vision stamp to that interval:
zero when the frame lies inside the window.  Of several windows within ``slop`` the nearest wins,
ties going to the newest.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from typing import Deque, Dict, Iterable, Optional

from .features import Feature

__all__ = ['DropReason', 'StreamBuffer', 'TimeAligner', 'interval_distance_ns']

NS = 1_000_000_000


class DropReason:
    """Why a well-formed input was not buffered (the strings are the diagnostics keys)."""

    LATE = 'late'
    OUT_OF_ORDER = 'out_of_order'
    DUPLICATE = 'duplicate'
    FUTURE = 'future_stamp'

    ALL = (LATE, OUT_OF_ORDER, DUPLICATE, FUTURE)


def interval_distance_ns(t_ns: int, start_ns: int, length_ns: int) -> int:
    """Distance from instant ``t`` to the interval ``[start, start + length]`` (0 inside it)."""
    if t_ns < start_ns:
        return start_ns - t_ns
    end = start_ns + max(0, length_ns)
    return t_ns - end if t_ns > end else 0


class StreamBuffer:
    """Bounded, per-source, stamp-ordered buffers of one modality's features.

    ``max_sources`` bounds the memory a flood of face ids can take: a new source beyond it pushes
    out the source whose newest message is the oldest.  ``now_ns`` is passed in (rather than read
    from a clock) so tests and bag replays control time.
    """

    def __init__(self, queue_size: int, max_age_ns: int, max_sources: int,
                 future_tolerance_ns: Optional[int] = None) -> None:
        if queue_size < 1 or max_sources < 1 or max_age_ns <= 0:
            raise ValueError('queue_size and max_sources must be >= 1 and max_age_ns > 0')
        self.queue_size = int(queue_size)
        self.max_age_ns = int(max_age_ns)
        self.max_sources = int(max_sources)
        self.future_tolerance_ns = int(max_age_ns if future_tolerance_ns is None
                                       else future_tolerance_ns)
        # source_id -> deque of features, oldest first; OrderedDict order = least recently pushed
        self._queues: 'OrderedDict[str, Deque[Feature]]' = OrderedDict()
        # newest stamp accepted per source; kept after the queue empties so a replayed old
        # message is still recognised as out of order
        self._newest: Dict[str, int] = {}
        self.drops: Dict[str, int] = {r: 0 for r in DropReason.ALL}
        self.accepted = 0

    def push(self, feature: Feature, now_ns: int) -> Optional[str]:
        """Buffer ``feature``; return None, or the DropReason it was dropped for."""
        reason = self._drop_reason(feature, now_ns)
        if reason is not None:
            self.drops[reason] += 1
            return reason
        sid = feature.source_id
        queue = self._queues.get(sid)
        if queue is None:
            while len(self._queues) >= self.max_sources:
                old, _ = self._queues.popitem(last=False)
                self._newest.pop(old, None)
            queue = self._queues[sid] = deque(maxlen=self.queue_size)
        else:
            self._queues.move_to_end(sid)
        queue.append(feature)
        self._newest[sid] = feature.stamp_ns
        self.accepted += 1
        return None

    def _drop_reason(self, feature: Feature, now_ns: int) -> Optional[str]:
        if now_ns - feature.stamp_ns > self.max_age_ns:
            return DropReason.LATE
        if feature.stamp_ns - now_ns > self.future_tolerance_ns:
            return DropReason.FUTURE
        newest = self._newest.get(feature.source_id)
        if newest is not None:
            if feature.stamp_ns == newest:
                return DropReason.DUPLICATE
            if feature.stamp_ns < newest:
                return DropReason.OUT_OF_ORDER
        return None

    def prune(self, now_ns: int) -> None:
        """Forget entries older than max_age, and sources with nothing left to offer.

        The newest-stamp memory of a source goes with it: a source silent for longer than max_age
        may restart its clock (a restarted node) without all its messages counting as out of order.
        """
        for sid in list(self._queues):
            queue = self._queues[sid]
            while queue and now_ns - queue[0].stamp_ns > self.max_age_ns:
                queue.popleft()
            if not queue:
                del self._queues[sid]
                self._newest.pop(sid, None)

    def sources(self) -> list[str]:
        return list(self._queues)

    def latest(self, source_id: str, now_ns: int) -> Optional[Feature]:
        """Newest feature of ``source_id`` that is not older than max_age at ``now_ns``."""
        queue = self._queues.get(source_id)
        if not queue:
            return None
        newest = queue[-1]
        return newest if now_ns - newest.stamp_ns <= self.max_age_ns else None

    def fresh(self, now_ns: int) -> Iterable[Feature]:
        """Every buffered feature, all sources, that is not older than max_age at ``now_ns``."""
        for queue in self._queues.values():
            for f in queue:
                if now_ns - f.stamp_ns <= self.max_age_ns:
                    yield f

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())


class TimeAligner:
    """Vision buffers (one source per face) and voice buffers, queried at each output step.

    ``slop_ns`` bounds the vision-to-voice-window distance of a fused pair; ``voice_window_ns`` is
    the length of one voice analysis window (from the model bundle), 0 to treat windows as instants.
    """

    def __init__(self, slop_ns: int, vision_max_age_ns: int, voice_max_age_ns: int,
                 queue_size: int, max_faces: int, voice_window_ns: int = 0,
                 max_voice_sources: int = 4) -> None:
        if slop_ns < 0:
            raise ValueError('slop must be >= 0')
        self.slop_ns = int(slop_ns)
        self.voice_window_ns = max(0, int(voice_window_ns))
        self.vision = StreamBuffer(queue_size, vision_max_age_ns, max_faces)
        self.voice = StreamBuffer(queue_size, voice_max_age_ns, max_voice_sources)

    def add_vision(self, feature: Feature, now_ns: int) -> Optional[str]:
        return self.vision.push(feature, now_ns)

    def add_voice(self, feature: Feature, now_ns: int) -> Optional[str]:
        return self.voice.push(feature, now_ns)

    def prune(self, now_ns: int) -> None:
        self.vision.prune(now_ns)
        self.voice.prune(now_ns)

    def latest_vision(self, now_ns: int) -> Dict[str, Feature]:
        """Newest fresh vision feature of each face (face id -> feature), in stable id order."""
        out: Dict[str, Feature] = {}
        for sid in sorted(self.vision.sources()):
            f = self.vision.latest(sid, now_ns)
            if f is not None:
                out[sid] = f
        return out

    def voice_for(self, vision_stamp_ns: Optional[int], now_ns: int,
                  require_speech: bool = False) -> Optional[Feature]:
        """The voice window to fuse with a vision frame stamped ``vision_stamp_ns``.

        With a vision stamp: the fresh window nearest to it within ``slop`` (ties: the newest).
        Without one (audio-only): the newest fresh window.  Windows without speech are skipped
        when ``require_speech``.
        """
        best: Optional[Feature] = None
        best_key: Optional[tuple[int, int]] = None
        for f in self.voice.fresh(now_ns):
            if require_speech and not f.speech:
                continue
            if vision_stamp_ns is None:
                key = (0, -f.stamp_ns)
            else:
                d = interval_distance_ns(vision_stamp_ns, f.stamp_ns, self.voice_window_ns)
                if d > self.slop_ns:
                    continue
                key = (d, -f.stamp_ns)
            if best_key is None or key < best_key:
                best, best_key = f, key
        return best

    def drops(self) -> Dict[str, int]:
        """Drop counts per reason, both streams summed, plus per stream ("vision.late", ...)."""
        out = {r: self.vision.drops[r] + self.voice.drops[r] for r in DropReason.ALL}
        for name, buf in (('vision', self.vision), ('voice', self.voice)):
            for r, n in buf.drops.items():
                out[f'{name}.{r}'] = n
        return out
