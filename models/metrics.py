"""Figures of a target's scores against its labels: discrimination, calibration and lift.

Pure functions on arrays. They live in ``models`` because training evaluates with them
and monitoring reads with them, and neither imports the other: both must compute
the same figure the same way, or a drop in realized performance would be an artefact.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean probability| over equal-width bins, weighted by bin size."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / max(len(y), 1))


def top_decile(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Lift and capture rate of the 10% highest scores (ties broken by position, stably)."""
    y = np.asarray(y, float)
    n = max(int(np.ceil(len(y) * 0.1)), 1)
    top = np.argsort(-np.asarray(p), kind="stable")[:n]
    base = y.mean()
    if base == 0:
        return 0.0, 0.0
    return float(y[top].mean() / base), float(y[top].sum() / y.sum())


def score_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC, log loss, Brier, ECE, top-decile lift and capture, base rate."""
    y, p = np.asarray(y, float), np.clip(np.asarray(p, float), 1e-9, 1 - 1e-9)
    both = 0 < y.sum() < len(y)
    lift, capture = top_decile(y, p)
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "lift_top_decile": lift,
        "capture_top_decile": capture,
        "base_rate": float(y.mean()),
        "rows": float(len(y)),
    }


def calibration_points(
    y: np.ndarray, p: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Observed rate and mean prediction in equal-frequency bins of ``p``."""
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, bins)
    observed = np.array([np.mean(np.asarray(y)[g]) for g in groups if len(g)])
    predicted = np.array([np.mean(np.asarray(p)[g]) for g in groups if len(g)])
    return observed, predicted


def decile_lift(y: np.ndarray, p: np.ndarray, bins: int = 10) -> np.ndarray:
    """Observed rate of each equal-frequency score bin, highest scores first, over the base rate.

    Ties are broken by position (stably), as in ``top_decile``. Returns zeros when there
    is no positive.
    """
    y = np.asarray(y, float)
    base = y.mean() if len(y) else 0.0
    order = np.argsort(-np.asarray(p, float), kind="stable")
    groups = [g for g in np.array_split(order, bins) if len(g)]
    if base == 0:
        return np.zeros(len(groups))
    return np.array([y[g].mean() / base for g in groups])
