"""Per-face state of the fusion (one LSTM state and one label smoother per face track; no rclpy).

Why a bounded table with timeouts: the LSTM's hidden state is the fusion's memory of a face, so it
must follow the face's track id, start from zero for a new face, and be forgotten when the face has
been gone longer than ``timeout`` (a re-appearing id after that is treated as a new person: the
tracker may reuse ids).  A crowd or a tracker that mints a new id every frame must not grow memory
or per-face publishers without bound, so at most ``max_tracks`` are kept and the least recently
seen one is evicted to make room.  Callers learn which ids went away, so they can destroy the
per-face publishers and forget smoothing state with them.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Generic, Iterator, Optional, TypeVar

__all__ = ['Track', 'FaceTracks']

S = TypeVar('S')


@dataclass
class Track(Generic[S]):
    """One face's entry: its state (whatever the factory made) and when it was created/seen."""

    face_id: str
    state: S
    created_ns: int
    last_seen_ns: int
    steps: int = 0


class FaceTracks(Generic[S]):
    """Track id -> Track, least recently seen first, bounded and expiring.

    ``make_state(face_id)`` creates the state of a new track (e.g. zero LSTM state + a smoother).
    """

    def __init__(self, max_tracks: int, timeout_ns: int,
                 make_state: Callable[[str], S]) -> None:
        if max_tracks < 1 or timeout_ns <= 0:
            raise ValueError('max_tracks must be >= 1 and timeout_ns > 0')
        self.max_tracks = int(max_tracks)
        self.timeout_ns = int(timeout_ns)
        self._make_state = make_state
        self._tracks: 'OrderedDict[str, Track[S]]' = OrderedDict()
        self.created = 0
        self.expired = 0
        self.evicted = 0

    def see(self, face_id: str, now_ns: int) -> tuple[Track[S], list[str]]:
        """Mark ``face_id`` seen at ``now_ns``, creating its track at first sight.

        Returns the track and the ids removed to make room (least recently seen first).  A track
        found but already past its timeout is restarted with fresh state (same as expiry).
        """
        removed: list[str] = []
        track = self._tracks.get(face_id)
        if track is not None and now_ns - track.last_seen_ns > self.timeout_ns:
            del self._tracks[face_id]
            self.expired += 1
            removed.append(face_id)
            track = None
        if track is None:
            while len(self._tracks) >= self.max_tracks:
                old_id, _ = self._tracks.popitem(last=False)
                self.evicted += 1
                removed.append(old_id)
            track = Track(face_id, self._make_state(face_id), now_ns, now_ns)
            self._tracks[face_id] = track
            self.created += 1
        else:
            track.last_seen_ns = max(track.last_seen_ns, now_ns)
            self._tracks.move_to_end(face_id)
        return track, removed

    def expire(self, now_ns: int) -> list[str]:
        """Remove the tracks not seen for longer than the timeout; return their ids."""
        gone = [fid for fid, t in self._tracks.items() if now_ns - t.last_seen_ns > self.timeout_ns]
        for fid in gone:
            del self._tracks[fid]
        self.expired += len(gone)
        return gone

    def remove(self, face_id: str) -> bool:
        return self._tracks.pop(face_id, None) is not None

    def get(self, face_id: str) -> Optional[Track[S]]:
        return self._tracks.get(face_id)

    def ids(self) -> list[str]:
        """Track ids, least recently seen first."""
        return list(self._tracks)

    def __contains__(self, face_id: object) -> bool:
        return face_id in self._tracks

    def __len__(self) -> int:
        return len(self._tracks)

    def __iter__(self) -> Iterator[Track[S]]:
        return iter(list(self._tracks.values()))
