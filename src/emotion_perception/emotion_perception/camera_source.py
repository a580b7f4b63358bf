"""Frame sources for camera_node: device index, video file (optionally looped) or stream URL.

Why separate from the node: opening, looping, detecting a vanished camera and the reconnect
backoff are plain OpenCV logic that tests can drive with a file written by cv2.VideoWriter, without
ROS.  The node only asks for frames on its timer and publishes them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import cv2
import numpy as np
import yaml

__all__ = ['CameraError', 'Backoff', 'FileTimeline', 'parse_source', 'CameraSource',
           'Calibration', 'load_calibration']


class CameraError(RuntimeError):
    """The camera could not be opened, or a calibration file is invalid."""


class Backoff:
    """Exponential reconnect delay: initial, x factor per failure, capped; reset on success.

    Why: a camera unplugged for minutes must not be hammered at frame rate (log spam, CPU), but a
    short glitch must reconnect fast.
    """

    def __init__(self, initial: float = 0.5, maximum: float = 10.0, factor: float = 2.0) -> None:
        if initial <= 0 or maximum < initial or factor < 1.0:
            raise ValueError(f'bad backoff ({initial}, {maximum}, {factor})')
        self.initial, self.maximum, self.factor = initial, maximum, factor
        self._next = initial
        self.failures = 0

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.maximum, self._next * self.factor)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self._next = self.initial
        self.failures = 0


class FileTimeline:
    """A video file played on a fixed timeline: frame n (counted over loops) is due at
    ``start + n / rate`` and is stamped with that time.

    Why: a file that starts "when the node is ready" and is stamped at each read has no known
    relation to anything else; with a common ``start`` a video file and an audio file (and the
    ground truth of the clip they came from) share one clock, however late each process started.
    A frame is read when it is due, never before (a camera publishes a frame after its capture
    time, so the latency measured from its stamp is never flattered); a reader more than 1.5
    frames behind drops frames to catch up, as a live camera would, rather than drifting.
    """

    def __init__(self, start: float, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f'rate must be > 0, got {rate}')
        self.start, self.rate = float(start), float(rate)
        self.next_frame = 0          # index of the next frame to publish, over loops
        self.dropped = 0             # frames read and dropped to keep to the timeline

    def frames_to_drop(self, now: float) -> Optional[int]:
        """None while the next frame is not due at `now`; else how many frames to read and drop
        before the one to publish (0 when on time)."""
        lag = (now - self.start) * self.rate - self.next_frame
        if lag < 0.0:
            return None
        return max(0, int(lag - 0.5))

    def stamp(self) -> float:
        """The due time of the next frame [s]."""
        return self.start + self.next_frame / self.rate

    def advance(self, frames: int = 1, dropped: bool = False) -> None:
        self.next_frame += frames
        if dropped:
            self.dropped += frames


def parse_source(source: Union[str, int]) -> Union[int, str]:
    """'0' or 0 -> device index 0; a URL (rtsp://, http://, ...) or a file path stays a string."""
    if isinstance(source, int):
        if source < 0:
            raise CameraError(f'camera device index must be >= 0, got {source}')
        return source
    s = str(source).strip()
    if not s:
        raise CameraError('camera source is empty: give a device index, a video file or a URL')
    if s.isdigit():
        return int(s)
    if s.startswith('/dev/video') and s[len('/dev/video'):].isdigit():
        return int(s[len('/dev/video'):])
    return s


def _is_url(s: str) -> bool:
    return '://' in s


class CameraSource:
    """One OpenCV capture with loop-at-end for files and a clear state when it fails.

    ``read()`` returns a BGR frame or None.  None means "no frame now": the capture is closed
    and the caller should call ``open()`` again after ``backoff.next_delay()`` seconds.
    """

    def __init__(self, source: Union[str, int], width: int = 0, height: int = 0,
                 fps: float = 0.0, loop: bool = True,
                 capture_factory: Callable[..., cv2.VideoCapture] = cv2.VideoCapture) -> None:
        self.source = parse_source(source)
        self.is_file = isinstance(self.source, str) and not _is_url(self.source)
        self.width, self.height, self.fps, self.loop = int(width), int(height), float(fps), loop
        self._factory = capture_factory
        self._cap: Optional[cv2.VideoCapture] = None
        self.frames_read = 0
        self.loops = 0
        self.ended = False          # a non-looping file reached its end
        self.last_error = ''

    @property
    def is_open(self) -> bool:
        return self._cap is not None

    def open(self) -> None:
        """Open the capture; raises CameraError with the reason when it cannot."""
        self.close()
        if self.is_file and not os.path.isfile(self.source):
            self.last_error = f'video file {self.source!r} does not exist'
            raise CameraError(self.last_error)
        try:
            cap = self._factory(self.source)
            opened = cap is not None and cap.isOpened()
        except Exception as exc:  # noqa: BLE001 - cv2.error, OSError from a backend
            self.last_error = f'cannot open {self.source!r}: {type(exc).__name__}: {exc}'
            raise CameraError(self.last_error) from exc
        if not opened:
            kind = 'video file' if self.is_file else ('stream' if isinstance(self.source, str)
                                                      else 'camera device')
            self.last_error = f'cannot open {kind} {self.source!r}'
            raise CameraError(self.last_error)
        if not self.is_file:
            if self.width > 0:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            if self.height > 0:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.fps > 0:
                cap.set(cv2.CAP_PROP_FPS, self.fps)
        self._cap = cap
        self.ended = False
        self.last_error = ''

    @property
    def file_fps(self) -> float:
        """The frame rate an open video file declares (0 when unknown or not a file)."""
        if self._cap is None or not self.is_file:
            return 0.0
        try:
            return float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        except Exception:  # noqa: BLE001 - a backend without the property
            return 0.0

    def read(self) -> Optional[np.ndarray]:
        """Next frame (uint8 BGR HxWx3), or None when the source failed or a file ended.

        Any exception of the backend or of the conversion (a corrupt frame, a driver error) is a
        failure like a lost camera: ``last_error`` names it, the capture is closed, None."""
        if self._cap is None:
            return None
        try:
            return self._read()
        except Exception as exc:  # noqa: BLE001 - never raised into the capture loop
            self.last_error = f'reading {self.source!r} failed: {type(exc).__name__}: {exc}'
            self.close()
            return None

    def _read(self) -> Optional[np.ndarray]:
        ok, frame = self._cap.read()
        if (not ok or frame is None) and self.is_file and self.loop and self.frames_read > 0:
            # End of file: rewind (seeking is unreliable for some containers, so reopen).
            self.loops += 1
            self._cap.release()
            self._cap = self._factory(self.source)
            ok, frame = (self._cap.read() if self._cap is not None and self._cap.isOpened()
                         else (False, None))
        if not ok or frame is None or frame.size == 0:
            if self.is_file and not self.loop and self.frames_read > 0:
                self.ended = True
                self.last_error = 'end of video file'
            else:
                self.last_error = f'no frame from {self.source!r} (device gone or stream ended)'
            self.close()
            return None
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        elif frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        if self.is_file and self.width > 0 and self.height > 0 and \
                frame.shape[:2] != (self.height, self.width):
            frame = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_AREA)
        self.frames_read += 1
        return frame

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            try:
                cap.release()
            except Exception:  # noqa: BLE001 - a broken capture is dropped all the same
                pass


