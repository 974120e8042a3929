"""The report's sections: the figures (and plots) of each, from the dataset, scores and readers.

Each ``build_*`` function returns a ``Section``: the figures the JSON file holds and the
base64 PNG plots the HTML embeds. They compute with ``monitoring.figures``, draw with
``monitoring.plots`` and read the dataset through ``features`` (features, labels, tiers)
and ``models.scoring`` (holdings, scores).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from features.contract import Dataset
from features.labels import build_labels, label_end
from features.pipeline import build_features
from features.tiers import tier_names
from features.urls import safe_url
from features.values import months_back, number_or
from models.scoring import ModelSet, open_holdings, score_frame
from monitoring import plots
from monitoring.effects import outcome_effects
from monitoring.figures import (
    control_comparison,
    feature_drift,
    feedback_counts,
    finite,
    migration_summary,
    performance,
    score_drift,
    suggestion_rows,
    tier_migrations,
    tier_pyramid,
    top_share,
    value_curve,
)
from monitoring.readers import TargetReference, TrainingReference
from serving.decisions import DecisionRecord, FeedbackRecord


@dataclass
class Section:
    """One section of the report: its figures (JSON-ready but for NaNs) and its plots."""

    figures: dict[str, Any]
    images: dict[str, str] = field(default_factory=dict)  # image key -> base64 PNG


@dataclass
class Scored:
    """Features and champion scores per spec group, for every date computed."""

    features: dict[str, pd.DataFrame]  # target -> features of its spec group (all dates)
    scores: pd.DataFrame  # customer_id, as_of, <target>... (probabilities)
    products: dict[str, str | None]  # target -> cross-sell product (None: not cross-sell)


# -- dates and scores --------------------------------------------------------------------------


def backtest_dates(ds: Dataset, as_of: dt.date, count: int = 3) -> list[dt.date]:
    """Monthly as-of dates, oldest first, whose horizon has passed by the end of the data.

    The latest is ``as_of`` or, if its horizon has not passed, the latest date that has
    (``label_end``); the others step back a calendar month each. Dates before the first
    signup are dropped, so the list may be empty.
    """
    end = min(as_of, label_end(ds))
    first = ds.con.execute("SELECT min(signup_date) FROM customers").fetchall()[0][0]
    dates = [months_back(end, k) for k in range(count)]
    return sorted(d for d in dates if first is not None and d >= first)


def score_dates(ds: Dataset, dates: list[dt.date], models: ModelSet) -> Scored:
    """Features of every champion's spec group and the champions' scores at each date."""
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
    return Scored(features_by_target, joined, products)


# -- drift -------------------------------------------------------------------------------------


def build_feature_drift(
    reference: TrainingReference, scored: Scored, day: dt.date, top: int
) -> Section:
    """PSI of every profiled feature per training run, worst first; the ``top`` plotted."""
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
    rows.sort(key=lambda r: (-number_or(r["psi"], -1.0), r["feature"]))
    top_names = {r["feature"] for r in rows[:top]}
    plotted = [p for p in plotted if p[2] in top_names][:top]
    section = Section({"features": rows, "runs_without_profile": missing_runs})
    if plotted:
        section.images["feature_drift"] = plots.png(plots.plot_feature_drift(plotted, day))
    return section


def build_score_drift(
    ds: Dataset, reference: TrainingReference, scored: Scored, day: dt.date
) -> Section:
    """Each champion's scores as of ``day`` against its scores on the held-out rows."""
    rows = []
    pairs = {}
    now = scored.scores[scored.scores["as_of"] == day]
    for target, ref in sorted(reference.targets.items()):
        if ref.holdout_scores is None:
            rows.append({"target": target, "psi": float("nan"), "note": "no held-out rows"})
            continue
        features = scored.features[target]
        population = label_population(ds, target, features[features["as_of"] == day])
        current = now.set_index("customer_id")[target].reindex(population).to_numpy()
        figures = score_drift(ref.holdout_scores, current)
        rows.append({"target": target, **figures})
        pairs[target] = (finite(ref.holdout_scores), finite(current), figures["psi"])
    section = Section({"targets": rows})
    if pairs:
        section.images["score_drift"] = plots.png(plots.plot_score_drift(pairs, day))
    return section


# -- realized performance ----------------------------------------------------------------------


def build_realized_performance(
    ds: Dataset, reference: TrainingReference, scored: Scored, dates: list[dt.date]
) -> Section:
    """Backtest: the champions' scores at ``dates`` against the labels, beside training."""
    if not dates:
        return Section(
            {
                "dates": [],
                "rows": [],
                "note": "no as-of date has a passed horizon yet: nothing to backtest",
            }
        )
    frame = _scores_with_labels(ds, scored, dates)
    rows, curves = [], {}
    for target, ref in sorted(reference.targets.items()):
        column = label_column(scored, target)
        if column is None or f"label:{column}" not in frame:
            continue
        for day in dates:
            part = frame[frame["as_of"] == day]
            labels, scores = part[f"label:{column}"], part[target]
            figures = performance(labels.to_numpy(float), scores.to_numpy(float))
            rows.append(_realized_row(ref, day, figures))
        training = (
            performance(ref.holdout_labels, ref.holdout_scores)
            if ref.holdout_scores is not None
            else None
        )
        curves[target] = (rows[-1], training)
    section = Section({"dates": [d.isoformat() for d in dates], "rows": rows})
    if curves:
        section.images["calibration"] = plots.png(plots.plot_calibration(curves))
        section.images["lift"] = plots.png(plots.plot_lift(curves))
    return section


