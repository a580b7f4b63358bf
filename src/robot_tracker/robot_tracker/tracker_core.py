"""The tracker's decision logic without ROS: selection -> control -> lost-target behaviour.

tracker_node.py is only an adapter around this class, so the whole behaviour is unit-testable and
benchmarkable without DDS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from .controller import PanTiltController
from .search import LostTargetBehaviour, Mode
from .target_selection import FaceObs, TargetSelector


@dataclass(frozen=True)
class StepResult:
    """Outcome of one control step."""

    mode: Mode
    target_id: str
    error_x: float
    error_y: float
    pan: float
    tilt: float


class TrackerCore:
    """Owns selector, controller and search; the node calls on_faces() and step()."""

    def __init__(self, selector: TargetSelector, controller: PanTiltController,
                 search: LostTargetBehaviour, target_timeout: float = 0.5) -> None:
        if target_timeout <= 0:
            raise ValueError('target_timeout must be > 0')
        self.selector = selector
        self.controller = controller
        self.search = search
        self.target_timeout = target_timeout
        self._target: Optional[FaceObs] = None
        self._last_seen: Optional[float] = None

    @property
    def target(self) -> Optional[FaceObs]:
        """The face being tracked, None when none."""
        return self._target

    def on_faces(self, faces: Sequence[FaceObs], stamp: float, now: float) -> Optional[FaceObs]:
        """Feed one FaceArray; returns the selected face (None when no usable face)."""
        face = self.selector.select(faces)
        if face is None:
            return None
        self._target = face
        self._last_seen = now
        self.controller.observe(face.error_x, face.error_y, stamp, now)
        self.search.found()
        return face

    def step(self, now: float, link_fault: bool = False) -> StepResult:
        """Advance the loop; link_fault only changes the reported mode (the loop keeps running so
        that the head resumes smoothly when the link comes back)."""
        if self._target is not None and self._last_seen is not None \
                and now - self._last_seen > self.target_timeout:
            self.search.lost(now, self.controller.command[0], self._target.error_x)
            self.controller.forget_target()
            self.selector.reset()
            self._target = None
        mode, pose = self.search.update(now)
        if self._target is None and pose is not None:
            self.controller.goto(*pose)
        pan, tilt = self.controller.step(now)
        if self._target is not None:
            ex, ey = self.controller.last_error
            tid = self._target.id
        else:
            ex = ey = 0.0
            tid = ''
        if link_fault:
            mode = Mode.FAULT
        return StepResult(mode, tid, ex, ey, pan, tilt)