@dataclass
class Calibration:
    """The fields of a camera_calibration YAML (ROS camera_info_manager format)."""

    width: int
    height: int
    camera_name: str
    distortion_model: str
    k: list = field(default_factory=list)   # 9
    d: list = field(default_factory=list)   # n
    r: list = field(default_factory=list)   # 9
    p: list = field(default_factory=list)   # 12


def _matrix(doc: dict, key: str, rows: int, cols: int, path: str) -> list:
    m = doc.get(key)
    if not isinstance(m, dict) or 'data' not in m:
        raise CameraError(f'{path}: calibration lacks {key}.data')
    data = m['data']
    if not isinstance(data, list) or len(data) != rows * cols:
        raise CameraError(f'{path}: {key}.data must have {rows * cols} numbers, '
                          f'got {data!r:.80}')
    try:
        return [float(x) for x in data]
    except (TypeError, ValueError) as exc:
        raise CameraError(f'{path}: {key}.data is not numeric: {exc}') from exc


def load_calibration(path: str) -> Calibration:
    """Read a camera_calibration YAML (image_width, camera_matrix, distortion_*, ...)."""
    try:
        with open(path, encoding='utf-8') as f:
            doc = yaml.safe_load(f)
    except OSError as exc:
        raise CameraError(f'cannot read calibration file {path!r}: {exc}') from exc
    except yaml.YAMLError as exc:
        raise CameraError(f'calibration file {path!r} is not valid YAML: {exc}') from exc
    if not isinstance(doc, dict):
        raise CameraError(f'calibration file {path!r} must be a YAML mapping')
    for key in ('image_width', 'image_height', 'camera_matrix', 'distortion_coefficients'):
        if key not in doc:
            raise CameraError(f'calibration file {path!r} lacks {key!r}')
    dist = doc['distortion_coefficients']
    n_d = int(dist.get('cols', 0)) * int(dist.get('rows', 1)) if isinstance(dist, dict) else 0
    d = _matrix(doc, 'distortion_coefficients', 1, n_d, path) if n_d else []
    r = (_matrix(doc, 'rectification_matrix', 3, 3, path) if 'rectification_matrix' in doc
         else [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0])
    k = _matrix(doc, 'camera_matrix', 3, 3, path)
    p = (_matrix(doc, 'projection_matrix', 3, 4, path) if 'projection_matrix' in doc
         else k[0:3] + [0.0] + k[3:6] + [0.0] + k[6:9] + [0.0])
    return Calibration(width=int(doc['image_width']), height=int(doc['image_height']),
                       camera_name=str(doc.get('camera_name', '')),
                       distortion_model=str(doc.get('distortion_model', 'plumb_bob')),
                       k=k, d=d, r=r, p=p)

