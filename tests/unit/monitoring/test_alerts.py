"""Alert rules: each fires beyond its threshold and not within it."""

from __future__ import annotations

import pandas as pd
import pytest

from monitoring.alerts import RULES, Thresholds, find_alerts
from monitoring.effects import outcome_effects
from tests.unit.monitoring.test_effects import outcome_rows as effect_rows


def realized(**changes) -> pd.DataFrame:
    row = {
        "target": "churn",
        "as_of": "2026-01-01",
        "roc_auc": 0.75,
        "ece": 0.01,
        "positives": 100.0,
        "training_roc_auc": 0.76,
        "training_ece": 0.01,
    }
    return pd.DataFrame([{**row, **changes}])


def test_a_drifted_feature_raises_one_alert_and_a_figure_at_the_threshold_none():
    features = pd.DataFrame(
        {"feature": ["spend", "age", "tenure"], "psi": [0.35, 0.2, float("nan")]}
    )
    alerts = find_alerts(Thresholds(), features=features)
    assert [(a.kind, a.subject) for a in alerts] == [("feature_drift", "spend")]


def test_score_drift_alerts_on_its_own_threshold():
    scores = pd.DataFrame({"target": ["churn"], "psi": [0.3]})
    assert find_alerts(Thresholds(score_psi=0.5), scores=scores) == []
    assert [a.kind for a in find_alerts(Thresholds(), scores=scores)] == ["score_drift"]


def test_auc_drop_and_ece_rise_alert_beyond_their_thresholds():
    assert find_alerts(Thresholds(), realized=realized()) == [], "a 0.01 drop is within 0.05"
    dropped = find_alerts(Thresholds(), realized=realized(roc_auc=0.68, ece=0.09))
    assert [a.kind for a in dropped] == ["auc_drop", "ece_rise"]
    assert dropped[0].value == pytest.approx(0.08)


def test_too_few_positives_never_alert():
    assert (
        find_alerts(Thresholds(min_positives=50), realized=realized(roc_auc=0.5, positives=10.0))
        == []
    )


def test_ranked_below_control_alerts_only_when_the_interval_excludes_zero():
    def comparison(low: float, high: float) -> dict:
        return {
            "difference": {"conversion": {"difference": (low + high) / 2, "low": low, "high": high}}
        }

    assert [a.kind for a in find_alerts(Thresholds(), control=comparison(-0.3, -0.1))] == [
        "ranked_below_control"
    ]
    assert find_alerts(Thresholds(), control=comparison(-0.3, 0.1)) == []
    assert find_alerts(Thresholds(control_alert=False), control=comparison(-0.3, -0.1)) == []


# -- the rule table ----------------------------------------------------------------------------


def effect(effect: float, low: float, high: float, action: str = "Credit Card") -> dict:
    """An ``offer_effects`` row: offering ``action`` against its holdout."""
    return {
        "action": action,
        "kind": "cross_sell",
        "offered_n": 1900,
        "holdout_n": 100,
        "effect": effect,
        "effect_low": low,
        "effect_high": high,
    }


def control_with_high(high: float) -> dict:
    return {
        "difference": {"conversion": {"difference": high - 0.1, "low": high - 0.2, "high": high}}
    }


# kind -> the find_alerts arguments whose figure, as the rule measures it, is ``value``
CASES = {
    "feature_drift": lambda value: {
        "features": pd.DataFrame({"feature": ["spend"], "psi": [value]})
    },
    "score_drift": lambda value: {"scores": pd.DataFrame({"target": ["churn"], "psi": [value]})},
    "auc_drop": lambda value: {"realized": realized(roc_auc=0.76 - value)},
    "ece_rise": lambda value: {"realized": realized(ece=0.01 + value)},
    "ranked_below_control": lambda value: {"control": control_with_high(value)},
    "offer_harms": lambda value: {"effects": [effect(value - 0.1, value - 0.2, value)]},
}


