"""Pan/tilt control law: PD + feed-forward on the target's bearing, from normalised image error.

Why bearing-based: the camera rides on the head, so an image error is relative to where the head
was when the frame was captured. The controller turns each measurement into an absolute bearing
(head angle at capture + angle in the image, via the camera's field of view) and closes the loop
on bearing - command at the control rate (>= 30 Hz), so frames that arrive slower than the loop,
or late, do not make it double-count the same error. The head angle at capture is taken from the
command history shifted by the actuator latency.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Deque, Optional, Tuple


@dataclass
class ControllerConfig:
    """Tuning and limits; angles in radians, rates in rad/s."""

    hfov: float = math.radians(60.0)
    vfov: float = math.radians(45.0)
    kp: float = 10.0  # 1/s: velocity command per rad of error
    kd: float = 0.05  # s: damping on the error rate
    kff: float = 1.0  # feed-forward gain on the target's bearing rate
    deadband: float = 0.04  # normalised image error (fraction of the half-width) treated as zero
    max_velocity: float = math.radians(180.0)
    max_accel: float = math.radians(3000.0)
    pan_min: float = math.radians(-80.0)
    pan_max: float = math.radians(80.0)
    tilt_min: float = math.radians(-30.0)
    tilt_max: float = math.radians(45.0)
    actuator_latency: float = 0.05  # s between a command and the head being there

    def validate(self) -> None:
        """Raise ValueError with a readable message for impossible settings."""
        for name in ('hfov', 'vfov'):
            v = getattr(self, name)
            if not 0.0 < v < math.pi:
                raise ValueError(f'{name} must be in (0, 180) deg, got {math.degrees(v):.1f}')
        for name in ('kp', 'max_velocity', 'max_accel'):
            if getattr(self, name) <= 0.0:
                raise ValueError(f'{name} must be > 0')
        for name in ('kd', 'kff', 'actuator_latency'):
            if getattr(self, name) < 0.0:
                raise ValueError(f'{name} must be >= 0')
        if not 0.0 <= self.deadband < 1.0:
            raise ValueError('deadband must be in [0, 1)')
        lim = math.radians(90.0) + 1e-9
        if not -lim <= self.pan_min < self.pan_max <= lim:
            raise ValueError('need -90 deg <= pan_min < pan_max <= 90 deg')
        if not -lim <= self.tilt_min < self.tilt_max <= lim:
            raise ValueError('need -90 deg <= tilt_min < tilt_max <= 90 deg')


def image_to_angles(error_x: float, error_y: float, hfov: float, vfov: float) -> Tuple[float, float]:
    """Normalised image error -> (pan, tilt) angle of the target relative to the camera axis.

    REP-103 for the head: pan + = left, tilt + = down. A face right of centre (error_x > 0)
    therefore needs a negative pan; one below centre (error_y > 0) a positive tilt. Pinhole model:
    angle = atan(error * tan(fov / 2)).
    """
    pan = -math.atan(error_x * math.tan(hfov / 2.0))
    tilt = math.atan(error_y * math.tan(vfov / 2.0))
    return pan, tilt


def _clamp(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


class _Axis:
    """One axis: bearing estimate, PD + FF velocity, acceleration/velocity/position limits."""

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi
        self.command = 0.0
        self.velocity = 0.0
        self.bearing: Optional[float] = None
        self.bearing_rate = 0.0
        self._last_bearing_t: Optional[float] = None
        self._last_err: Optional[float] = None
        self._settled = True  # deadband hysteresis: start moving above db, stop below db / 4

    def observe(self, bearing: float, t: float) -> None:
        if self.bearing is not None and self._last_bearing_t is not None and t > self._last_bearing_t:
            rate = (bearing - self.bearing) / (t - self._last_bearing_t)
            self.bearing_rate += 0.3 * (rate - self.bearing_rate)  # low-pass: detections jitter
        self.bearing = bearing
        self._last_bearing_t = t

    def step(self, cfg: ControllerConfig, dt: float, deadband_rad: float) -> None:
        if self.bearing is None:
            target_v = 0.0
            self._last_err = None
        else:
            err = self.bearing - self.command
            derr = 0.0 if self._last_err is None or dt <= 0 else (err - self._last_err) / dt
            self._last_err = err
            moving_target = abs(self.bearing_rate) >= cfg.max_velocity * 0.05
            if abs(err) > deadband_rad or moving_target:
                self._settled = False
            elif abs(err) <= deadband_rad * 0.25:
                self._settled = True
            if self._settled:
                target_v = 0.0
            else:
                target_v = cfg.kp * err + cfg.kd * derr + cfg.kff * self.bearing_rate
        target_v = _clamp(target_v, -cfg.max_velocity, cfg.max_velocity)
        dv = _clamp(target_v - self.velocity, -cfg.max_accel * dt, cfg.max_accel * dt)
        self.velocity += dv
        new = _clamp(self.command + self.velocity * dt, self.lo, self.hi)
        if new in (self.lo, self.hi):
            self.velocity = 0.0
        self.command = new

    def forget(self) -> None:
        self.bearing = None
        self.bearing_rate = 0.0
        self._last_bearing_t = None
        self._last_err = None


class PanTiltController:
    """Feed observe() with target measurements and call step() at the control rate."""

    def __init__(self, cfg: ControllerConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self.pan = _Axis(cfg.pan_min, cfg.pan_max)
        self.tilt = _Axis(cfg.tilt_min, cfg.tilt_max)
        self._history: Deque[Tuple[float, float, float]] = deque(maxlen=256)
        self._last_step: Optional[float] = None
        self.last_error: Tuple[float, float] = (0.0, 0.0)

    @property
    def command(self) -> Tuple[float, float]:
        """Last (pan, tilt) command [rad]."""
        return self.pan.command, self.tilt.command

    def _command_at(self, t: float) -> Tuple[float, float]:
        """Commanded pose at time t (newest entry not after t); the current one if unknown."""
        for ts, p, tl in reversed(self._history):
            if ts <= t:
                return p, tl
        return self.command

    def observe(self, error_x: float, error_y: float, stamp: float, now: float) -> None:
        """A target measurement: normalised image error of a frame captured at `stamp`."""
        self.last_error = (error_x, error_y)
        cap = stamp - self.cfg.actuator_latency
        if not now - 2.0 <= stamp <= now + 0.1:  # stamps from another clock: best effort
            cap = now - self.cfg.actuator_latency
        head_pan, head_tilt = self._command_at(cap)
        dpan, dtilt = image_to_angles(error_x, error_y, self.cfg.hfov, self.cfg.vfov)
        self.pan.observe(_clamp(head_pan + dpan, -math.pi / 2, math.pi / 2), stamp)
        self.tilt.observe(_clamp(head_tilt + dtilt, -math.pi / 2, math.pi / 2), stamp)

    def forget_target(self) -> None:
        """Stop closing the loop (target lost): the head decelerates and holds."""
        self.pan.forget()
        self.tilt.forget()

    def goto(self, pan: float, tilt: float) -> None:
        """Drive towards a fixed pose (search pattern, home) through the same limits."""
        self.pan.bearing = _clamp(pan, self.cfg.pan_min, self.cfg.pan_max)
        self.tilt.bearing = _clamp(tilt, self.cfg.tilt_min, self.cfg.tilt_max)
        self.pan.bearing_rate = self.tilt.bearing_rate = 0.0

    def step(self, now: float) -> Tuple[float, float]:
        """Advance the loop to `now` [s]; returns the new (pan, tilt) command."""
        dt = 0.0 if self._last_step is None else _clamp(now - self._last_step, 0.0, 0.2)
        self._last_step = now
        db_pan = abs(image_to_angles(self.cfg.deadband, 0.0, self.cfg.hfov, self.cfg.vfov)[0])
        db_tilt = abs(image_to_angles(0.0, self.cfg.deadband, self.cfg.hfov, self.cfg.vfov)[1])
        self.pan.step(self.cfg, dt, db_pan)
        self.tilt.step(self.cfg, dt, db_tilt)
        self._history.append((now, self.pan.command, self.tilt.command))
        return self.command

    def in_deadband(self) -> bool:
        """True when the last measured image error is inside the deadband on both axes."""
        ex, ey = self.last_error
        return abs(ex) <= self.cfg.deadband and abs(ey) <= self.cfg.deadband
