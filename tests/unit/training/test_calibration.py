"""Calibration maps raw scores onto observed rates."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import choose_calibration, fit_calibration
from training.evaluate import expected_calibration_error


def overconfident(n: int = 20_000, seed: int = 0):
    rng = np.random.default_rng(seed)
    true = rng.uniform(0.0, 0.3, n)
    y = (rng.uniform(size=n) < true).astype(float)
    raw = np.clip(true * 2.5, 0, 1)  # scores far above the real rates
    return raw, y


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_lowers_ece(method):
    raw, y = overconfident()
    calibration = fit_calibration(raw[:10_000], y[:10_000], method)
    before = expected_calibration_error(y[10_000:], raw[10_000:])
    after = expected_calibration_error(y[10_000:], calibration.apply(raw[10_000:]))
    assert after < before / 3, f"{method}: ECE {before:.3f} -> {after:.3f}"


def test_auto_uses_platt_with_few_positives():
    raw = np.linspace(0.01, 0.99, 100)
    y = (raw > 0.9).astype(float)  # 10 positives
    assert fit_calibration(raw, y).method == "platt"


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="isotonic, platt or auto"):
        fit_calibration(np.array([0.1, 0.9]), np.array([0, 1]), "magic")


def test_calibration_that_lowers_validation_ece_is_kept():
    raw, y = overconfident()
    choice = choose_calibration(raw[:5000], y[:5000], "isotonic")
    assert choice.kept and choice.calibration.method == "isotonic", choice
    assert choice.ece_calibrated < choice.ece_raw


def test_calibration_that_would_worsen_ece_is_dropped():
    # Given scores that are already calibrated, on few rows: a fitted map can only add noise
    rng = np.random.default_rng(3)
    raw = rng.uniform(0.05, 0.5, 400)
    y = (rng.uniform(size=400) < raw).astype(float)
    choice = choose_calibration(raw, y, "isotonic")
    assert not choice.kept and choice.calibration.method == "identity", choice
    assert choice.ece_calibrated > choice.ece_raw, "dropped because cross-fitting worsened ECE"
