"""Calibration of raw booster probabilities on held-out rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from models.metrics import expected_calibration_error
from models.model import Calibration

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


@dataclass(frozen=True)
class CalibrationChoice:
    """The calibration a model ships with, and the validation evidence for keeping it.

    ``calibration`` is the identity map when calibrating did not lower the cross-fitted
    ECE on the validation rows.
    """

    calibration: Calibration
    method: str  # the method that was fitted and judged (isotonic or platt)
    kept: bool
    ece_raw: float  # validation rows, raw scores
    ece_calibrated: float  # validation rows, each scored by a map fitted on the other folds


def choose_calibration(
    raw: np.ndarray, y: np.ndarray, method: str = "auto", folds: int = 5, seed: int = 0
) -> CalibrationChoice:
    """Calibrate on the validation rows only if that does not worsen ECE there.

    A map fitted and judged on the same rows always looks better than it is, so each fold
    of the validation rows is scored by a map fitted on the other folds (cross-fitting);
    the test rows are never looked at. When kept, the shipped map is fitted on all rows.

    Args:
        raw: uncalibrated probabilities on the validation rows.
        y: 0/1 outcomes of the same rows.
        method: ``isotonic``, ``platt`` or ``auto``, as in ``fit_calibration``.
        folds: cross-fitting folds (fewer when a class has fewer rows).
        seed: fold assignment.
    """
    raw, y = np.asarray(raw, float), np.asarray(y, float)
    if method == "auto":
        method = "isotonic" if y.sum() >= MIN_ISOTONIC_POSITIVES else "platt"
    ece_raw = expected_calibration_error(y, raw)
    folds = int(min(folds, y.sum(), len(y) - y.sum()))
    if folds < 2:  # one class (or one row of it): nothing to fit a map on
        return CalibrationChoice(Calibration("identity"), method, False, ece_raw, ece_raw)
    crossed = np.empty_like(raw)
    for fit, score in StratifiedKFold(folds, shuffle=True, random_state=seed).split(raw, y):
        crossed[score] = fit_calibration(raw[fit], y[fit], method).apply(raw[score])
    ece_calibrated = expected_calibration_error(y, crossed)
    kept = ece_calibrated <= ece_raw
    calibration = fit_calibration(raw, y, method) if kept else Calibration("identity")
    return CalibrationChoice(calibration, method, kept, ece_raw, ece_calibrated)
