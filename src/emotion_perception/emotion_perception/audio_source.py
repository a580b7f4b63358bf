"""Audio sources for microphone_node: a sounddevice input stream or a WAV/FLAC file.

Why separate from the node: the file source is how tests and replays feed the vocal path with real
speech, and the device source's one hard part (mapping the PortAudio ADC clock to ROS time and
reporting a missing PortAudio or device clearly) is testable without ROS.

Both sources yield ``AudioBlock``s whose ``start_time`` (seconds, on the caller's clock) is the
capture time of the FIRST sample, contiguous across blocks: block k+1 starts exactly
``frames / rate`` after block k, which is what AudioChunk consumers rely on to detect gaps.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import numpy as np

from .audio_format import clean_non_finite

__all__ = ['AudioSourceError', 'AudioBlock', 'FileAudioSource', 'DeviceAudioSource',
           'parse_device']


class AudioSourceError(RuntimeError):
    """PortAudio/sounddevice or the device is missing, or the file is unreadable."""


@dataclass
class AudioBlock:
    samples: np.ndarray      # float32 [frames, channels]
    sample_rate: int
    start_time: float        # capture time of the first sample [s] on the caller's clock
    overflow: bool = False   # the device reported an input overflow before this block


def parse_device(device: Union[str, int, None]) -> Union[int, str, None]:
    """'' -> default device, '3' -> index 3, other text -> a device name substring."""
    if device is None:
        return None
    s = str(device).strip()
    if not s:
        return None
    return int(s) if s.isdigit() else s


class FileAudioSource:
    """A sound file cut into fixed-size blocks, optionally looped and paced in real time.

    The file is decoded once (soundfile: WAV, FLAC, OGG) into float32, NaN/inf samples replaced
    by 0 (counted in ``non_finite_samples``); ``channels`` > 0 mixes
    down or up to that count, 0 keeps the file's.  With ``realtime`` the caller sleeps until each
    block's capture time (``wait_time``), so downstream sees the rate a microphone would give.

    ``start_time`` (> 0) puts the file's first sample at that time on ``clock`` instead of at the
    first call: blocks are stamped from it, and a source first read after it skips the blocks
    already past (counted in ``skipped_blocks``), as a microphone switched on late would, so that
    the file stays on the same timeline as a video played from the same start.
    """

    def __init__(self, path: str, chunk_seconds: float, loop: bool = False, channels: int = 0,
                 clock: Callable[[], float] = time.time, start_time: float = 0.0) -> None:
        import soundfile as sf  # noqa: PLC0415 - libsndfile only for the file source
        try:
            data, rate = sf.read(path, dtype='float32', always_2d=True)
        except Exception as exc:  # noqa: BLE001 - soundfile raises LibsndfileError, OSError...
            raise AudioSourceError(f'cannot read audio file {path!r}: {exc}') from exc
        if data.shape[0] == 0:
            raise AudioSourceError(f'audio file {path!r} has no samples')
        # A float WAV with NaN/inf samples (a broken recorder): play it with 0 in their place
        # and say how many, instead of refusing every chunk that holds one.
        data, self.non_finite_samples = clean_non_finite(data)
        if channels > 0 and channels != data.shape[1]:
            mono = data.mean(axis=1, keepdims=True, dtype=np.float32)
            data = np.repeat(mono, channels, axis=1)
        if chunk_seconds <= 0:
            raise AudioSourceError(f'chunk_seconds must be > 0, got {chunk_seconds}')
        self.path, self.data, self.sample_rate = path, data, int(rate)
        self.channels = data.shape[1]
        self.chunk_frames = max(1, int(round(chunk_seconds * self.sample_rate)))
        self.loop = loop
        self._clock = clock
        self._pos = 0                 # read position in the file
        self._emitted = 0             # frames emitted since start (stream clock)
        self._t0: Optional[float] = None
        self.start_time = float(start_time)
        self.skipped_blocks = 0
        self.loops = 0

    @property
    def finished(self) -> bool:
        return not self.loop and self._pos >= self.data.shape[0]

    def _begin(self) -> None:
        """Fix the stream clock on first use (and skip what a late start missed)."""
        if self._t0 is not None:
            return
        if self.start_time <= 0:
            self._t0 = self._clock()
            return
        self._t0 = self.start_time
        late = int((self._clock() - self.start_time) * self.sample_rate) // self.chunk_frames
        for _ in range(max(0, late)):
            if self.finished or self._take() is None:
                break
            self.skipped_blocks += 1

    def next_block(self) -> Optional[AudioBlock]:
        """The next block (the file's last one may be shorter), or None at the end."""
        self._begin()
        return self._take()

    def _take(self) -> Optional[AudioBlock]:
        if self._pos >= self.data.shape[0]:
            if not self.loop:
                return None
            self._pos = 0
            self.loops += 1
        block = self.data[self._pos:self._pos + self.chunk_frames]
        if self.loop and block.shape[0] < self.chunk_frames:
            # Wrap inside the block so that every looped block has the same size.
            rest = self.chunk_frames - block.shape[0]
            block = np.concatenate([block, self.data[:rest]])
            self._pos = rest
            self.loops += 1
        else:
            self._pos += block.shape[0]
        start = self._t0 + self._emitted / self.sample_rate
        self._emitted += block.shape[0]
        return AudioBlock(np.ascontiguousarray(block), self.sample_rate, start)

    def wait_time(self) -> float:
        """Seconds to wait until the next block would be fully captured in real time."""
        self._begin()
        due = self._t0 + (self._emitted + self.chunk_frames) / self.sample_rate
        return max(0.0, due - self._clock())

    def close(self) -> None:
        pass


def _import_sounddevice() -> Any:
    try:
        import sounddevice as sd  # noqa: PLC0415 - PortAudio is optional: a clear error
    except (ImportError, OSError) as exc:
        raise AudioSourceError(f'sounddevice/PortAudio is not available: {exc}') from exc
    return sd


class DeviceAudioSource:
    """A sounddevice.InputStream whose callback queues blocks stamped from the ADC clock.

    Stamps: PortAudio gives ``inputBufferAdcTime`` on the stream clock; at start we measure the
    offset between ``stream.time`` and our clock, so a block's ``start_time`` is
    ``adc_time + offset`` (falls back to "now - block duration" when the host API reports 0).
    """

    def __init__(self, device: Union[str, int, None], sample_rate: int, channels: int,
                 chunk_frames: int, clock: Callable[[], float] = time.time,
                 max_queue: int = 64) -> None:
        self.device, self.sample_rate = parse_device(device), int(sample_rate)
        self.channels, self.chunk_frames = int(channels), int(chunk_frames)
        self._clock = clock
        self._queue: 'queue.Queue[AudioBlock]' = queue.Queue(max_queue)
        self._stream: Any = None
        self._offset = 0.0
        self._lock = threading.Lock()
        self.dropped_blocks = 0
        self.overflows = 0

    def open(self) -> None:
        """Start the stream; AudioSourceError names what is missing (PortAudio, device, rate)."""
        sd = _import_sounddevice()
        try:
            info = sd.query_devices(self.device, 'input')
        except Exception as exc:  # noqa: BLE001 - ValueError/PortAudioError for no device
            raise AudioSourceError(f'no audio input device {self.device!r}: {exc}') from exc
        try:
            stream = sd.InputStream(device=self.device, samplerate=self.sample_rate,
                                    channels=self.channels, dtype='float32',
                                    blocksize=self.chunk_frames, callback=self._callback)
            stream.start()
        except Exception as exc:  # noqa: BLE001
            raise AudioSourceError(f'cannot open input stream on {info.get("name")!r} at '
                                   f'{self.sample_rate} Hz x {self.channels} ch: {exc}') from exc
        self._offset = self._clock() - float(stream.time)
        self._stream = stream

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        adc = float(getattr(time_info, 'inputBufferAdcTime', 0.0) or 0.0)
        start = adc + self._offset if adc > 0 else self._clock() - frames / self.sample_rate
        overflow = bool(status and getattr(status, 'input_overflow', False))
        if overflow:
            self.overflows += 1
        try:
            self._queue.put_nowait(AudioBlock(indata.copy(), self.sample_rate, start, overflow))
        except queue.Full:
            self.dropped_blocks += 1

    def get(self, timeout: float) -> Optional[AudioBlock]:
        """The next captured block, or None after ``timeout`` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def active(self) -> bool:
        return self._stream is not None and bool(self._stream.active)

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception:  # noqa: BLE001 - the device may already be gone
                pass
            self._stream = None
