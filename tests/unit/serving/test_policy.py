"""The next-best-action policy: one test per rule, on hand-made customers."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from serving.policy import (
    Context,
    Customer,
    PolicyConfig,
    Ranking,
    candidates,
    collect_declines,
    is_control,
    paused,
    rank_actions,
    risk_band,
)

NOW = datetime(2026, 3, 13, 12, 0, tzinfo=UTC)
PRODUCTS = {
    "cross_sell_savings": "savings",
    "cross_sell_credit_card": "credit_card",
    "cross_sell_mortgage": "mortgage",
}
# No control decisions unless a test asks: the model ranking is what most tests check.
CONFIG = PolicyConfig(control_share=0.0, product_margin={"credit_card": 150.0})


def configure(**changes) -> PolicyConfig:
    """CONFIG with changes, validated as at service start-up."""
    return PolicyConfig.model_validate({**CONFIG.model_dump(), **changes})


def make_customer(**changes) -> Customer:
    """Medium risk, value 1000, holds checking. Expected values with CONFIG:
    retention 0.2 x 1000 x 0.3 = 60, upgrade 0.1 x 500 = 50,
    credit_card 0.3 x 150 = 45, savings 0.2 x 100 = 20, mortgage 0.05 x 100 = 5."""
    base = {
        "customer_id": "C1",
        "tier": "silver",
        "tier_rank": 2,
        "next_tier": "gold",
        "value": 1000.0,
        "probabilities": {
            "churn": 0.2,
            "upgrade": 0.1,
            "cross_sell_savings": 0.2,
            "cross_sell_credit_card": 0.3,
            "cross_sell_mortgage": 0.05,
        },
        "held": frozenset({"checking"}),
        "profile": {"age": 40},
        "gap_to_next_tier": 500.0,
    }
    return Customer(**{**base, **changes})


def with_p(**probabilities) -> Customer:
    c = make_customer()
    return replace(c, probabilities={**c.probabilities, **probabilities})


def rank(
    customer: Customer,
    context: Context | None = None,
    config: PolicyConfig = CONFIG,
    declines=None,
    max_suggestions: int = 10,
    decision_id: str = "d-1",
) -> Ranking:
    return rank_actions(
        customer,
        context or Context("phone"),
        config,
        declines or {},
        NOW,
        max_suggestions,
        decision_id,
        PRODUCTS,
    )


def actions(ranking: Ranking) -> list[str]:
    return [s.action for s in ranking.suggestions]


# -- eligibility -------------------------------------------------------------------------------


def test_held_product_is_never_offered():
    customer = replace(with_p(cross_sell_savings=0.9), held=frozenset({"checking", "savings"}))
    offered = [c.action for c in candidates(customer, CONFIG, PRODUCTS)]
    assert "savings" not in offered, f"savings is held but offered: {offered}"


@pytest.mark.parametrize(
    ("rule", "changes"),
    [
        ({"excluded": True}, {}),
        ({"min_tier_rank": 3}, {}),
        ({"min_tier_rank": 1}, {"tier_rank": None}),
        ({"requires_products": ["checking"]}, {"held": frozenset()}),
        ({"min_age": 18}, {"profile": {"age": 16}}),
        ({"max_age": 70}, {"profile": {"age": 75}}),
        ({"min_age": 18}, {"profile": {}}),
    ],
)
def test_product_rules_withhold_the_product(rule, changes):
    config = configure(product_rules={"credit_card": rule})
    customer = make_customer(**changes)
    offered = [c.action for c in candidates(customer, config, PRODUCTS)]
    assert "credit_card" not in offered, f"rule {rule} should withhold credit_card from {changes}"
    assert "savings" in offered, "a rule on one product must not touch the others"


def test_product_rules_that_hold_allow_the_product():
    config = PolicyConfig(
        product_rules={
            "credit_card": {
                "min_tier_rank": 2,
                "requires_products": ["checking"],
                "min_age": 18,
                "max_age": 70,
            }
        }
    )
    offered = [c.action for c in candidates(make_customer(), config, PRODUCTS)]
    assert "credit_card" in offered, f"every condition holds, yet not offered: {offered}"


def test_sales_offers_below_min_probability_are_not_worth_the_time():
    customer = with_p(cross_sell_mortgage=0.019, upgrade=0.01)
    offered = [c.action for c in candidates(customer, CONFIG, PRODUCTS)]
    assert "mortgage" not in offered and "upgrade" not in offered, offered
    assert "savings" in offered, "0.2 is above the 0.02 minimum"


def test_retention_only_at_medium_or_high_risk_and_upgrade_only_below_the_top():
    low = [c.action for c in candidates(with_p(churn=0.05), CONFIG, PRODUCTS)]
    top = [c.action for c in candidates(make_customer(next_tier=None), CONFIG, PRODUCTS)]
    assert "retention" not in low, "churn 0.05 is low risk: no retention action"
    assert "upgrade" not in top, "a customer in the top tier has nothing to upgrade to"


def test_risk_bands_cut_at_the_configured_thresholds():
    bands = [risk_band(p, CONFIG) for p in (0.0, 0.0999, 0.10, 0.2999, 0.30, 1.0, None, math.nan)]
    assert bands == ["low", "low", "medium", "medium", "high", "high", "low", "low"], bands


# -- churn gate --------------------------------------------------------------------------------


def test_high_churn_risk_drops_sales_offers_and_keeps_retention():
    ranking = rank(with_p(churn=0.45, cross_sell_credit_card=0.9))
    assert actions(ranking) == ["retention"], f"high risk: only retention, got {actions(ranking)}"
    assert ranking.risk_band == "high"


def test_medium_risk_keeps_sales_offers_next_to_retention():
    assert actions(rank(make_customer()))[0] == "retention", "retention has the top value here"
    assert len(rank(make_customer()).suggestions) == 5, "medium risk gates nothing"


# -- contact policy ----------------------------------------------------------------------------


def test_two_declines_within_thirty_days_pause_the_offer():
    declines = {"credit_card": [NOW - timedelta(days=3), NOW - timedelta(days=29)]}
    assert paused(declines["credit_card"], NOW, CONFIG), "2 declines in 30 days pause the offer"
    offered = actions(rank(make_customer(), declines=declines))
    assert "credit_card" not in offered, offered
    assert "savings" in offered, "a pause applies to the declined action only"


def test_skips_never_count_against_an_offer():
    feedback = [
        ("credit_card", "skipped", NOW - timedelta(days=1)),
        ("credit_card", "skipped", NOW - timedelta(days=2)),
        ("credit_card", "not_shown", NOW - timedelta(days=2)),
        ("credit_card", "accepted", NOW - timedelta(days=2)),
        ("credit_card", "declined", NOW - timedelta(days=2)),
    ]
    offered = actions(rank(make_customer(), declines=collect_declines(feedback)))
    assert "credit_card" in offered, "skips are the agent's call; one decline is below the limit"


def test_declines_older_than_the_window_do_not_pause():
    old = [NOW - timedelta(days=31), NOW - timedelta(days=45), NOW - timedelta(days=3)]
    assert not paused(old, NOW, CONFIG), "only one of three declines is within 30 days"
    assert not paused([NOW + timedelta(days=1)] * 2, NOW, CONFIG), "future declines: unknown yet"


# -- queue pressure ----------------------------------------------------------------------------


def test_high_pressure_gives_at_most_one_suggestion_above_the_bar():
    config = configure(high_pressure_min_expected_value=45.0, levers={"savings": 10.0})
    busy = rank(make_customer(), Context("phone", queue_pressure="high"), config)
    assert actions(busy) == ["retention"], (
        "savings ranks first (priority 200) but its EV 20 is below 45; of retention 60, "
        f"upgrade 50 and credit_card 45 only the best one is given: {actions(busy)}"
    )
    config = configure(high_pressure_min_expected_value=61.0)
    busy = rank(make_customer(), Context("phone", queue_pressure="high"), config)
    assert busy.suggestions == (), "nothing clears the bar: a busy agent gets nothing"


@pytest.mark.parametrize("pressure", ["low", "normal"])
def test_low_and_normal_pressure_allow_up_to_max_suggestions(pressure):
    ranking = rank(make_customer(), Context("phone", queue_pressure=pressure), max_suggestions=3)
    assert actions(ranking) == ["retention", "upgrade", "credit_card"], actions(ranking)


def test_max_suggestions_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="max_suggestions"):
        rank(make_customer(), max_suggestions=0)
    with pytest.raises(ValueError, match="max_suggestions"):
        rank(make_customer(), max_suggestions=11)


# -- priority ----------------------------------------------------------------------------------


def test_priority_is_propensity_times_value_times_context_weight_times_lever():
    config = configure(channel_weights={"branch": 2.0}, levers={"savings": 4.0, "upgrade": 0.5})
    ranking = rank(make_customer(), Context("branch"), config)
    values = {s.action: s.expected_value for s in ranking.suggestions}
    priorities = {s.action: s.priority for s in ranking.suggestions}
    expected = {
        "savings": (20.0, 20.0 * 2 * 4),  # 0.2 x margin 100 x branch 2 x lever 4
        "retention": (60.0, 60.0 * 2),  # 0.2 x 1000 x save rate 0.3 x 2
        "credit_card": (45.0, 45.0 * 2),  # 0.3 x margin 150 x 2
        "upgrade": (50.0, 50.0 * 2 * 0.5),  # 0.1 x gap 500 x 2 x lever 0.5
        "mortgage": (5.0, 5.0 * 2),
    }
    assert values == pytest.approx({a: v for a, (v, _) in expected.items()}), values
    assert priorities == pytest.approx({a: p for a, (_, p) in expected.items()}), priorities
    assert actions(ranking) == ["savings", "retention", "credit_card", "upgrade", "mortgage"]


def test_complaint_call_favours_retention():
    config = configure(levers={"credit_card": 1.5})  # 67.5 beats 60
    assert actions(rank(make_customer(), config=config))[0] == "credit_card"
    complaint = rank(make_customer(), Context("phone", call_reason="complaint"), config)
    top = complaint.suggestions[0]
    assert top.action == "retention", f"a complaint call puts retention first: {actions(complaint)}"
    assert top.priority == pytest.approx(60.0 * 1.5), "retention x 1.5 on a complaint call"


def test_a_lever_of_zero_switches_an_action_off():
    config = configure(levers={"retention": 0.0})
    assert "retention" not in actions(rank(make_customer(), config=config))


# -- control group -----------------------------------------------------------------------------


def test_control_group_is_about_the_configured_share_and_stable_per_id():
    n, share = 20_000, 0.05
    hits = sum(is_control(f"decision-{i}", share) for i in range(n))
    tolerance = 4 * math.sqrt(n * share * (1 - share))  # 4 binomial standard deviations
    assert abs(hits - n * share) < tolerance, (
        f"{hits} control ids of {n}, expected ~{n * share:.0f}"
    )
    assert all(
        is_control(f"decision-{i}", share) == is_control(f"decision-{i}", share) for i in range(200)
    )
    assert not any(is_control(f"decision-{i}", 0.0) for i in range(1000)), "share 0: no control"


def test_control_order_is_a_seeded_permutation_of_eligible_actions_not_the_ranking():
    config = configure(control_share=0.5)
    ids = [f"d-{i}" for i in range(200) if is_control(f"d-{i}", 0.5)][:20]
    model = actions(rank(make_customer()))
    orders = [actions(rank(make_customer(), config=config, decision_id=i)) for i in ids]
    for i, order in zip(ids, orders, strict=True):
        assert rank(make_customer(), config=config, decision_id=i).control
        assert sorted(order) == sorted(model), (
            f"control {i} must offer the eligible actions: {order}"
        )
        assert order == actions(rank(make_customer(), config=config, decision_id=i)), (
            "deterministic"
        )
    assert any(order != model for order in orders), "control orders must not follow the ranking"
    limited = rank(make_customer(), config=config, decision_id=ids[0], max_suggestions=2)
    assert len(limited.suggestions) == 2, "the same count limits apply to control decisions"


def test_control_decisions_still_respect_the_churn_gate_and_contact_policy():
    config = configure(control_share=0.5)
    control_id = next(f"d-{i}" for i in range(200) if is_control(f"d-{i}", 0.5))
    declines = {"retention": [NOW - timedelta(days=1)] * 2}
    ranking = rank(with_p(churn=0.5), config=config, declines=declines, decision_id=control_id)
    assert ranking.control and ranking.suggestions == (), "gated and paused actions stay out"


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"risk_bands": {"medium": 0.4, "high": 0.3}}, "risk_bands"),
        ({"risk_bands": {"medium": 0.0, "high": 0.3}}, "risk_bands.medium"),
        ({"risk_bands": {"medium": 0.1, "high": 1.0}}, "risk_bands.high"),
        ({"control_share": 0.6}, "control_share"),
        ({"retention_rate": 0.3}, "retention_rate"),
        ({"product_rules": {"savings": {"min_income": 1}}}, "product_rules.savings.min_income"),
        ({"call_reason_weights": {"complaint": {"refund": 2.0}}}, "call_reason_weights.complaint"),
        ({"levers": {"savings": -1.0}}, "levers.savings"),
    ],
)
def test_bad_configuration_is_rejected_naming_the_field(settings, field):
    with pytest.raises(ValidationError) as error:
        PolicyConfig.model_validate(settings)
    assert field in str(error.value), f"the message should name {field}: {error.value}"


def test_defaults_are_valid_and_documented():
    config = PolicyConfig()
    assert config.risk_bands.medium < config.risk_bands.high
    undocumented = [n for n, f in PolicyConfig.model_fields.items() if not f.description]
    assert not undocumented, f"every setting needs a description: {undocumented}"
