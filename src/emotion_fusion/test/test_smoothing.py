"""Hysteresis: the label changes after N consecutive leads, or at once by a margin."""
import numpy as np
import pytest

from emotion_fusion.smoothing import LabelHysteresis

A = np.array([0.6, 0.3, 0.1])
B_SLIGHT = np.array([0.35, 0.45, 0.2])   # B leads by 0.10
B_CLEAR = np.array([0.1, 0.8, 0.1])      # B leads by 0.70
C_SLIGHT = np.array([0.35, 0.2, 0.45])


def test_first_step_takes_argmax():
    assert LabelHysteresis(3, 0.5).update(B_SLIGHT) == 1


def test_change_after_n_consecutive_steps():
    h = LabelHysteresis(3, 0.5)
    h.update(A)
    assert [h.update(B_SLIGHT) for _ in range(3)] == [0, 0, 1]
    assert h.changes == 1


def test_interrupted_lead_restarts_count():
    h = LabelHysteresis(3, 0.5)
    h.update(A)
    seq = [B_SLIGHT, B_SLIGHT, A, B_SLIGHT, B_SLIGHT, C_SLIGHT, B_SLIGHT, B_SLIGHT, B_SLIGHT]
    out = [h.update(p) for p in seq]
    assert out == [0, 0, 0, 0, 0, 0, 0, 0, 1]


def test_flicker_never_changes_label():
    h = LabelHysteresis(2, 0.5)
    h.update(A)
    out = [h.update(p) for p in [B_SLIGHT, A] * 10]
    assert set(out) == {0} and h.changes == 0


def test_margin_switches_at_once():
    h = LabelHysteresis(5, 0.5)
    h.update(A)
    assert h.update(B_CLEAR) == 1


def test_steps_one_is_no_hysteresis():
    h = LabelHysteresis(1, 1.0)
    h.update(A)
    assert h.update(B_SLIGHT) == 1


@pytest.mark.parametrize('steps,margin', [(0, 0.5), (3, 0.0), (3, 1.5)])
def test_bad_parameters(steps, margin):
    with pytest.raises(ValueError):
        LabelHysteresis(steps, margin)
