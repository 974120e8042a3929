"""Evaluation of a target's scores: discrimination, calibration, lift, tier slices, profit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


class ProfitConfig(BaseModel):
    """Economics of a retention action, for the churn operating threshold."""

    action_cost: float = Field(25.0, ge=0, description="cost of one retention action")
    saved_value: float = Field(
        400.0, ge=0, description="value of keeping a customer who would churn"
    )
    success_rate: float = Field(0.3, gt=0, le=1, description="share of contacted churners kept")


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
