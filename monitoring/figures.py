"""Monitoring figures: pure functions of frames and arrays, no I/O, no HTML.

Drift (population stability index against training), realized performance, the value
pyramid and tier migrations, agent feedback on suggestions and ranked decisions against the
control group. ``monitoring.sections`` feeds them the data ``monitoring.readers`` and the
dataset give; ``monitoring.alerts`` turns some of them into alerts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from models.metrics import calibration_points, decile_lift, score_metrics
from models.profile import profile_column, psi
from serving.decisions import DecisionRecord, FeedbackRecord
from serving.vocabulary import RESPONSES

NO_RESPONSE = "no_response"
RESPONSE_COLUMNS = (*RESPONSES, NO_RESPONSE)
Z95 = 1.959963984540054
SUGGESTION_COLUMNS = (
    "decision_id",
    "suggestion_id",
    "customer_id",
    "created_at",
    "as_of",
    "control",
    "channel",
    "call_reason",
    "queue_pressure",
    "agent_id",
    "kind",
    "action",
    "product",
    "rank",
    "expected_value",
    "response",
)


# -- drift -------------------------------------------------------------------------------------


def feature_drift(profiles: Mapping[str, dict], features: pd.DataFrame) -> pd.DataFrame:
    """PSI of each profiled feature's values in ``features`` against its training profile.

    Args:
        profiles: feature name -> ``profile_column`` result (``feature_profile.json``).
        features: one row per customer, one column per feature (extra columns ignored).

    Returns:
        Columns ``feature, kind, psi``, worst first (ties by name); features absent from
        ``features`` are left out.
    """
    rows = [
        {"feature": name, "kind": profile["kind"], "psi": psi(profile, features[name])}
        for name, profile in profiles.items()
        if name in features
    ]
    frame = pd.DataFrame(rows, columns=["feature", "kind", "psi"])
    return frame.sort_values(
        ["psi", "feature"], ascending=[False, True], na_position="last", kind="stable"
    ).reset_index(drop=True)


def score_drift(training: np.ndarray, now: np.ndarray) -> dict[str, float]:
    """PSI of scores now against the training scores' deciles, with means and counts.

    Missing scores (e.g. cross-sell of a product held) are left out of both.
    """
    training = finite(training)
    now = finite(now)
    profile = profile_column(pd.Series(training), "numeric")
    return {
        "psi": psi(profile, now) if len(training) else float("nan"),
        "mean_training": float(training.mean()) if len(training) else float("nan"),
        "mean_now": float(now.mean()) if len(now) else float("nan"),
        "rows_training": float(len(training)),
        "rows_now": float(len(now)),
    }


# -- realized performance ----------------------------------------------------------------------


def performance(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Score figures (``models.metrics.score_metrics``), calibration and lift by decile.

    Rows with a missing label or score are left out. ``calibration`` holds the mean
    predicted and observed rates of equal-frequency bins; ``lift_by_decile`` the observed
    rate of each score decile over the base rate, highest scores first.
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    keep = np.isfinite(y) & np.isfinite(p)
    y, p = y[keep], p[keep]
    if len(y) == 0:
        return {"rows": 0.0, "positives": 0.0}
    observed, predicted = calibration_points(y, p, bins)
    return {
        **score_metrics(y, p),
        "positives": float(y.sum()),
        "calibration": {"predicted": predicted.tolist(), "observed": observed.tolist()},
        "lift_by_decile": decile_lift(y, p, bins).tolist(),
    }


# -- value pyramid -----------------------------------------------------------------------------


def tier_pyramid(tiers: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Customers and value by tier, highest tier first.

    Args:
        tiers: one row per customer with ``tier`` and ``value`` (``assign_tiers`` at a date).
        order: tier names, lowest first.

    Returns:
        Columns ``tier, customers, share_customers, value, share_value, mean_value``; value
        shares count positive values only (net refunds bring nothing), as the tiers do.
    """
    positive = tiers["value"].clip(lower=0).fillna(0.0)
    grouped = (
        pd.DataFrame({"tier": tiers["tier"].fillna("(none)"), "value": positive})
        .groupby("tier")["value"]
        .agg(["count", "sum"])
    )
    names = [*reversed(list(order)), *sorted(str(t) for t in grouped.index if t not in order)]
    grouped = grouped.reindex(names, fill_value=0)
    customers, value = grouped["count"].astype(int), grouped["sum"].astype(float)
    total_customers, total_value = customers.sum(), value.sum()
    return pd.DataFrame(
        {
            "tier": names,
            "customers": customers.to_numpy(),
            "share_customers": (
                customers / total_customers if total_customers else 0.0 * customers
            ).to_numpy(),
            "value": value.to_numpy(),
            "share_value": (value / total_value if total_value else 0.0 * value).to_numpy(),
            "mean_value": (value / customers.where(customers > 0)).to_numpy(),
        }
    )