def _scores_with_labels(ds: Dataset, scored: Scored, dates: list[dt.date]) -> pd.DataFrame:
    """The scores at ``dates`` joined to the labels, label columns prefixed ``label:``."""
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
    return scored.scores.merge(labels, on=["customer_id", "as_of"], how="inner")


def _realized_row(ref: TargetReference, day: dt.date, figures: dict[str, Any]) -> dict[str, Any]:
    """One target and date of the backtest beside the target's figures at training."""
    trained_until = max(ref.training_dates) if ref.training_dates else None
    nan = float("nan")
    return {
        "target": ref.target,
        "as_of": day.isoformat(),
        "in_training_window": bool(trained_until and day <= trained_until),
        "rows": figures.get("rows", 0.0),
        "positives": figures.get("positives", 0.0),
        "base_rate": figures.get("base_rate", nan),
        "roc_auc": figures.get("roc_auc", nan),
        "ece": figures.get("ece", nan),
        "lift_top_decile": figures.get("lift_top_decile", nan),
        "training_roc_auc": ref.metrics.get("roc_auc", nan),
        "training_ece": ref.metrics.get("ece", nan),
        "training_lift_top_decile": ref.metrics.get("lift_top_decile", nan),
        "calibration": figures.get("calibration"),
        "lift_by_decile": figures.get("lift_by_decile"),
    }


# -- value pyramid -----------------------------------------------------------------------------


def build_pyramid(
    tiers: pd.DataFrame, day: dt.date, previous: dt.date, order: Sequence[str]
) -> Section:
    """Tier sizes and value shares as of ``day``, the 80/20 curve and moves since ``previous``.

    Args:
        tiers: ``customer_id, as_of, tier, value`` at both dates at least.
        order: tier names, lowest first.
    """
    now = tiers[tiers["as_of"] == day]
    before = tiers[tiers["as_of"] == previous]
    pyramid = tier_pyramid(now, order)
    curve = value_curve(now["value"])
    migrations = tier_migrations(before, now, order)
    figures = {
        "customers": len(now),
        "tiers": pyramid.to_dict(orient="records"),
        "top_20_percent_value_share": top_share(now["value"], 0.2),
        "curve": curve.iloc[::5].to_dict(orient="list"),
        "previous_as_of": previous.isoformat(),
        "migrations": migration_summary(migrations, order),
    }
    return Section(figures, {"pyramid": plots.png(plots.plot_pyramid(pyramid, curve, day))})


# -- agent feedback ----------------------------------------------------------------------------


def build_feedback(
    log: tuple[list[DecisionRecord], list[FeedbackRecord]] | None,
    tiers: pd.DataFrame,
    order: Sequence[str],
    day: dt.date,
    url: str,
) -> Section:
    """Responses to suggestions by kind, product, tier and agent; ranked against control.

    Args:
        log: ``read_decision_log`` result (None: no decision log at ``url``).
        tiers: ``customer_id, as_of, tier`` at ``day`` and every decision's store date.
    """
    if log is None:
        return Section({"note": f"no decision log at {safe_url(url)}: nothing to report yet"})
    decisions, feedback = log
    rows = suggestion_rows(decisions, feedback)
    if rows.empty:
        return Section({"note": f"the decision log has no decision on data up to {day}"})
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
    times = pd.to_datetime(rows["created_at"])
    figures = {
        "decisions": int(rows["decision_id"].nunique()),
        "suggestions": len(rows),
        "first_decision": times.min().isoformat(),
        "last_decision": times.max().isoformat(),
        "by": {k: v.to_dict(orient="records") for k, v in by.items()},
        "control": control,
    }
    return Section(figures, {"feedback": plots.png(plots.plot_feedback(by["kind"], control))})


# -- what the suggestions changed -------------------------------------------------------------

NO_OUTCOMES = "no outcomes yet: run `tierwise outcomes`"


def build_effects(outcomes: pd.DataFrame | None, day: dt.date, order: Sequence[str]) -> Section:
    """Offered against holdout, the ranking's lift and the Qini curves, from the outcome rows.

    Only outcomes whose horizon ended by ``day`` count, so a report as of an earlier date
    shows what was known then. Plots are drawn only where there is something to draw.

    Args:
        outcomes: ``read_outcomes`` result (None: no outcome table yet).
        order: tier names, lowest first.
    """
    if outcomes is not None:
        outcomes = outcomes[pd.to_datetime(outcomes["horizon_end"]).dt.date <= day]
    if outcomes is None or outcomes.empty:
        return Section({"note": NO_OUTCOMES})
    figures = outcome_effects(outcomes, order)
    section = Section(figures)
    if figures["curves"]:
        section.images["qini"] = plots.png(plots.plot_qini(figures["curves"]))
    tiers = [r for r in figures["by_tier"] if pd.notna(r["effect_low"])]
    if tiers:
        section.images["effect_by_tier"] = plots.png(plots.plot_effect_by_tier(tiers))
    return section


# -- labels ------------------------------------------------------------------------------------


def label_population(ds: Dataset, target: str, features: pd.DataFrame) -> pd.Index:
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


def label_column(scored: Scored, target: str) -> str | None:
    """The ``build_labels`` column of a target (None for a target it does not know)."""
    if target in ("churn", "upgrade"):
        return target
    product = scored.products.get(target)
    return None if product is None else f"cross_sell:{product}"
