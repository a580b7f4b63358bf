"""Whole-frame face scans on a worker thread, so that no frame waits for one while faces are in
view.

Why: with faces in view, the periodic whole-frame scan of ``scan_schedule`` is there only to find
faces that enter; nothing in the frame that is due one needs its answer.  Run in line it sets
the vision path's p95 (~21 of ~23 ms on the development VM).  Here it runs on a worker thread
(OpenCV releases the GIL inside ``detectMultiScale``) while the frame is served by its windows
(~2 ms), and the faces it finds are searched for, with windows, in the first frame processed
after it has finished: a frame or two later, by when an entering face has moved little.
The first face, and any face a window loses, are still searched for in line (``FacePipeline``).
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Optional

import numpy as np

from .face_detection import Detection, HaarFaceDetector

__all__ = ['BackgroundScan', 'DeferredScan']


class BackgroundScan:
    """One whole-frame scan at a time on a worker thread; results are picked up with ``take``."""

    def __init__(self, detector: HaarFaceDetector) -> None:
        self._detector = detector.clone()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix='face_scan')
        self._future: Optional[Future] = None
        self.scans = 0          # started
        self.skipped = 0        # due while the previous one still ran
        self.failures = 0
        self.error = ''

    @property
    def busy(self) -> bool:
        return self._future is not None and not self._future.done()

    def submit(self, image: np.ndarray) -> bool:
        """Start a whole-frame scan of ``image`` (not modified; the caller must not modify it
        either) unless one is still running.  Returns whether it started."""
        if self.busy:
            self.skipped += 1
            return False
        if self._future is not None:        # finished but not taken: superseded by this one
            self.take()
        try:
            self._future = self._pool.submit(self._detector.detect, image)
        except Exception as exc:  # noqa: BLE001 - a dead pool: counted, replaced, next scan retries
            self.failures += 1
            self.error = f'cannot start a scan: {type(exc).__name__}: {exc}'
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix='face_scan')
            return False
        self.scans += 1
        return True

    def take(self) -> list[Detection]:
        """The faces of the last finished scan, once; [] while it runs or when there is none.
        A failed scan is counted and kept in ``error``, never raised into the frame path."""
        if self._future is None or not self._future.done():
            return []
        future, self._future = self._future, None
        try:
            return future.result()
        except Exception as exc:  # noqa: BLE001 - a bad frame must not stop face tracking
            self.failures += 1
            self.error = f'{type(exc).__name__}: {exc}'
            return []

    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until the running scan (if any) has finished; for tests and shutdown."""
        if self._future is not None:
            try:
                self._future.exception(timeout)
            except TimeoutError:
                pass

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DeferredScan:
    """``BackgroundScan``'s timing without the thread, for reproducible replays.

    The scan runs at ``submit`` and its faces are handed out by the next ``take``, i.e. in the
    next frame: what face_node does whenever its worker finishes a scan within one frame period.
    So ``emotion-eval bag`` serves the frame that is due a whole-frame scan with its windows, as
    the node does, instead of with an in-line whole-frame scan.
    """

    busy = False

    def __init__(self, detector: HaarFaceDetector) -> None:
        self._detector = detector
        self._found: Optional[list[Detection]] = None
        self.scans = self.skipped = self.failures = 0
        self.error = ''

    def submit(self, image: np.ndarray) -> bool:
        try:
            self._found = self._detector.detect(image)
        except Exception as exc:  # noqa: BLE001 - as BackgroundScan: counted, never raised
            self._found = []
            self.failures += 1
            self.error = f'{type(exc).__name__}: {exc}'
        self.scans += 1
        return True

    def take(self) -> list[Detection]:
        found, self._found = self._found, None
        return found or []

    def wait(self, timeout: Optional[float] = None) -> None:
        pass

    def close(self) -> None:
        pass