def value_curve(values: np.ndarray | pd.Series, points: int = 100) -> pd.DataFrame:
    """The 80/20 curve: share of value held by the top x share of customers, x = 0..1.

    Customers are ranked by value, highest first; negative values count as 0.

    Returns:
        Columns ``share_customers, share_value`` with ``points + 1`` rows from (0, 0).
    """
    v = np.sort(np.clip(finite(values), 0, None))[::-1]
    x = np.linspace(0, 1, points + 1)
    if len(v) == 0 or v.sum() == 0:
        return pd.DataFrame({"share_customers": x, "share_value": np.zeros_like(x)})
    cumulative = np.concatenate([[0.0], np.cumsum(v) / v.sum()])
    # The curve at x interpolates between whole customers (x * n of them).
    share = np.interp(x * len(v), np.arange(len(v) + 1), cumulative)
    return pd.DataFrame({"share_customers": x, "share_value": share})


def top_share(values: np.ndarray | pd.Series, share: float = 0.2) -> float:
    """Share of (positive) value held by the top ``share`` of customers."""
    curve = value_curve(values, points=1000)
    return float(np.interp(share, curve.share_customers, curve.share_value))


def tier_migrations(
    before: pd.DataFrame, after: pd.DataFrame, order: Sequence[str]
) -> pd.DataFrame:
    """Customers by tier before (rows) and after (columns), highest tier first.

    Args:
        before, after: ``customer_id, tier`` of the population at two dates.
        order: tier names, lowest first.

    Returns:
        A count matrix; the row ``(new)`` holds customers only in ``after`` and the
        column ``(left)`` customers only in ``before``.
    """
    merged = before[["customer_id", "tier"]].merge(
        after[["customer_id", "tier"]],
        on="customer_id",
        how="outer",
        suffixes=("_before", "_after"),
    )
    merged["tier_before"] = (
        merged["tier_before"].astype(object).where(merged["tier_before"].notna(), "(new)")
    )
    merged["tier_after"] = (
        merged["tier_after"].astype(object).where(merged["tier_after"].notna(), "(left)")
    )
    names = list(reversed(list(order)))
    table = pd.crosstab(merged["tier_before"], merged["tier_after"])
    return table.reindex(index=[*names, "(new)"], columns=[*names, "(left)"], fill_value=0).astype(
        int
    )


def migration_summary(migrations: pd.DataFrame, order: Sequence[str]) -> dict[str, Any]:
    """The ``tier_migrations`` matrix as plain counts: moves up, down, stays, new and left.

    Returns:
        ``matrix`` (from tier -> to tier -> customers), ``stayed``, ``up``, ``down``, ``new``
        and ``left``; up and down count moves between tiers of ``order`` (lowest first).
    """
    names = list(reversed(list(order)))
    moved = migrations.loc[names, names]
    stayed = int(np.trace(moved.to_numpy()))
    ranks = {n: i for i, n in enumerate(order)}
    up = sum(
        int(moved.loc[a, b]) for a in moved.index for b in moved.columns if ranks[b] > ranks[a]
    )
    down = int(moved.to_numpy().sum()) - stayed - up
    return {
        "matrix": {
            str(k): {str(c): int(v) for c, v in row.items()} for k, row in migrations.iterrows()
        },
        "stayed": stayed,
        "up": up,
        "down": down,
        "new": int(migrations.loc["(new)"].sum()),
        "left": int(migrations["(left)"].sum()),
    }


# -- agent feedback ----------------------------------------------------------------------------


def suggestion_rows(
    decisions: Sequence[DecisionRecord], feedback: Sequence[FeedbackRecord]
) -> pd.DataFrame:
    """One row per suggestion listed in a decision, with the agent's response.

    Returns:
        Columns ``decision_id, suggestion_id, customer_id, created_at, as_of, control, channel,
        call_reason, queue_pressure, agent_id, kind, action, product, rank, expected_value,
        response``; ``response`` is ``no_response`` where no feedback was recorded.
        ``agent_id`` is the decision's agent, else the responding agent, else ``unknown``.
    """
    responses = {(f.decision_id, f.suggestion_id): f for f in feedback}
    rows = []
    for d in decisions:
        ctx = d.context or {}
        for s in d.suggestions:
            answer = responses.get((d.decision_id, s.get("suggestion_id")))
            agent = ctx.get("agent_id") or (answer.agent_id if answer else None) or "unknown"
            rows.append(
                {
                    "decision_id": d.decision_id,
                    "suggestion_id": s.get("suggestion_id"),
                    "customer_id": d.customer_id,
                    "created_at": d.created_at,
                    "as_of": d.as_of,
                    "control": bool(d.control),
                    "channel": ctx.get("channel"),
                    "call_reason": ctx.get("call_reason"),
                    "queue_pressure": ctx.get("queue_pressure"),
                    "agent_id": str(agent),
                    "kind": s.get("kind"),
                    "action": s.get("action"),
                    "product": s.get("product"),
                    "rank": s.get("rank"),
                    "expected_value": s.get("expected_value"),
                    "response": answer.response if answer else NO_RESPONSE,
                }
            )
    return pd.DataFrame(rows, columns=list(SUGGESTION_COLUMNS))


