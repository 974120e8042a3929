"""Calibration of raw booster probabilities on held-out rows."""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from features.model import Calibration

# Isotonic needs enough positives to estimate a staircase; below this, Platt's two parameters.
MIN_ISOTONIC_POSITIVES = 200


def fit_calibration(raw: np.ndarray, y: np.ndarray, method: str = "auto") -> Calibration:
    """Fit isotonic or Platt scaling of ``raw`` probabilities to outcomes ``y``.

    Args:
        raw: uncalibrated probabilities on held-out rows.
        y: 0/1 outcomes of the same rows.
        method: ``isotonic``, ``platt`` or ``auto`` (isotonic when positives suffice).
    """
    raw, y = np.asarray(raw, float), np.asarray(y, float)
    if method == "auto":
        method = "isotonic" if y.sum() >= MIN_ISOTONIC_POSITIVES else "platt"
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        return Calibration("isotonic", x=iso.X_thresholds_.tolist(), y=iso.y_thresholds_.tolist())
    if method == "platt":
        logit = np.log(np.clip(raw, 1e-12, 1 - 1e-12) / np.clip(1 - raw, 1e-12, 1))
        lr = LogisticRegression(C=1e6).fit(logit.reshape(-1, 1), y)
        return Calibration("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    raise ValueError(f"calibration method must be isotonic, platt or auto, not {method!r}")
