"""Monitoring figures on constructed data: drift, performance, pyramid and agent feedback."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from models.profile import profile_frame
from monitoring.figures import (
    control_comparison,
    difference_interval,
    feature_drift,
    feedback_counts,
    migration_summary,
    performance,
    score_drift,
    suggestion_rows,
    tier_migrations,
    tier_pyramid,
    top_share,
    value_curve,
    wilson_interval,
)
from serving.decisions import DecisionRecord, FeedbackRecord

AS_OF = dt.date(2026, 3, 1)
AT = dt.datetime(2026, 3, 2, 10, 0)


# -- drift -------------------------------------------------------------------------------------


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and current features: ``spend`` shifted, ``age`` and ``region`` untouched."""
    rng = np.random.default_rng(1)
    n = 4000
    training = pd.DataFrame(
        {
            "spend": rng.gamma(2.0, 50.0, n),
            "age": rng.normal(45, 12, n),
            "region": rng.choice(["north", "south", "west"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    now = pd.DataFrame(
        {
            "spend": rng.gamma(2.0, 50.0, n) * 1.8,
            "age": rng.normal(45, 12, n),
            "region": rng.choice(["north", "south", "west"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    return training, now


def test_shifted_feature_has_high_psi_and_untouched_ones_low():
    # Given a training profile and current features where only spend grew by 80%
    training, now = frames()
    profiles = profile_frame(
        training, {"spend": "numeric", "age": "numeric", "region": "categorical"}
    )
    # When the drift is computed
    drift = feature_drift(profiles, now).set_index("feature")["psi"]
    # Then the shifted feature stands out and the others are stable
    assert drift["spend"] > 0.2, f"spend was shifted, PSI {drift['spend']:.3f}"
    assert drift["age"] < 0.05, f"age was not touched, PSI {drift['age']:.3f}"
    assert drift["region"] < 0.05, f"region was not touched, PSI {drift['region']:.3f}"


def test_feature_drift_lists_the_worst_first_and_skips_absent_features():
    training, now = frames()
    profiles = profile_frame(training, {"spend": "numeric", "age": "numeric"})
    profiles["gone"] = profiles["age"]
    drift = feature_drift(profiles, now)
    assert list(drift["feature"]) == ["spend", "age"], (
        "worst first; a feature not computed now is left out"
    )


def test_score_drift_is_low_for_the_same_scores_and_high_for_inflated_ones():
    rng = np.random.default_rng(2)
    training = rng.beta(1, 20, 3000)
    same = score_drift(training, rng.beta(1, 20, 3000))
    inflated = score_drift(training, np.append(rng.beta(1, 8, 3000), np.nan))
    assert same["psi"] < 0.05, same
    assert inflated["psi"] > 0.2, inflated
    assert inflated["rows_now"] == 3000, "missing scores (products held) are left out"


# -- realized performance ----------------------------------------------------------------------


def test_performance_of_a_perfect_ranking():
    y = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, np.nan])
    p = np.array([0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.9, 0.9, 0.5])
    figures = performance(y, p, bins=5)
    assert figures["roc_auc"] == pytest.approx(1.0)
    assert figures["rows"] == 10 and figures["positives"] == 2, "a missing label is left out"
    # the top fifth holds both positives: 1.0 observed over a 0.2 base rate
    assert figures["lift_by_decile"] == pytest.approx([5.0, 0, 0, 0, 0])
    assert figures["calibration"]["observed"] == pytest.approx([0, 0, 0, 0, 1.0])


# -- value pyramid -----------------------------------------------------------------------------


def test_tier_pyramid_counts_customers_and_positive_value_highest_first():
    tiers = pd.DataFrame(
        {"tier": ["low", "low", "low", "high"], "value": [10.0, 30.0, -20.0, 160.0]}
    )
    pyramid = tier_pyramid(tiers, ["low", "mid", "high"]).set_index("tier")
    assert list(pyramid.index) == ["high", "mid", "low"]
    assert pyramid.loc["low", "customers"] == 3 and pyramid.loc["mid", "customers"] == 0
    assert pyramid.loc["high", "share_value"] == pytest.approx(0.8), "160 of 200 positive value"
    assert pyramid.loc["low", "share_customers"] == pytest.approx(0.75)


def test_value_curve_and_top_share():
    values = np.array([80.0, 5.0, 5.0, 5.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    curve = value_curve(values, points=10)
    assert curve.share_value.iloc[0] == 0 and curve.share_value.iloc[-1] == pytest.approx(1.0)
    assert curve.share_value.iloc[1] == pytest.approx(0.8), "the top 10% (one customer) hold 80%"
    assert top_share(values, 0.2) == pytest.approx(0.85)


def test_tier_migrations_count_moves_new_and_left():
    before = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "d"], "tier": ["low", "low", "high", "high"]}
    )
    after = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "e"], "tier": ["high", "low", "high", "low"]}
    )
    moves = tier_migrations(before, after, ["low", "high"])
    assert moves.loc["low", "high"] == 1, "a moved up"
    assert moves.loc["low", "low"] == 1 and moves.loc["high", "high"] == 1
    assert moves.loc["high", "(left)"] == 1, "d left"
    assert moves.loc["(new)", "low"] == 1, "e is new"
    assert int(moves.to_numpy().sum()) == 5


def test_migration_summary_counts_moves_up_down_and_stays():
    before = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "d"], "tier": ["low", "low", "high", "high"]}
    )
    after = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "e"], "tier": ["high", "low", "low", "low"]}
    )
    summary = migration_summary(tier_migrations(before, after, ["low", "high"]), ["low", "high"])
    assert (summary["up"], summary["down"], summary["stayed"]) == (1, 1, 1), (
        "a up, c down, b stayed"
    )
    assert (summary["new"], summary["left"]) == (1, 1), "e is new, d left"
    assert summary["matrix"]["low"]["high"] == 1, "the matrix reads from tier -> to tier"


