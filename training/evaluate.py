"""Evaluation of a target's scores: discrimination, calibration, lift, tier slices, profit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

# The score figures are shared with monitoring (serving never imports training).
from models.metrics import expected_calibration_error, score_metrics, top_decile

__all__ = [
    "expected_calibration_error",
    "operating_threshold",
    "profit_curve",
    "score_metrics",
    "slice_metrics",
    "top_decile",
]


def slice_metrics(y: np.ndarray, p: np.ndarray, groups: pd.Series) -> dict[str, dict[str, float]]:
    """ROC AUC, base rate, mean score and rows for each group (e.g. each tier)."""
    frame = pd.DataFrame(
        {"y": np.asarray(y, float), "p": np.asarray(p, float), "g": groups.to_numpy()}
    )
    out = {}
    for group, part in frame.groupby("g", sort=True, dropna=False):
        both = 0 < part.y.sum() < len(part)
        out[str(group)] = {
            "roc_auc": float(roc_auc_score(part.y, part.p)) if both else float("nan"),
            "base_rate": float(part.y.mean()),
            "mean_score": float(part.p.mean()),
            "rows": float(len(part)),
        }
    return out


def profit_curve(
    y: np.ndarray, p: np.ndarray, values: np.ndarray | float, cost: float
) -> pd.DataFrame:
    """Expected profit of acting on every customer scoring at or above each threshold.

    Profit = the sum of ``values`` over the positives reached - customers reached x ``cost``,
    where ``values`` is what a success with each customer is worth (the policy's action
    value: saved value for a churner, margin for a sale, the upgrade's value).
    """
    order = np.argsort(-np.asarray(p), kind="stable")
    ys, ps = np.asarray(y, float)[order], np.asarray(p, float)[order]
    worth = np.broadcast_to(np.asarray(values, float), np.shape(y))[order]
    reached = np.arange(1, len(ys) + 1)
    profit = np.cumsum(ys * worth) - reached * cost
    return pd.DataFrame({"threshold": ps, "reached": reached, "profit": profit})


def operating_threshold(curve: pd.DataFrame) -> tuple[float, float]:
    """The threshold with the highest expected profit and that profit (1.0, 0 if none pays)."""
    if curve.empty or curve.profit.max() <= 0:
        return 1.0, 0.0
    best = curve.loc[curve.profit.idxmax()]
    return float(best.threshold), float(best.profit)
