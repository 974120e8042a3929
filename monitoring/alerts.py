"""Alerts: thresholds and one table of rules that turn the report's figures into alerts.

Each rule of ``RULES`` names the figures it reads (``features``, ``scores``, ``realized``,
``control`` or ``effects``), how it measures one row of them, the ``Thresholds`` field it compares with,
the comparison and the message. ``find_alerts`` applies the table; a scheduler pages
someone when any alert fires (``MonitorResult.exit_code``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from features.values import as_number

Row = Mapping[str, Any]


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
    harm_alert: bool = Field(
        True,
        description="alert when offering an action lowers its outcome rate against its "
        "no-offer holdout (the 95% interval of the effect lies below 0)",
    )


@dataclass(frozen=True)
class Alert:
    """One threshold crossed: what, about what, the figure and the threshold."""

    kind: str  # feature_drift, score_drift, auc_drop, ece_rise, ranked_below_control, offer_harms
    subject: str
    value: float
    threshold: float
    message: str


@dataclass(frozen=True)
class Rule:
    """One alert rule: a row of ``figures`` fires when ``measure`` crosses the threshold.

    ``threshold`` is a ``Thresholds`` field or a fixed number; ``comparison`` is ``above``
    or ``below`` (exclusive, and a missing figure never fires). ``subject`` and ``message``
    are ``str.format`` templates over the row's fields plus ``value`` (what is reported,
    ``measure`` unless ``reported`` is given), ``threshold`` and (for the message)
    ``subject``. ``switch`` names a ``Thresholds`` flag that turns the rule off;
    ``min_positives`` skips rows with fewer positives than ``Thresholds.min_positives``.
    """

    kind: str
    figures: str
    measure: Callable[[Row], Any]
    threshold: str | float
    comparison: str
    subject: str
    message: str
    reported: Callable[[Row], Any] | None = None
    switch: str | None = None
    min_positives: bool = False


RULES: tuple[Rule, ...] = (
    Rule(
        kind="feature_drift",
        figures="features",
        measure=lambda r: r["psi"],
        threshold="psi",
        comparison="above",
        subject="{feature}",
        message="feature {feature} drifted: PSI {psi:.3f} > {threshold}",
    ),
    Rule(
        kind="score_drift",
        figures="scores",
        measure=lambda r: r["psi"],
        threshold="score_psi",
        comparison="above",
        subject="{target}",
        message="{target} scores drifted: PSI {psi:.3f} > {threshold}",
    ),
    Rule(
        kind="auc_drop",
        figures="realized",
        measure=lambda r: r["training_roc_auc"] - r["roc_auc"],
        threshold="auc_drop",
        comparison="above",
        subject="{target} as of {as_of}",
        message="{subject}: ROC AUC {roc_auc:.3f}, {value:.3f} below training "
        "({training_roc_auc:.3f}; allowed drop {threshold})",
        min_positives=True,  # too few positives for an AUC worth paging anyone over
    ),
    Rule(
        kind="ece_rise",
        figures="realized",
        measure=lambda r: r["ece"] - r["training_ece"],
        threshold="ece_rise",
        comparison="above",
        subject="{target} as of {as_of}",
        message="{subject}: calibration error {ece:.3f}, {value:.3f} above training "
        "({training_ece:.3f}; allowed rise {threshold})",
        min_positives=True,
    ),
    Rule(
        kind="ranked_below_control",
        figures="control",
        measure=lambda r: r["high"],  # the whole 95% interval of the difference below 0
        threshold=0.0,
        comparison="below",
        subject="suggestions",
        message="ranked suggestions convert worse than the control group: "
        "{difference:+.3f} (95% interval {low:+.3f} to {high:+.3f})",
        reported=lambda r: r["difference"],
        switch="control_alert",
    ),
    Rule(
        kind="offer_harms",
        figures="effects",
        measure=lambda r: r["effect_high"],  # the whole 95% interval of the effect below 0
        threshold=0.0,
        comparison="below",
        subject="{action}",
        message="offering {action} harms: its outcome rate is {effect:+.3f} against its "
        "holdout (95% interval {effect_low:+.3f} to {effect_high:+.3f}; "
        "{offered_n} offered, {holdout_n} held out)",
        reported=lambda r: r["effect"],
        switch="harm_alert",
    ),
)

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "above": operator.gt,
    "below": operator.lt,
}


def find_alerts(
    thresholds: Thresholds,
    features: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    realized: pd.DataFrame | None = None,
    control: Mapping[str, Any] | None = None,
    effects: Sequence[Row] | None = None,
    rules: tuple[Rule, ...] = RULES,
) -> list[Alert]:
    """The alerts the figures raise, in the order of the report's sections.

    Within one kind of figures, rows come in order and each row's rules in table order.

    Args:
        features: ``feature_drift`` rows (``feature``, ``psi``).
        scores: ``target``, ``psi`` per champion.
        realized: per target and as-of date: ``target, as_of, roc_auc, ece, positives,
            training_roc_auc, training_ece``.
        control: ``control_comparison`` result (its conversion difference is checked).
        effects: offered against holdout per action (``monitoring.effects.offer_effects``
            rows: ``action``, ``effect``, ``effect_low``, ``effect_high``, ``offered_n``,
            ``holdout_n``).
        rules: the rule table.
    """
    given = {
        "features": _records(features),
        "scores": _records(scores),
        "realized": _records(realized),
        "control": [control["difference"]["conversion"]] if control is not None else [],
        "effects": list(effects or []),
    }
    alerts: list[Alert] = []
    for figures in dict.fromkeys(rule.figures for rule in rules):
        applied = [r for r in rules if r.figures == figures]
        for row in given[figures]:
            alerts.extend(a for rule in applied if (a := apply_rule(rule, row, thresholds)))
    return alerts


def apply_rule(rule: Rule, row: Row, thresholds: Thresholds) -> Alert | None:
    """The alert ``rule`` raises on one row of its figures, or None."""
    if rule.switch is not None and not getattr(thresholds, rule.switch):
        return None
    if rule.min_positives and not row["positives"] >= thresholds.min_positives:
        return None
    threshold = (
        getattr(thresholds, rule.threshold) if isinstance(rule.threshold, str) else rule.threshold
    )
    measured = rule.measure(row)
    if not _crosses(measured, rule.comparison, threshold):
        return None
    value = float(measured if rule.reported is None else rule.reported(row))
    fields = {**row, "value": value, "threshold": threshold}
    subject = rule.subject.format(**fields)
    message = rule.message.format(**fields, subject=subject)
    return Alert(rule.kind, subject, value, threshold, message)


def _records(frame: pd.DataFrame | None) -> list[Row]:
    return [] if frame is None else frame.to_dict(orient="records")


def _crosses(value: Any, comparison: str, threshold: float) -> bool:
    """Whether a finite ``value`` lies strictly ``above``/``below`` the threshold."""
    v = as_number(value)
    return v is not None and COMPARISONS[comparison](v, threshold)