# -- agent feedback ----------------------------------------------------------------------------


def suggestion(sid: str, kind: str, action: str, rank: int = 1) -> dict:
    return {
        "suggestion_id": sid,
        "rank": rank,
        "kind": kind,
        "action": action,
        "product": action if kind == "cross_sell" else None,
        "probability": 0.1,
        "expected_value": 10.0,
        "priority": 10.0,
    }


def decision(did: str, customer: str, agent: str, control: bool, *suggestions) -> DecisionRecord:
    return DecisionRecord(
        decision_id=did,
        customer_id=customer,
        created_at=AT,
        context={
            "channel": "phone",
            "call_reason": None,
            "queue_pressure": "normal",
            "agent_id": agent,
        },
        probabilities={},
        suggestions=list(suggestions),
        control=control,
        model_versions={},
        as_of=AS_OF,
    )


def answer(did: str, sid: str, response: str, agent: str = "x") -> FeedbackRecord:
    return FeedbackRecord(did, sid, response, agent, AT)


def hand_built_log() -> tuple[list[DecisionRecord], list[FeedbackRecord]]:
    """Three ranked decisions and one control decision; seven suggestions."""
    decisions = [
        decision("d1", "A", "ann", False, suggestion("s1", "retention", "retention"),
                 suggestion("s2", "cross_sell", "savings", 2)),
        decision("d2", "B", "bob", False, suggestion("s3", "upgrade", "upgrade"),
                 suggestion("s4", "cross_sell", "credit_card", 2)),
        decision("d3", "C", "ann", False, suggestion("s5", "cross_sell", "savings")),
        decision("d4", "A", "bob", True, suggestion("s6", "cross_sell", "savings"),
                 suggestion("s7", "retention", "retention", 2)),
    ]  # fmt: skip
    feedback = [
        answer("d1", "s1", "accepted"),
        answer("d1", "s2", "declined"),
        answer("d2", "s3", "skipped"),
        answer("d2", "s4", "not_shown"),
        answer("d3", "s5", "accepted"),
        answer("d4", "s6", "declined"),
    ]  # s7 has no response
    return decisions, feedback


