"""Monitoring: drift, realized performance, the value pyramid and agent feedback, as one report.

``run_monitor`` compares the champion models' world at training time with the data as of a
date and writes a self-contained HTML report (plots embedded as PNG, opens offline) with a
JSON file of the same figures beside it. Thresholds turn figures into alerts, listed at the
top; a scheduler pages someone when ``MonitorResult.exit_code`` is not 0.

What the report holds:

- feature drift: population stability index (``features.profile.psi``) of each feature
  against the training profile logged to the champion's MLflow run, worst first;
- score drift: each champion's scores now against its scores on the run's held-out rows;
- realized performance: for as-of dates whose horizon has passed, the figures of the
  scores the champions give those dates (a backtest) against the figures at training;
- the value pyramid now: tier sizes, value shares, the 80/20 curve, migrations in a month;
- agent feedback from the decision log, and ranked decisions against the control group.

The computations are pure functions of frames and arrays; only ``run_monitor`` and the
two readers (``training_reference``, ``read_decision_log``) touch MLflow, the data and the
decision log. Nothing reads ``training``: what monitoring knows of models comes from MLflow.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import sqlalchemy as sa
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field

from features.contract import Dataset
from features.labels import build_labels, label_end
from features.metrics import calibration_points, decile_lift, score_metrics
from features.pipeline import build_features
from features.profile import bin_labels, compare_shares, profile_column, psi
from features.registry import HOLDOUT_DIR, LABEL, PROFILE_FILE, client
from features.settings import Settings
from features.spine import as_of_dates
from features.tiers import assign_tiers, tier_names
from serving.decisions import (
    DecisionRecord,
    FeedbackRecord,
    decision_record,
    decisions_table,
    feedback_record,
    feedback_table,
)
from serving.scoring import ModelSet, load_champions, open_holdings, score_frame
from serving.store import StoreMissingError, open_engine

NO_RESPONSE = "no_response"
RESPONSE_COLUMNS = ("accepted", "declined", "skipped", "not_shown", NO_RESPONSE)
Z95 = 1.959963984540054


class Thresholds(BaseModel):
    """When a figure raises an alert. Every threshold is exclusive: a figure must exceed it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    psi: float = Field(0.2, ge=0, description="feature PSI above which a feature has drifted")
    score_psi: float = Field(
        0.2, ge=0, description="score PSI above which a model's scores drifted"
    )
    auc_drop: float = Field(
        0.05, ge=0, description="drop of realized ROC AUC below the training figure"
    )
    ece_rise: float = Field(
        0.05, ge=0, description="rise of realized calibration error above the training figure"
    )
    min_positives: int = Field(
        20, ge=1, description="positives an as-of date needs before its AUC and ECE can alert"
    )
    control_alert: bool = Field(
        True,
        description="alert when ranked suggestions convert worse than the control group "
        "(the 95% interval of the difference lies below 0)",
    )


@dataclass(frozen=True)
class Alert:
    """One threshold crossed: what, about what, the figure and the threshold."""

    kind: str  # feature_drift, score_drift, auc_drop, ece_rise, ranked_below_control
    subject: str
    value: float
    threshold: float
    message: str


@dataclass
class TargetReference:
    """What the champion's MLflow run says of one target at training time."""

    target: str
    name: str
    version: str
    run_id: str
    metrics: dict[str, float]
    training_dates: list[dt.date]
    holdout_scores: np.ndarray | None = None  # the champion's scores on the held-out rows
    holdout_labels: np.ndarray | None = None


@dataclass
class TrainingReference:
    """The champions' training-time figures: targets and each run's feature profile."""

    targets: dict[str, TargetReference]
    profiles: dict[str, dict[str, dict] | None]  # run id -> feature profile (None: not logged)


@dataclass
class MonitorResult:
    """Where the report went, the alerts that fired and every figure of the report."""

    as_of: dt.date
    report: Path
    figures_file: Path
    alerts: list[Alert]
    figures: dict[str, Any] = field(repr=False)

    @property
    def exit_code(self) -> int:
        """1 when any alert fired (a scheduler pages someone), else 0."""
        return 1 if self.alerts else 0


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
    training = _finite(training)
    now = _finite(now)
    profile = profile_column(pd.Series(training), "numeric")
    return {
        "psi": psi(profile, now) if len(training) else float("nan"),
        "mean_training": float(training.mean()) if len(training) else float("nan"),
        "mean_now": float(now.mean()) if len(now) else float("nan"),
        "rows_training": float(len(training)),
        "rows_now": float(len(now)),
    }


# -- realized performance ----------------------------------------------------------------------


def backtest_dates(ds: Dataset, as_of: dt.date, count: int = 3) -> list[dt.date]:
    """Monthly as-of dates, oldest first, whose horizon has passed by the end of the data.

    The latest is ``as_of`` or, if its horizon has not passed, the latest date that has
    (``label_end``); the others step back a calendar month each. Dates before the first
    signup are dropped, so the list may be empty.
    """
    end = min(as_of, label_end(ds))
    first = ds.con.execute("SELECT min(signup_date) FROM customers").fetchall()[0][0]
    dates = [_months_back(end, k) for k in range(count)]
    return sorted(d for d in dates if first is not None and d >= first)