def feedback_counts(rows: pd.DataFrame, by: str) -> pd.DataFrame:
    """Responses to suggestions by a column (``kind``, ``product``, ``tier``, ``agent_id``, ...).

    ``shown`` is listed less ``not_shown``. ``acceptance`` = accepted / (accepted +
    declined): of the suggestions the agent put to the customer, the share taken (skips are
    the agent's call and never count against an offer). ``conversion`` = accepted / shown.

    Returns:
        One row per value of ``by`` (nulls as ``-``), sorted by it, with columns ``listed,
        shown, accepted, declined, skipped, not_shown, no_response, acceptance, conversion``.
    """
    columns = ["listed", "shown", *RESPONSE_COLUMNS[:3], *RESPONSE_COLUMNS[3:]]
    if rows.empty:
        return pd.DataFrame(columns=[by, *columns, "acceptance", "conversion"])
    keys = rows[by].astype(object).where(rows[by].notna(), "-").astype(str)
    counts = pd.crosstab(keys, rows["response"]).reindex(columns=RESPONSE_COLUMNS, fill_value=0)
    out = counts.assign(listed=counts.sum(axis=1))
    out["shown"] = out["listed"] - out["not_shown"]
    out = out[columns].astype(int)
    raised = out["accepted"] + out["declined"]
    out["acceptance"] = out["accepted"] / raised.where(raised > 0)
    out["conversion"] = out["accepted"] / out["shown"].where(out["shown"] > 0)
    return out.rename_axis(by).reset_index().sort_values(by, kind="stable").reset_index(drop=True)


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default); NaNs for no trials."""
    if trials <= 0:
        return float("nan"), float("nan")
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(
    k1: int, n1: int, k2: int, n2: int, z: float = Z95
) -> tuple[float, float, float]:
    """Difference of two proportions k1/n1 - k2/n2 with its normal-approximation interval.

    The interval is clipped to [-1, 1], the range a difference of proportions can take.
    """
    if n1 <= 0 or n2 <= 0:
        return float("nan"), float("nan"), float("nan")
    p1, p2 = k1 / n1, k2 / n2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    d = p1 - p2
    return d, max(-1.0, d - z * se), min(1.0, d + z * se)


def control_comparison(rows: pd.DataFrame) -> dict[str, Any]:
    """Ranked decisions against the control group: acceptance and conversion with 95% intervals.

    Returns:
        ``groups``: for ``ranked`` and ``control``, decisions, shown, accepted, declined,
        and ``acceptance``/``conversion`` each with ``_low``/``_high`` (Wilson);
        ``difference``: ranked minus control for both rates, with normal-approximation
        intervals (NaN where a group has nothing).
    """
    groups: dict[str, dict[str, float]] = {}
    counts: dict[str, tuple[int, dict[str, int]]] = {}  # group -> accepted, trials by rate
    for name, control in (("ranked", False), ("control", True)):
        part = rows[rows["control"] == control]
        response = part["response"]
        accepted = int((response == "accepted").sum())
        declined = int((response == "declined").sum())
        trials = {
            "acceptance": accepted + declined,
            "conversion": int((response != "not_shown").sum()),
        }
        figures = {
            "decisions": float(part["decision_id"].nunique()),
            "shown": float(trials["conversion"]),
            "accepted": float(accepted),
            "declined": float(declined),
        }
        for rate, n in trials.items():
            figures[rate] = accepted / n if n else float("nan")
            figures[f"{rate}_low"], figures[f"{rate}_high"] = wilson_interval(accepted, n)
        groups[name] = figures
        counts[name] = (accepted, trials)
    (k_r, n_r), (k_c, n_c) = counts["ranked"], counts["control"]
    difference = {
        rate: dict(
            zip(
                ("difference", "low", "high"),
                difference_interval(k_r, n_r[rate], k_c, n_c[rate]),
                strict=True,
            )
        )
        for rate in ("acceptance", "conversion")
    }
    return {"groups": groups, "difference": difference}


# -- helpers -----------------------------------------------------------------------------------


def finite(values: Any) -> np.ndarray:
    """The finite numbers among ``values`` (missing, non-numeric and infinite ones dropped).

    The array form of ``features.values.as_number``: the same rule, for a whole column.
    """
    array = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return array[np.isfinite(array)]
