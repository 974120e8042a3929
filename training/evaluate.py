"""Evaluation of a target's scores: discrimination, calibration, lift, tier slices, profit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from sklearn.metrics import roc_auc_score

# The score figures are shared with monitoring (serving never imports training).
from features.metrics import expected_calibration_error, score_metrics, top_decile

__all__ = [
    "ProfitConfig",
    "expected_calibration_error",
    "operating_threshold",
    "profit_curve",
    "score_metrics",
    "slice_metrics",
    "top_decile",
]


class ProfitConfig(BaseModel):
    """Economics of a retention action, for the churn operating threshold."""

    action_cost: float = Field(25.0, ge=0, description="cost of one retention action")
    saved_value: float = Field(
        400.0, ge=0, description="value of keeping a customer who would churn"
    )
    success_rate: float = Field(0.3, gt=0, le=1, description="share of contacted churners kept")


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


def profit_curve(y: np.ndarray, p: np.ndarray, config: ProfitConfig) -> pd.DataFrame:
    """Expected profit of acting on every customer scoring at or above each threshold.

    Profit = churners reached x success rate x saved value - customers reached x action cost.
    """
    order = np.argsort(-np.asarray(p), kind="stable")
    ys, ps = np.asarray(y, float)[order], np.asarray(p, float)[order]
    reached = np.arange(1, len(ys) + 1)
    profit = np.cumsum(ys) * config.success_rate * config.saved_value - reached * config.action_cost
    return pd.DataFrame({"threshold": ps, "reached": reached, "profit": profit})


def operating_threshold(curve: pd.DataFrame) -> tuple[float, float]:
    """The threshold with the highest expected profit and that profit (1.0, 0 if none pays)."""
    if curve.empty or curve.profit.max() <= 0:
        return 1.0, 0.0
    best = curve.loc[curve.profit.idxmax()]
    return float(best.threshold), float(best.profit)