def performance(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Score figures (``features.metrics.score_metrics``), calibration and lift by decile.

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
    v = np.sort(np.clip(_finite(values), 0, None))[::-1]
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
    columns = [
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
    ]
    return pd.DataFrame(rows, columns=columns)


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


# -- alerts ------------------------------------------------------------------------------------


def find_alerts(
    thresholds: Thresholds,
    features: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    realized: pd.DataFrame | None = None,
    control: Mapping[str, Any] | None = None,
) -> list[Alert]:
    """The alerts the figures raise, in the order of the report's sections.

    Args:
        features: ``feature_drift`` rows (``feature``, ``psi``).
        scores: ``target``, ``psi`` per champion.
        realized: per target and as-of date: ``target, as_of, roc_auc, ece, positives,
            training_roc_auc, training_ece``.
        control: ``control_comparison`` result.
    """
    alerts: list[Alert] = []
    if features is not None:
        for row in features.itertuples():
            if _above(row.psi, thresholds.psi):
                alerts.append(
                    Alert(
                        "feature_drift",
                        row.feature,
                        float(row.psi),
                        thresholds.psi,
                        f"feature {row.feature} drifted: PSI {row.psi:.3f} > {thresholds.psi}",
                    )
                )
    if scores is not None:
        for row in scores.itertuples():
            if _above(row.psi, thresholds.score_psi):
                alerts.append(
                    Alert(
                        "score_drift",
                        row.target,
                        float(row.psi),
                        thresholds.score_psi,
                        f"{row.target} scores drifted: PSI {row.psi:.3f} > {thresholds.score_psi}",
                    )
                )
    if realized is not None:
        for row in realized.itertuples():
            if not row.positives >= thresholds.min_positives:
                continue  # too few positives for an AUC worth paging anyone over
            subject = f"{row.target} as of {row.as_of}"
            drop = row.training_roc_auc - row.roc_auc
            if _above(drop, thresholds.auc_drop):
                alerts.append(
                    Alert(
                        "auc_drop",
                        subject,
                        float(drop),
                        thresholds.auc_drop,
                        f"{subject}: ROC AUC {row.roc_auc:.3f}, {drop:.3f} below training "
                        f"({row.training_roc_auc:.3f}; allowed drop {thresholds.auc_drop})",
                    )
                )
            rise = row.ece - row.training_ece
            if _above(rise, thresholds.ece_rise):
                alerts.append(
                    Alert(
                        "ece_rise",
                        subject,
                        float(rise),
                        thresholds.ece_rise,
                        f"{subject}: calibration error {row.ece:.3f}, {rise:.3f} above training "
                        f"({row.training_ece:.3f}; allowed rise {thresholds.ece_rise})",
                    )
                )
    if control is not None and thresholds.control_alert:
        diff = control["difference"]["conversion"]
        if _above(-diff["high"], 0.0):
            alerts.append(
                Alert(
                    "ranked_below_control",
                    "suggestions",
                    float(diff["difference"]),
                    0.0,
                    f"ranked suggestions convert worse than the control group: "
                    f"{diff['difference']:+.3f} (95% interval {diff['low']:+.3f} to "
                    f"{diff['high']:+.3f})",
                )
            )
    return alerts


# -- reading MLflow and the decision log -------------------------------------------------------


def training_reference(tracking_uri: str, models: ModelSet) -> TrainingReference:
    """Training-time figures of the champions from their MLflow runs.

    Reads each run's metrics (``<target>.roc_auc``, ...), as-of dates and feature profile,
    and scores each target's held-out rows (``holdout/<target>.parquet``) with the
    champion, which gives the score distribution at training. A run without a profile or
    a held-out file leaves that part empty.
    """
    mlflow_client = client(tracking_uri)
    runs: dict[str, Any] = {}
    profiles: dict[str, dict[str, dict] | None] = {}
    targets: dict[str, TargetReference] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for target, model in sorted(models.models.items()):
            if model.run_id not in runs:
                runs[model.run_id] = mlflow_client.get_run(model.run_id)
                profiles[model.run_id] = _artifact_json(
                    tracking_uri, model.run_id, PROFILE_FILE, Path(tmp)
                )
            run = runs[model.run_id]
            prefix = f"{target}."
            metrics = {
                k[len(prefix) :]: float(v)
                for k, v in run.data.metrics.items()
                if k.startswith(prefix)
            }
            dates = [
                dt.date.fromisoformat(d) for d in run.data.params.get("as_of", "").split(",") if d
            ]
            reference = TargetReference(
                target, model.name, model.version, model.run_id, metrics, dates
            )
            holdout = _artifact_parquet(
                tracking_uri, model.run_id, f"{HOLDOUT_DIR}/{target}.parquet", Path(tmp)
            )
            if holdout is not None and LABEL in holdout:
                reference.holdout_labels = holdout.pop(LABEL).to_numpy(dtype=float)
                reference.holdout_scores = model.predictor.predict_frame(holdout)
            targets[target] = reference
    return TrainingReference(targets, profiles)


def read_decision_log(
    url: str, until: dt.date | None = None
) -> tuple[list[DecisionRecord], list[FeedbackRecord]] | None:
    """Decisions (and their feedback) made on store data as of ``until`` or earlier.

    Decisions without a store date count as well. Reads the tables of ``serving.decisions``
    and never creates anything: a missing SQLite file or missing tables give None.
    """
    try:
        engine = open_engine(url, create=False, begin=None)
    except StoreMissingError:
        return None
    try:
        inspector = sa.inspect(engine)
        if not (inspector.has_table("decisions") and inspector.has_table("feedback")):
            return None
        query = sa.select(decisions_table)
        if until is not None:
            query = query.where(
                sa.or_(decisions_table.c.as_of.is_(None), decisions_table.c.as_of <= until)
            )
        with engine.connect() as conn:
            decision_rows = conn.execute(query.order_by(decisions_table.c.created_at)).all()
            feedback_rows = conn.execute(
                sa.select(feedback_table).order_by(feedback_table.c.feedback_id)
            ).all()
    finally:
        engine.dispose()
    decisions = [decision_record(r) for r in decision_rows]
    kept = {d.decision_id for d in decisions}
    feedback = [feedback_record(r) for r in feedback_rows if r.decision_id in kept]
    return decisions, feedback


# -- the run -----------------------------------------------------------------------------------


def run_monitor(
    ds: Dataset,
    as_of: dt.date | str,
    settings: Settings,
    out: Path,
    thresholds: Thresholds | None = None,
    *,
    models: ModelSet | None = None,
    top_features: int = 6,
    backtest_count: int = 3,
) -> MonitorResult:
    """Compute every figure of the report as of a date, write the HTML and the JSON beside it.

    Args:
        ds: a validated dataset.
        as_of: the date to monitor (date or ISO string), at most the data's ``data_end``.
        settings: where MLflow and the decision log are.
        out: the HTML file; the JSON goes to the same path with suffix ``.json``.
        thresholds: alert thresholds (defaults of ``Thresholds``).
        models: the champions; loaded from the registry by default.
        top_features: how many of the worst-drifting features get a plot.
        backtest_count: how many monthly as-of dates with a passed horizon to backtest.

    Returns:
        The result with the alerts; ``exit_code`` is 1 when any fired.

    Raises:
        ValueError: ``as_of`` is not an ISO date or lies after ``data_end``.
        LookupError: no champion is registered.
    """
    thresholds = thresholds or Thresholds()
    day = as_of_dates([as_of])[0]
    if day > ds.settings.data_end:
        raise ValueError(
            f"as-of date {day} is after the end of the data ({ds.settings.data_end}): "
            "features would see no activity and everything would look like drift"
        )
    models = models or load_champions(settings)
    reference = training_reference(settings.tracking_uri(), models)
    backtest = backtest_dates(ds, day, backtest_count)
    dates = sorted({day, *backtest})
    scored = _score_dates(ds, dates, models)
    images: dict[str, str] = {}

    drift = _feature_drift_section(reference, scored, day, top_features, images)
    scores = _score_drift_section(ds, reference, scored, day, images)
    realized = _realized_section(ds, reference, scored, backtest, images)
    order = tier_names(ds)
    decision_log = read_decision_log(settings.decisions_url(), day)
    decision_dates = sorted(
        {d.as_of for d in (decision_log[0] if decision_log else []) if d.as_of is not None}
    )
    previous = _months_back(day, 1)
    tiers = assign_tiers(ds, sorted({day, previous, *decision_dates}))
    tiers["as_of"] = pd.to_datetime(tiers["as_of"]).dt.date
    pyramid = _pyramid_section(tiers, day, previous, order, images)
    feedback = _feedback_section(decision_log, tiers, order, day, settings.decisions_url(), images)

    alerts = find_alerts(
        thresholds,
        features=pd.DataFrame(drift["features"], columns=["feature", "psi"]),
        scores=pd.DataFrame(scores["targets"], columns=["target", "psi"]),
        realized=pd.DataFrame(
            realized["rows"],
            columns=[
                "target",
                "as_of",
                "roc_auc",
                "ece",
                "positives",
                "training_roc_auc",
                "training_ece",
            ],
        ),
        control=feedback.get("control"),
    )
    figures = {
        "as_of": day.isoformat(),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "dataset": ds.source,
        "data_end": ds.settings.data_end.isoformat(),
        "horizon_days": ds.settings.horizon_days,
        "thresholds": thresholds.model_dump(),
        "alerts": [asdict(a) for a in alerts],
        "models": [
            {
                "target": t,
                "name": r.name,
                "version": r.version,
                "run_id": r.run_id,
                "trained_as_of": [d.isoformat() for d in r.training_dates],
            }
            for t, r in sorted(reference.targets.items())
        ],
        "feature_drift": drift,
        "score_drift": scores,
        "realized_performance": realized,
        "pyramid": pyramid,
        "feedback": feedback,
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figures_file = out.with_suffix(".json")
    figures_file.write_text(json.dumps(_plain(figures), indent=1, allow_nan=False) + "\n")
    out.write_text(render_html(figures, images))
    return MonitorResult(day, out, figures_file, alerts, figures)


@dataclass
class _Scored:
    """Features and champion scores per spec group, for every date computed."""

    features: dict[str, pd.DataFrame]  # target -> features of its spec group (all dates)
    scores: pd.DataFrame  # customer_id, as_of, <target>... (probabilities)
    products: dict[str, str | None]  # target -> cross-sell product (None: not cross-sell)


def _score_dates(ds: Dataset, dates: list[dt.date], models: ModelSet) -> _Scored:
    held = open_holdings(ds, dates)
    if held is not None:
        held["as_of"] = pd.to_datetime(held["as_of"]).dt.date
    features_by_target: dict[str, pd.DataFrame] = {}
    parts: list[pd.DataFrame] = []
    for spec, targets in models.by_spec():
        features = build_features(ds, dates, spec)
        features["as_of"] = pd.to_datetime(features["as_of"]).dt.date
        for target in targets:
            features_by_target[target] = features
        scores = []
        for day, rows in features.groupby("as_of", sort=True):
            # score_frame treats every row of ``held`` as held: give it one date's holdings.
            held_then = None if held is None else held[held["as_of"] == day]
            probabilities = score_frame(rows, models, targets, held_then)
            probabilities.columns = targets
            scores.append(pd.concat([rows[["customer_id", "as_of"]], probabilities], axis=1))
        parts.append(pd.concat(scores).set_index(["customer_id", "as_of"]))
    joined = pd.concat(parts, axis=1).reset_index()
    products = {t: m.predictor.meta.get("product") for t, m in models.models.items()}
    return _Scored(features_by_target, joined, products)


def _feature_drift_section(
    reference: TrainingReference,
    scored: _Scored,
    day: dt.date,
    top: int,
    images: dict[str, str],
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    missing_runs = []
    plotted: list[tuple[dict, pd.Series, str]] = []
    for run_id, profiles in sorted(reference.profiles.items()):
        targets = sorted(t for t, r in reference.targets.items() if r.run_id == run_id)
        if profiles is None:
            missing_runs.append(run_id)
            continue
        features = scored.features[targets[0]]
        now = features[features["as_of"] == day]
        drift = feature_drift(profiles, now)
        for row in drift.itertuples():
            rows.append(
                {
                    "feature": row.feature,
                    "kind": row.kind,
                    "psi": row.psi,
                    "run_id": run_id,
                    "targets": ", ".join(targets),
                }
            )
        for name in drift["feature"].head(top):
            plotted.append((profiles[name], now[name], name))
    rows.sort(key=lambda r: (-_or(r["psi"], -1.0), r["feature"]))
    top_names = {r["feature"] for r in rows[:top]}
    plotted = [p for p in plotted if p[2] in top_names][:top]
    if plotted:
        images["feature_drift"] = _png(_plot_feature_drift(plotted, day))
    return {"features": rows, "runs_without_profile": missing_runs}


def _score_drift_section(
    ds: Dataset,
    reference: TrainingReference,
    scored: _Scored,
    day: dt.date,
    images: dict[str, str],
) -> dict[str, Any]:
    rows = []
    pairs = {}
    now = scored.scores[scored.scores["as_of"] == day]
    for target, ref in sorted(reference.targets.items()):
        if ref.holdout_scores is None:
            rows.append({"target": target, "psi": float("nan"), "note": "no held-out rows"})
            continue
        features = scored.features[target]
        population = _label_population(ds, target, features[features["as_of"] == day])
        current = now.set_index("customer_id")[target].reindex(population).to_numpy()
        figures = score_drift(ref.holdout_scores, current)
        rows.append({"target": target, **figures})
        pairs[target] = (_finite(ref.holdout_scores), _finite(current), figures["psi"])
    if pairs:
        images["score_drift"] = _png(_plot_score_drift(pairs, day))
    return {"targets": rows}


def _realized_section(
    ds: Dataset,
    reference: TrainingReference,
    scored: _Scored,
    dates: list[dt.date],
    images: dict[str, str],
) -> dict[str, Any]:
    if not dates:
        return {
            "dates": [],
            "rows": [],
            "note": "no as-of date has a passed horizon yet: nothing to backtest",
        }
    # Without holdings in the data, cross-sell has no label to backtest against.
    products = sorted(
        {str(p) for p in scored.products.values() if p is not None}
        if "holdings" in ds.tables
        else set()
    )
    labels = build_labels(ds, dates, products=products)
    labels["as_of"] = pd.to_datetime(labels["as_of"]).dt.date
    # Label columns share names with score columns (churn, upgrade): keep them apart.
    labels = labels.rename(columns=lambda c: c if c in ("customer_id", "as_of") else f"label:{c}")
    frame = scored.scores.merge(labels, on=["customer_id", "as_of"], how="inner")
    rows, curves = [], {}
    for target, ref in sorted(reference.targets.items()):
        column = _label_column(scored, target)
        if column is None or f"label:{column}" not in frame:
            continue
        column = f"label:{column}"
        trained_until = max(ref.training_dates) if ref.training_dates else None
        for day in dates:
            part = frame[frame["as_of"] == day]
            figures = performance(part[column].to_numpy(float), part[target].to_numpy(float))
            rows.append(
                {
                    "target": target,
                    "as_of": day.isoformat(),
                    "in_training_window": bool(trained_until and day <= trained_until),
                    "rows": figures.get("rows", 0.0),
                    "positives": figures.get("positives", 0.0),
                    "base_rate": figures.get("base_rate", float("nan")),
                    "roc_auc": figures.get("roc_auc", float("nan")),
                    "ece": figures.get("ece", float("nan")),
                    "lift_top_decile": figures.get("lift_top_decile", float("nan")),
                    "training_roc_auc": ref.metrics.get("roc_auc", float("nan")),
                    "training_ece": ref.metrics.get("ece", float("nan")),
                    "training_lift_top_decile": ref.metrics.get("lift_top_decile", float("nan")),
                    "calibration": figures.get("calibration"),
                    "lift_by_decile": figures.get("lift_by_decile"),
                }
            )
        latest = rows[-1]
        training = (
            performance(ref.holdout_labels, ref.holdout_scores)
            if ref.holdout_scores is not None
            else None
        )
        curves[target] = (latest, training)
    if curves:
        images["calibration"] = _png(_plot_calibration(curves))
        images["lift"] = _png(_plot_lift(curves))
    return {"dates": [d.isoformat() for d in dates], "rows": rows}


def _pyramid_section(
    tiers: pd.DataFrame,
    day: dt.date,
    previous: dt.date,
    order: Sequence[str],
    images: dict[str, str],
) -> dict[str, Any]:
    now = tiers[tiers["as_of"] == day]
    before = tiers[tiers["as_of"] == previous]
    pyramid = tier_pyramid(now, order)
    curve = value_curve(now["value"])
    migrations = tier_migrations(before, now, order)
    images["pyramid"] = _png(_plot_pyramid(pyramid, curve, day))
    moved = migrations.loc[list(reversed(list(order))), list(reversed(list(order)))]
    stayed = int(np.trace(moved.to_numpy()))
    ranks = {n: i for i, n in enumerate(order)}
    up = sum(
        int(moved.loc[a, b]) for a in moved.index for b in moved.columns if ranks[b] > ranks[a]
    )
    down = int(moved.to_numpy().sum()) - stayed - up
    return {
        "customers": len(now),
        "tiers": pyramid.to_dict(orient="records"),
        "top_20_percent_value_share": top_share(now["value"], 0.2),
        "curve": curve.iloc[::5].to_dict(orient="list"),
        "previous_as_of": previous.isoformat(),
        "migrations": {
            "matrix": {
                str(k): {str(c): int(v) for c, v in row.items()} for k, row in migrations.iterrows()
            },
            "stayed": stayed,
            "up": up,
            "down": down,
            "new": int(migrations.loc["(new)"].sum()),
            "left": int(migrations["(left)"].sum()),
        },
    }


def _feedback_section(
    log: tuple[list[DecisionRecord], list[FeedbackRecord]] | None,
    tiers: pd.DataFrame,
    order: Sequence[str],
    day: dt.date,
    url: str,
    images: dict[str, str],
) -> dict[str, Any]:
    if log is None:
        return {"note": f"no decision log at {_safe_url(url)}: nothing to report yet"}
    decisions, feedback = log
    rows = suggestion_rows(decisions, feedback)
    if rows.empty:
        return {"note": f"the decision log has no decision on data up to {day}"}
    # A decision's tier is the customer's tier on the store date it was made on.
    rows["tier_date"] = [d if isinstance(d, dt.date) else day for d in rows["as_of"]]
    lookup = tiers.set_index(["customer_id", "as_of"])["tier"]
    keys = pd.MultiIndex.from_arrays([rows["customer_id"], rows["tier_date"]])
    rows["tier"] = lookup.reindex(keys).to_numpy()
    by = {key: feedback_counts(rows, key) for key in ("kind", "tier", "agent_id")}
    by["product"] = feedback_counts(rows[rows["kind"] == "cross_sell"], "product")
    rank = {name: -i for i, name in enumerate(order)}  # highest tier first
    by["tier"] = by["tier"].sort_values("tier", key=lambda t: t.map(rank).fillna(1), kind="stable")
    control = control_comparison(rows)
    images["feedback"] = _png(_plot_feedback(by["kind"], control))
    times = pd.to_datetime(rows["created_at"])
    return {
        "decisions": int(rows["decision_id"].nunique()),
        "suggestions": len(rows),
        "first_decision": times.min().isoformat(),
        "last_decision": times.max().isoformat(),
        "by": {k: v.to_dict(orient="records") for k, v in by.items()},
        "control": control,
    }


# -- helpers -----------------------------------------------------------------------------------


def _label_population(ds: Dataset, target: str, features: pd.DataFrame) -> pd.Index:
    """Customers for whom the target's label would be defined (as at training).

    Upgrade has no label in the top tier; cross-sell scores are already missing for holders;
    an ``inactive`` churn label needs a transaction in the year before.
    """
    keep = pd.Series(True, index=features.index)
    if target == "upgrade" and "tier_rank" in features:
        keep &= features["tier_rank"] < len(tier_names(ds)) - 1
    if (
        target == "churn"
        and ds.settings.churn_definition == "inactive"
        and "txn_count_365d" in features
    ):
        keep &= features["txn_count_365d"] > 0
    return pd.Index(features.loc[keep, "customer_id"])


def _label_column(scored: _Scored, target: str) -> str | None:
    """The ``build_labels`` column of a target (None for a target it does not know)."""
    if target in ("churn", "upgrade"):
        return target
    product = scored.products.get(target)
    return None if product is None else f"cross_sell:{product}"


def _artifact_json(uri: str, run_id: str, path: str, tmp: Path) -> dict | None:
    local = _download(uri, run_id, path, tmp)
    return None if local is None else json.loads(Path(local).read_text())


def _artifact_parquet(uri: str, run_id: str, path: str, tmp: Path) -> pd.DataFrame | None:
    local = _download(uri, run_id, path, tmp)
    return None if local is None else pd.read_parquet(local)


def _download(uri: str, run_id: str, path: str, tmp: Path) -> str | None:
    try:
        return mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=path, dst_path=str(tmp / run_id), tracking_uri=uri
        )
    except (OSError, mlflow.exceptions.MlflowException):
        return None


def _months_back(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier, clamped to the month's end."""
    return (pd.Timestamp(day) - pd.DateOffset(months=months)).date()


def _finite(values: Any) -> np.ndarray:
    array = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return array[np.isfinite(array)]


def _above(value: Any, threshold: float) -> bool:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(v) and v > threshold


def _or(value: Any, default: float) -> float:
    return default if value is None or not math.isfinite(float(value)) else float(value)


def _safe_url(url: str) -> str:
    """The URL without its password, for the report."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _plain(value: Any) -> Any:
    """JSON-ready: NaN and infinities as null, numpy and dates as plain values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date | dt.datetime | pd.Timestamp):
        return value.isoformat()
    return value


# -- plots -------------------------------------------------------------------------------------
# Figures are made with matplotlib's object API (no pyplot): no global state, no backend.

TRAINING_COLOUR, NOW_COLOUR = "#7f8c8d", "#c0392b"


def _png(fig: Figure) -> str:
    """The figure as base64 PNG text for an ``<img src="data:image/png;base64,...">``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _grid(count: int, columns: int = 3, size: tuple[float, float] = (4.6, 3.2)):
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    fig = Figure(figsize=(size[0] * columns, size[1] * rows))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes


def _plot_feature_drift(plotted: list[tuple[dict, pd.Series, str]], day: dt.date) -> Figure:
    fig, axes = _grid(len(plotted))
    for ax, (profile, values, name) in zip(axes, plotted, strict=False):
        expected, actual = compare_shares(profile, values)
        labels = bin_labels(profile)
        labels += [k for k in ("__other__", "__missing__") if len(labels) < len(expected)]
        x = np.arange(len(expected))
        ax.bar(x - 0.2, expected, width=0.4, color=TRAINING_COLOUR, label="training")
        ax.bar(x + 0.2, actual, width=0.4, color=NOW_COLOUR, label=f"as of {day}")
        ax.set_xticks(x, labels[: len(x)], rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{name} (PSI {psi(profile, values):.2f})", fontsize=9)
        ax.set_ylabel("share")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _plot_score_drift(
    pairs: dict[str, tuple[np.ndarray, np.ndarray, float]], day: dt.date
) -> Figure:
    fig, axes = _grid(len(pairs))
    for ax, (target, (training, now, value)) in zip(axes, pairs.items(), strict=False):
        top = max(float(np.quantile(np.concatenate([training, now]), 0.995)), 1e-6)
        bins = np.linspace(0, top, 31)
        ax.hist(
            training,
            bins=bins,
            density=True,
            alpha=0.6,
            color=TRAINING_COLOUR,
            label="training (held out)",
        )
        ax.hist(now, bins=bins, density=True, alpha=0.6, color=NOW_COLOUR, label=f"as of {day}")
        ax.set_title(f"{target} (PSI {value:.2f})", fontsize=9)
        ax.set_xlabel("calibrated probability")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _plot_calibration(curves: dict[str, tuple[dict, dict | None]]) -> Figure:
    fig, axes = _grid(len(curves))
    for ax, (target, (latest, training)) in zip(axes, curves.items(), strict=False):
        top = 1e-3
        for label, figures, colour in (
            ("training (held out)", training, TRAINING_COLOUR),
            (f"as of {latest['as_of']}", latest, NOW_COLOUR),
        ):
            points = (figures or {}).get("calibration")
            if points:
                ax.plot(
                    points["predicted"], points["observed"], marker="o", color=colour, label=label
                )
                top = max(top, *points["predicted"], *points["observed"])
        ax.plot([0, top], [0, top], color="black", linewidth=0.5)
        ax.set(title=f"{target}: calibration", xlabel="mean predicted", ylabel="observed rate")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _plot_lift(curves: dict[str, tuple[dict, dict | None]]) -> Figure:
    fig, axes = _grid(len(curves))
    for ax, (target, (latest, training)) in zip(axes, curves.items(), strict=False):
        for offset, label, figures, colour in (
            (-0.2, "training (held out)", training, TRAINING_COLOUR),
            (0.2, f"as of {latest['as_of']}", latest, NOW_COLOUR),
        ):
            lift = (figures or {}).get("lift_by_decile")
            if lift:
                ax.bar(
                    np.arange(1, len(lift) + 1) + offset, lift, width=0.4, color=colour, label=label
                )
        ax.axhline(1.0, color="black", linewidth=0.5)
        ax.set(
            title=f"{target}: lift by score decile",
            xlabel="decile (1 = highest scores)",
            ylabel="lift",
        )
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _plot_pyramid(pyramid: pd.DataFrame, curve: pd.DataFrame, day: dt.date) -> Figure:
    fig = Figure(figsize=(11, 3.6))
    left, right = fig.subplots(1, 2)
    y = np.arange(len(pyramid))[::-1]
    left.barh(
        y + 0.2,
        pyramid["share_customers"],
        height=0.4,
        color=TRAINING_COLOUR,
        label="share of customers",
    )
    left.barh(y - 0.2, pyramid["share_value"], height=0.4, color=NOW_COLOUR, label="share of value")
    left.set_yticks(y, pyramid["tier"])
    left.set(title=f"Tiers as of {day}", xlabel="share")
    left.legend(fontsize=7)
    right.plot(curve["share_customers"], curve["share_value"], color=NOW_COLOUR)
    right.plot([0, 1], [0, 1], color="black", linewidth=0.5)
    top20 = float(np.interp(0.2, curve["share_customers"], curve["share_value"]))
    right.axvline(0.2, color=TRAINING_COLOUR, linestyle="--", linewidth=0.8)
    right.annotate(
        f"top 20%: {top20:.0%} of value", (0.2, top20), (0.3, max(top20 - 0.25, 0.05)), fontsize=8
    )
    right.set(
        title="Value concentration (80/20 curve)",
        xlabel="share of customers (by value, highest first)",
        ylabel="share of value",
    )
    fig.tight_layout()
    return fig


def _plot_feedback(by_kind: pd.DataFrame, control: Mapping[str, Any]) -> Figure:
    fig = Figure(figsize=(11, 3.4))
    left, right = fig.subplots(1, 2)
    bottom = np.zeros(len(by_kind))
    colours = {
        "accepted": "#27ae60",
        "declined": "#c0392b",
        "skipped": "#f39c12",
        "not_shown": "#bdc3c7",
        NO_RESPONSE: "#95a5a6",
    }
    for response in RESPONSE_COLUMNS:
        left.bar(
            by_kind["kind"],
            by_kind[response],
            bottom=bottom,
            color=colours[response],
            label=response,
        )
        bottom += by_kind[response].to_numpy(dtype=float)
    left.set(title="Responses by kind", ylabel="suggestions")
    left.legend(fontsize=7)
    names = ["ranked", "control"]
    for i, rate in enumerate(("acceptance", "conversion")):
        values = [control["groups"][n][rate] for n in names]
        low = [control["groups"][n][f"{rate}_low"] for n in names]
        high = [control["groups"][n][f"{rate}_high"] for n in names]
        x = np.arange(2) + (i - 0.5) * 0.4
        err = np.array(
            [
                [_or(v, 0) - _or(lo, 0) for v, lo in zip(values, low, strict=True)],
                [_or(h, 0) - _or(v, 0) for v, h in zip(values, high, strict=True)],
            ]
        )
        right.bar(
            x,
            [_or(v, 0) for v in values],
            width=0.4,
            yerr=err,
            capsize=4,
            label=rate,
            color=["#2980b9", "#8e44ad"][i],
        )
    right.set_xticks(np.arange(2), names)
    right.set(title="Ranked vs control (95% Wilson intervals)", ylabel="rate")
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


# -- HTML --------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.alerts{background:#fdecea;border:1px solid #c0392b;padding:.6em 1.2em}
.ok{background:#eafaf1;border:1px solid #27ae60;padding:.6em 1.2em}
.note{color:#555;font-style:italic}img{max-width:100%}
"""


def render_html(figures: Mapping[str, Any], images: Mapping[str, str]) -> str:
    """The self-contained report: alerts first, then one section per figure group.

    Args:
        figures: the report's figures (what ``run_monitor`` writes as JSON).
        images: section key -> base64 PNG, embedded as data URIs.
    """
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Tierwise monitoring as of {e(figures['as_of'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Tierwise monitoring as of {e(figures['as_of'])}</h1>",
        f"<p>Data {e(str(figures['dataset']))} (ends {e(figures['data_end'])}, horizon "
        f"{figures['horizon_days']} days); generated {e(figures['generated_at'])}.</p>",
    ]
    alerts = figures["alerts"]
    parts.append('<section id="alerts"><h2>Alerts</h2>')
    if alerts:
        items = "".join(f"<li>{e(a['message'])}</li>" for a in alerts)
        parts.append(f'<div class="alerts"><b>{len(alerts)} alert(s)</b><ul>{items}</ul></div>')
    else:
        parts.append('<div class="ok">No alert: every figure is within its threshold.</div>')
    thresholds = ", ".join(f"{k} {v}" for k, v in figures["thresholds"].items())
    parts.append(f'<p class="note">Thresholds: {e(thresholds)}.</p></section>')

    parts.append('<section id="models"><h2>Champion models</h2>')
    models = pd.DataFrame(
        [
            {
                **{k: v for k, v in m.items() if k != "trained_as_of"},
                "trained_as_of": " .. ".join(m["trained_as_of"][:1] + m["trained_as_of"][-1:]),
            }
            for m in figures["models"]
        ]
    )
    parts.append(_table(models))
    parts.append("</section>")

    drift = figures["feature_drift"]
    parts.append('<section id="feature-drift"><h2>Feature drift</h2>')
    parts.append(
        '<p class="note">Population stability index of each feature as of the date against '
        "the champion's training profile (latest training snapshot), worst first. "
        "Below 0.1 stable, 0.1-0.2 moderate, above 0.2 significant.</p>"
    )
    if drift["runs_without_profile"]:
        parts.append(
            f'<p class="note">No feature profile in run(s) {e(", ".join(drift["runs_without_profile"]))}.</p>'
        )
    parts.append(_image(images, "feature_drift", "distributions of the top drifting features"))
    table = pd.DataFrame(drift["features"])
    if not table.empty and table["run_id"].nunique() == 1:  # one training run: say it once
        table = table.drop(columns=["run_id", "targets"])
    parts.append(_table(table, limit=25))
    parts.append("</section>")

    parts.append('<section id="score-drift"><h2>Score drift</h2>')
    parts.append(
        '<p class="note">Each champion\'s calibrated scores as of the date against its scores '
        "on the training run's held-out rows (same population rules as the labels).</p>"
    )
    parts.append(_image(images, "score_drift", "score distributions now and at training"))
    parts.append(_table(pd.DataFrame(figures["score_drift"]["targets"])))
    parts.append("</section>")

    realized = figures["realized_performance"]
    parts.append('<section id="realized-performance"><h2>Realized performance</h2>')
    if not realized["rows"]:
        parts.append(f'<p class="note">{e(realized.get("note", "nothing to backtest"))}</p>')
    else:
        parts.append(
            '<p class="note">Backtest: the scores the champions give as-of dates whose horizon '
            "has passed, against what happened, beside the figures logged at training. "
            "Dates inside the training window are marked: their figures flatter the model.</p>"
        )
        table = pd.DataFrame(realized["rows"]).drop(columns=["calibration", "lift_by_decile"])
        parts.append(_table(table))
        parts.append(_image(images, "calibration", "calibration curves"))
        parts.append(_image(images, "lift", "lift by score decile"))
    parts.append("</section>")

    pyramid = figures["pyramid"]
    parts.append('<section id="pyramid"><h2>Value pyramid</h2>')
    parts.append(
        f"<p>{pyramid['customers']:,} customers; the top 20% hold "
        f"{pyramid['top_20_percent_value_share']:.0%} of value (12-month value, positive part).</p>"
    )
    parts.append(_image(images, "pyramid", "tier sizes, value shares and the 80/20 curve"))
    parts.append(_table(pd.DataFrame(pyramid["tiers"])))
    m = pyramid["migrations"]
    parts.append(
        f"<h3>Tier migrations since {e(pyramid['previous_as_of'])}</h3><p>{m['up']:,} up, "
        f"{m['down']:,} down, {m['stayed']:,} stayed, {m['new']:,} new, {m['left']:,} left.</p>"
    )
    matrix = pd.DataFrame(m["matrix"]).T.rename_axis("from \\ to").reset_index()
    parts.append(_table(matrix))
    parts.append("</section>")

    feedback = figures["feedback"]
    parts.append('<section id="feedback"><h2>Agent feedback</h2>')
    if "note" in feedback:
        parts.append(f'<p class="note">{e(feedback["note"])}</p>')
    else:
        parts.append(
            f"<p>{feedback['decisions']:,} decisions with {feedback['suggestions']:,} suggestions, "
            f"{e(feedback['first_decision'])} to {e(feedback['last_decision'])}. Acceptance = "
            "accepted / (accepted + declined); conversion = accepted / shown. Skips are the "
            "agent's call and never count against an offer.</p>"
        )
        parts.append(_image(images, "feedback", "responses by kind and ranked vs control"))
        control = feedback["control"]
        groups = pd.DataFrame(control["groups"]).T.rename_axis("group").reset_index()
        parts.append("<h3>Ranked suggestions vs the control group</h3>")
        parts.append(_table(groups))
        diff = pd.DataFrame(control["difference"]).T.rename_axis("ranked - control").reset_index()
        parts.append(_table(diff))
        for key, title in (
            ("kind", "kind"),
            ("product", "product (cross-sell)"),
            ("tier", "tier"),
            ("agent_id", "agent"),
        ):
            parts.append(f"<h3>By {e(title)}</h3>")
            parts.append(_table(pd.DataFrame(feedback["by"][key]), limit=50))
    parts.append("</section></body></html>")
    return "\n".join(parts) + "\n"


def _image(images: Mapping[str, str], key: str, alt: str) -> str:
    if key not in images:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{images[key]}">'


def _table(frame: pd.DataFrame, limit: int | None = None) -> str:
    if frame.empty:
        return '<p class="note">nothing to show</p>'
    note = ""
    if limit is not None and len(frame) > limit:
        note = f'<p class="note">{limit} of {len(frame)} rows shown; all are in the JSON file.</p>'
        frame = frame.head(limit)
    return (
        frame.to_html(index=False, border=0, na_rep="-", float_format=lambda v: f"{v:.4g}") + note
    )
