"""Control law: conventions, limits, and closed-loop settling on the plant models."""
import math

import pytest

from robot_tracker.controller import ControllerConfig, PanTiltController, image_to_angles
from robot_tracker.sim_model import CameraModel, ServoModel


def test_sign_conventions_rep103():
    pan, tilt = image_to_angles(0.5, 0.5, math.radians(60), math.radians(45))
    assert pan < 0  # face right of centre -> turn right -> negative pan
    assert tilt > 0  # face below centre -> pitch down -> positive tilt
    pan_corner = image_to_angles(1.0, 0.0, math.radians(60), math.radians(45))[0]
    assert pan_corner == pytest.approx(-math.radians(30))


def test_face_right_moves_pan_negative_and_respects_limits():
    cfg = ControllerConfig(pan_min=math.radians(-20), max_velocity=math.radians(100))
    c = PanTiltController(cfg)
    t = 0.0
    prev = 0.0
    for _ in range(200):
        c.observe(1.0, 0.0, t, t)  # face stuck at the right edge
        pan, _ = c.step(t)
        assert pan <= prev + 1e-12
        assert (prev - pan) <= math.radians(100) * 0.02 + 1e-9  # velocity limit
        prev = pan
        t += 0.02
    assert prev == pytest.approx(math.radians(-20))


def test_no_target_means_hold():
    c = PanTiltController(ControllerConfig())
    for i in range(50):
        assert c.step(i * 0.02) == (0.0, 0.0)


def test_validation_errors_are_readable():
    with pytest.raises(ValueError, match='hfov'):
        PanTiltController(ControllerConfig(hfov=0.0))
    with pytest.raises(ValueError, match='pan_min'):
        PanTiltController(ControllerConfig(pan_min=1.0, pan_max=0.5))


def simulate_step(step_deg=20.0, duration=1.5, rate=50.0):
    """Closed loop on the plant models; returns (time, head pan) samples."""
    cfg = ControllerConfig()
    c = PanTiltController(cfg)
    servo, cam = ServoModel(), CameraModel(hfov=cfg.hfov)
    bearing = math.radians(-step_deg)  # face jumps 20 deg to the right
    dt = 1.0 / rate
    t, next_frame = 0.0, 0.0
    frames = []
    samples = []
    while t < duration:
        if t >= next_frame:
            frames.append((t, cam.error_x(bearing, servo.angle)))
            next_frame += 1.0 / 30.0
        while frames and frames[0][0] + cam.latency <= t:
            ts, ex = frames.pop(0)
            c.observe(ex, 0.0, ts, t)
        pan, _ = c.step(t)
        servo.step(pan, dt)
        samples.append((t, servo.angle))
        t += dt
    return samples, bearing, c


def test_step_settles_without_large_overshoot():
    samples, bearing, c = simulate_step()
    final = samples[-1][1]
    assert final == pytest.approx(bearing, abs=math.radians(2.0))
    overshoot = max(0.0, -(min(a for _, a in samples) - bearing)) / abs(bearing)
    assert overshoot < 0.2
    assert c.in_deadband()