def test_every_rule_of_the_table_has_a_case():
    assert set(CASES) == {rule.kind for rule in RULES}, "a new rule needs a case here"


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.kind)
def test_each_rule_fires_beyond_its_threshold_and_not_within(rule):
    # Given the rule's figure 0.01 beyond its threshold, and 0.01 within it
    thresholds = Thresholds()
    threshold = (
        getattr(thresholds, rule.threshold) if isinstance(rule.threshold, str) else rule.threshold
    )
    step = 0.01 if rule.comparison == "above" else -0.01
    beyond, within = CASES[rule.kind](threshold + step), CASES[rule.kind](threshold - step)
    # When the alerts are found
    fired = [a for a in find_alerts(thresholds, **beyond) if a.kind == rule.kind]
    quiet = [a for a in find_alerts(thresholds, **within) if a.kind == rule.kind]
    # Then only the figure beyond the threshold alerts, with the threshold it crossed
    assert len(fired) == 1, f"{rule.kind}: {threshold + step} is beyond {threshold}"
    assert fired[0].threshold == threshold and fired[0].message
    assert quiet == [], f"{rule.kind}: {threshold - step} is within {threshold}"


def test_messages_name_the_subject_the_figure_and_the_threshold():
    alerts = find_alerts(
        Thresholds(),
        features=pd.DataFrame({"feature": ["spend"], "psi": [0.35]}),
        scores=pd.DataFrame({"target": ["churn"], "psi": [0.3]}),
        realized=realized(roc_auc=0.68, ece=0.09),
        control={"difference": {"conversion": {"difference": -0.2, "low": -0.3, "high": -0.1}}},
    )
    assert [a.message for a in alerts] == [
        "feature spend drifted: PSI 0.350 > 0.2",
        "churn scores drifted: PSI 0.300 > 0.2",
        "churn as of 2026-01-01: ROC AUC 0.680, 0.080 below training (0.760; allowed drop 0.05)",
        "churn as of 2026-01-01: calibration error 0.090, 0.080 above training "
        "(0.010; allowed rise 0.05)",
        "ranked suggestions convert worse than the control group: -0.200 "
        "(95% interval -0.300 to -0.100)",
    ], "alerts come in the order of the report's sections"
    assert alerts[-1].value == pytest.approx(-0.2), "the difference is reported, not the bound"


def test_realized_alerts_come_date_by_date():
    rows = pd.concat(
        [realized(as_of="2026-01-01", roc_auc=0.6, ece=0.2), realized(as_of="2026-02-01", ece=0.2)]
    )
    alerts = find_alerts(Thresholds(), realized=rows)
    assert [(a.kind, a.subject) for a in alerts] == [
        ("auc_drop", "churn as of 2026-01-01"),
        ("ece_rise", "churn as of 2026-01-01"),
        ("ece_rise", "churn as of 2026-02-01"),
    ]


def test_an_offer_whose_effect_lies_wholly_below_zero_alerts_naming_it():
    # Given one action whose effect interval lies below 0, one spanning 0 and one without
    # an interval yet
    effects = [
        effect(-0.12, -0.2, -0.04),
        effect(-0.05, -0.15, 0.05, action="upgrade"),
        effect(-0.3, float("nan"), float("nan"), action="retention"),
    ]
    # When the alerts are found
    alerts = find_alerts(Thresholds(), effects=effects)
    # Then only the first alerts, naming the action, its effect and interval
    assert [(a.kind, a.subject) for a in alerts] == [("offer_harms", "Credit Card")]
    assert alerts[0].message == (
        "offering Credit Card harms: its outcome rate is -0.120 against its holdout "
        "(95% interval -0.200 to -0.040; 1900 offered, 100 held out)"
    )
    assert alerts[0].value == pytest.approx(-0.12), "the effect is reported, not the bound"
    assert find_alerts(Thresholds(harm_alert=False), effects=effects) == [], "switched off"


def test_harm_measured_from_outcome_rows_alerts_and_no_effect_does_not():
    # Given a savings offer that lowers the outcome rate from 40% held out to 20% offered,
    # and an upgrade offer that changes nothing, as outcome rows
    rows = effect_rows(
        [
            ("savings", "offered", False, 200, 1000),
            ("savings", "holdout", False, 40, 100),
            ("upgrade", "offered", False, 300, 1000),
            ("upgrade", "holdout", False, 30, 100),
        ]
    )
    # When the report's effects are measured and the alerts found
    alerts = find_alerts(Thresholds(), effects=outcome_effects(rows)["by_action"])
    # Then the harmful offer alerts, with the effect measured
    assert [(a.kind, a.subject) for a in alerts] == [("offer_harms", "savings")]
    assert alerts[0].value == pytest.approx(-0.2)
