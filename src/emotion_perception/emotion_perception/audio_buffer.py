"""A ring buffer of one audio stream, checked for continuity by the chunks' stamps.

Why: AudioChunks arrive over best-effort DDS, so chunks can be lost (gap), repeated (duplicate),
late (reordered) or come from a restarted microphone at another rate.  The sliding voice windows
must be built from samples that really are contiguous, and the stamp of a window's first sample
must be exact, so every chunk is placed by its stamp and each irregularity is classified,
counted and handled here, never raised.

Policy (documented in the README):
- start within ``tolerance`` of the expected time: appended (stamp jitter is ignored, the sample
  count is the clock);
- a gap up to ``max_fill`` seconds: filled with silence (windows stay aligned; the VAD sees
  silence); a longer gap: the stream is reset (buffered audio dropped, windows restart);
- a chunk that starts earlier than expected: an exact repeat of a recent stamp is a duplicate and
  dropped; one that ends before the expected time is late (reordered) and dropped, its slot
  having been filled already; one that partly overlaps has its old part trimmed;
- a chunk that starts more than ``max_backstep`` seconds before the expected time (a clock that
  stepped back: NTP, a replayed bag that loops): the stream is reset at the new stamp, instead of
  calling every chunk of the jump "reordered";
- another sample rate: the stream is reset at the new rate.

Bounds (a single message must not wedge the node): the sample rate must lie in
[MIN_SAMPLE_RATE, MAX_SAMPLE_RATE] and the stamp must be finite (else AudioFormatError, nothing
changed), and silence is never filled beyond the buffer's capacity (a longer gap resets).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Optional

import numpy as np

from .audio_format import check_sample_rate, check_stamp

__all__ = ['ChunkEvent', 'PushResult', 'AudioStreamBuffer']


class ChunkEvent(str, Enum):
    FIRST = 'first'
    OK = 'ok'
    GAP_FILLED = 'gap_filled'
    GAP_RESET = 'gap_reset'
    OVERLAP_TRIMMED = 'overlap_trimmed'
    DUPLICATE = 'duplicate'
    REORDERED = 'reordered'
    RATE_CHANGED = 'rate_changed'
    BACKSTEP_RESET = 'backstep_reset'


@dataclass
class PushResult:
    event: ChunkEvent
    samples_added: int       # samples appended (including inserted silence)
    offset_seconds: float    # chunk start minus expected start (> 0: gap, < 0: early)

    @property
    def reset(self) -> bool:
        """True when the stream restarted: windows and VAD state must restart too."""
        return self.event in (ChunkEvent.FIRST, ChunkEvent.GAP_RESET, ChunkEvent.RATE_CHANGED,
                              ChunkEvent.BACKSTEP_RESET)


class AudioStreamBuffer:
    """Mono float32 samples with absolute indices; index i was captured at ``time_of(i)``."""

    def __init__(self, capacity_seconds: float = 10.0, tolerance: float = 0.02,
                 max_fill: float = 0.5, max_backstep: Optional[float] = None) -> None:
        """``max_backstep``: a chunk this much earlier than expected [s] resets the stream
        (default: 1 s, or twice ``tolerance`` if that is more)."""
        if max_backstep is None:
            max_backstep = max(1.0, 2.0 * tolerance)
        if not (capacity_seconds > 0 and tolerance >= 0 and max_fill >= 0 and
                max_backstep > tolerance):
            raise ValueError('capacity_seconds must be > 0, tolerance and max_fill >= 0, '
                             'max_backstep > tolerance')
        self.capacity_seconds, self.tolerance, self.max_fill = capacity_seconds, tolerance, max_fill
        self.max_backstep = max_backstep
        self.sample_rate: Optional[int] = None
        self._origin = 0.0          # capture time of absolute index 0
        self._data = np.zeros(0, np.float32)
        self.start_index = 0        # absolute index of self._data[0]
        self._recent: deque = deque(maxlen=64)
        self.counts: dict[str, int] = {e.value: 0 for e in ChunkEvent}

    @property
    def end_index(self) -> int:
        return self.start_index + self._data.size

    def time_of(self, index: int) -> float:
        """Capture time [s] of absolute sample ``index``."""
        return self._origin + index / float(self.sample_rate or 1)

    def get(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) by absolute index (must be inside the buffer)."""
        if start < self.start_index or stop > self.end_index or stop < start:
            raise IndexError(f'[{start}, {stop}) outside buffer [{self.start_index}, '
                             f'{self.end_index})')
        return self._data[start - self.start_index:stop - self.start_index]

    def _restart(self, stamp: float, rate: int) -> None:
        """New stream: keep indices increasing, drop the samples, anchor index end at stamp."""
        self.sample_rate = int(rate)
        self.start_index = self.end_index
        self._data = np.zeros(0, np.float32)
        self._origin = stamp - self.start_index / float(rate)

    def _append(self, x: np.ndarray) -> None:
        self._data = np.concatenate([self._data, x.astype(np.float32, copy=False)])
        cap = int(self.capacity_seconds * (self.sample_rate or 1))
        if self._data.size > cap:
            cut = self._data.size - cap
            self._data = self._data[cut:].copy()
            self.start_index += cut

    def _count(self, result: PushResult) -> PushResult:
        self.counts[result.event.value] += 1
        return result

    def push(self, stamp: float, sample_rate: int, samples: np.ndarray) -> PushResult:
        """Place one chunk (mono float32, first sample captured at ``stamp`` seconds)."""
        x = np.asarray(samples, np.float32).reshape(-1)
        sample_rate = check_sample_rate(sample_rate)      # AudioFormatError: nothing changed
        stamp = check_stamp(stamp)
        key = round(stamp, 6)
        if self.sample_rate is None or sample_rate != self.sample_rate:
            event = ChunkEvent.FIRST if self.sample_rate is None else ChunkEvent.RATE_CHANGED
            self._restart(stamp, sample_rate)
            self._recent.clear()
            self._recent.append(key)
            self._append(x)
            return self._count(PushResult(event, x.size, 0.0))
        rate = float(self.sample_rate)
        offset = stamp - self.time_of(self.end_index)
        if abs(offset) <= self.tolerance:
            self._recent.append(key)
            self._append(x)
            return self._count(PushResult(ChunkEvent.OK, x.size, offset))
        if offset > 0:
            self._recent.append(key)
            # never fill more silence than the ring holds (it would only push itself out)
            if offset <= min(self.max_fill, self.capacity_seconds):
                fill = int(round(offset * rate))
                self._append(np.zeros(fill, np.float32))
                self._append(x)
                return self._count(PushResult(ChunkEvent.GAP_FILLED, fill + x.size, offset))
            self._restart(stamp, self.sample_rate)
            self._append(x)
            return self._count(PushResult(ChunkEvent.GAP_RESET, x.size, offset))
        if key in self._recent:
            return self._count(PushResult(ChunkEvent.DUPLICATE, 0, offset))
        if offset < -self.max_backstep:             # the clock stepped back: a new stream
            self._recent.clear()
            self._recent.append(key)
            self._restart(stamp, self.sample_rate)
            self._append(x)
            return self._count(PushResult(ChunkEvent.BACKSTEP_RESET, x.size, offset))
        new = int(round((stamp + x.size / rate - self.time_of(self.end_index)) * rate))
        if new <= int(round(self.tolerance * rate)):
            return self._count(PushResult(ChunkEvent.REORDERED, 0, offset))
        self._recent.append(key)
        self._append(x[x.size - new:])
        return self._count(PushResult(ChunkEvent.OVERLAP_TRIMMED, new, offset))
