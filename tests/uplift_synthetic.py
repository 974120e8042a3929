"""A synthetic holdout experiment with a known uplift, for the uplift tests and bench.

Each customer is, with probabilities that depend on their features, one of four types:
persuadable (an offer lifts the outcome from 10% to 40%), sure thing (70% either way: high
propensity, no uplift), sleeping dog (an offer drops it from 40% to 15%) or lost cause (5%
either way). A decision offers the action, or holds it out with ``holdout_share``; the true
uplift of a customer is the expectation over their type probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["x1", "x2", "x3", "x4", "segment"]
P_HELD = np.array([0.10, 0.70, 0.40, 0.05])  # persuadable, sure thing, sleeping dog, lost cause
P_OFFERED = np.array([0.40, 0.70, 0.15, 0.05])
START = pd.Timestamp("2026-01-01 09:00")


def synthetic_customers(n: int, seed: int) -> pd.DataFrame:
    """Customers C000000.. with features x1..x4, segment, and their true uplift and propensity."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    segment = rng.choice(["a", "b", "c"], n)
    logits = np.stack(
        [1.5 * x[:, 0], 1.5 * x[:, 1], -1.5 * x[:, 0] + (segment == "c"), np.zeros(n)], axis=1
    )
    types = np.exp(logits)
    types /= types.sum(axis=1, keepdims=True)
    frame = pd.DataFrame(x, columns=FEATURES[:4]).assign(segment=segment)
    frame.insert(0, "customer_id", [f"C{i:06d}" for i in range(n)])
    frame["true_uplift"] = types @ (P_OFFERED - P_HELD)
    frame["propensity"] = types @ P_OFFERED
    frame["type"] = (types.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return frame


def synthetic_outcomes(
    customers: pd.DataFrame,
    seed: int,
    holdout_share: float = 0.05,
    action: str = "Credit Card",
    effect: bool = True,
) -> pd.DataFrame:
    """One decision per customer, a minute apart from ``START``, with its arm and outcome in
    the columns of ``decision_outcomes``; ``effect=False`` gives offers no effect at all."""
    rng = np.random.default_rng(seed)
    n = len(customers)
    offered = rng.random(n) >= holdout_share
    kind = customers["type"].to_numpy()
    p = np.where(offered & effect, P_OFFERED[kind], P_HELD[kind])
    decided = START + pd.to_timedelta(np.arange(n), unit="min")
    return pd.DataFrame(
        {
            "decision_id": [f"d-{action}-{i:06d}" for i in range(n)],
            "action": action,
            "kind": "cross_sell",
            "product": action,
            "arm": np.where(offered, "offered", "holdout"),
            "control": False,
            "source": "service",
            "customer_id": customers["customer_id"].to_numpy(),
            "decided_at": decided,
            "tier": None,
            "channel": "phone",
            "probability": customers["propensity"].to_numpy(),
            "horizon_end": (decided + pd.Timedelta(days=90)).date,
            "outcome": (rng.random(n) < p).astype(int),
            "value": 0.0,
            "computed_at": decided + pd.Timedelta(days=91),
        }
    )


def synthetic_decisions(n: int, seed: int, holdout_share: float = 0.05) -> pd.DataFrame:
    """Outcome rows with their customer's features and truth beside them (no dataset)."""
    customers = synthetic_customers(n, seed)
    outcomes = synthetic_outcomes(customers, seed + 1000, holdout_share)
    return outcomes.merge(customers, on="customer_id")


def true_qini(true_uplift: np.ndarray, score: np.ndarray) -> float:
    """The Qini area of ``score`` measured with the true uplift instead of outcomes: the area
    between the cumulative true uplift of the top k and the random line, axes as shares of
    the rows (unnormalised, unlike ``models.uplift.qini_coefficient``: compare it only
    between scores of the same rows)."""
    n = len(true_uplift)
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    curve = np.concatenate([[0.0], np.cumsum(np.asarray(true_uplift, dtype=float)[order])]) / n
    return float(np.trapezoid(curve - np.linspace(0.0, curve[-1], n + 1), dx=1.0 / n))


def randomized(n: int = 4000, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A randomized offer whose effect grows with x: 0.1 + 0.4 x when offered, 0.1 without."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=n)
    treated = (rng.uniform(size=n) < 0.5).astype(float)
    y = (rng.uniform(size=n) < 0.1 + 0.4 * x * treated).astype(float)
    return y, treated, x