def test_suggestion_rows_join_responses_and_mark_the_unanswered():
    rows = suggestion_rows(*hand_built_log())
    assert len(rows) == 7
    responses = dict(zip(rows.suggestion_id, rows.response, strict=True))
    assert responses["s7"] == "no_response" and responses["s4"] == "not_shown"
    assert set(rows.loc[rows.control, "decision_id"]) == {"d4"}
    assert rows.set_index("suggestion_id").loc["s3", "agent_id"] == "bob", "the decision's agent"


def test_feedback_counts_by_kind_against_the_hand_count():
    by_kind = feedback_counts(suggestion_rows(*hand_built_log()), "kind").set_index("kind")
    cross = by_kind.loc["cross_sell"]
    # s2 declined, s4 not shown, s5 accepted, s6 declined
    assert (cross.listed, cross.shown, cross.accepted, cross.declined, cross.not_shown) == (
        4,
        3,
        1,
        2,
        1,
    )
    assert cross.acceptance == pytest.approx(1 / 3) and cross.conversion == pytest.approx(1 / 3)
    retention = by_kind.loc["retention"]  # s1 accepted, s7 no response
    assert (retention.shown, retention.accepted, retention.no_response) == (2, 1, 1)
    assert retention.acceptance == pytest.approx(1.0) and retention.conversion == pytest.approx(0.5)
    upgrade = by_kind.loc["upgrade"]  # s3 skipped: nothing put to the customer
    assert upgrade.skipped == 1 and math.isnan(upgrade.acceptance), "a skip is not a decline"
    assert upgrade.conversion == 0.0


def test_feedback_counts_by_agent_and_product():
    rows = suggestion_rows(*hand_built_log())
    by_agent = feedback_counts(rows, "agent_id").set_index("agent_id")
    assert by_agent.loc["ann", "accepted"] == 2 and by_agent.loc["ann", "listed"] == 3
    assert by_agent.loc["bob", "listed"] == 4 and by_agent.loc["bob", "accepted"] == 0
    by_product = feedback_counts(rows, "product").set_index("product")
    assert by_product.loc["savings", "listed"] == 3 and by_product.loc["savings", "accepted"] == 1
    assert by_product.loc["-", "listed"] == 3, "retention and upgrade have no product"


def test_ranked_against_control_with_wilson_intervals():
    result = control_comparison(suggestion_rows(*hand_built_log()))
    ranked, control = result["groups"]["ranked"], result["groups"]["control"]
    # ranked: s1..s5 listed, s4 not shown -> 4 shown, 2 accepted, 1 declined
    assert (ranked["decisions"], ranked["shown"], ranked["accepted"]) == (3, 4, 2)
    assert ranked["conversion"] == pytest.approx(0.5)
    assert ranked["acceptance"] == pytest.approx(2 / 3)
    assert (ranked["conversion_low"], ranked["conversion_high"]) == pytest.approx(
        (0.150, 0.850), abs=5e-4
    )
    # control: s6 declined, s7 unanswered -> 2 shown, none accepted
    assert (control["shown"], control["accepted"], control["conversion"]) == (2, 0, 0.0)
    diff = result["difference"]["conversion"]
    assert diff["difference"] == pytest.approx(0.5)
    assert (diff["low"], diff["high"]) == pytest.approx(
        (0.5 - 1.96 * 0.25, 0.5 + 1.96 * 0.25), abs=1e-3
    )


def test_wilson_interval_known_values():
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    assert all(math.isnan(v) for v in difference_interval(1, 2, 0, 0))


def test_empty_log_gives_empty_counts():
    rows = suggestion_rows([], [])
    assert rows.empty and feedback_counts(rows, "kind").empty
    assert control_comparison(rows)["groups"]["ranked"]["shown"] == 0
