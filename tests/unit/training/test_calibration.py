"""Calibration maps raw scores onto observed rates."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import fit_calibration
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
