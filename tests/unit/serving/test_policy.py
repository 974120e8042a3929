"""The next-best-action policy: one test per rule, on hand-made customers."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from serving.policy import (
    NOT_SHOWN_REASONS,
    PRESSURES,
    Context,
    Customer,
    PolicyConfig,
    Ranking,
    action_value,
    candidates,
    collect_declines,
    decline_window,
    holdout_period,
    in_holdout,
    is_control,
    paused,
    paused_until,
    rank_actions,
    risk_band,
    upgrade_value,
)
from serving.vocabulary import AGENT_REASONS

NOW = datetime(2026, 3, 13, 12, 0, tzinfo=UTC)
PRODUCTS = {
    "cross_sell_savings": "savings",
    "cross_sell_credit_card": "credit_card",
    "cross_sell_mortgage": "mortgage",
}
# No control decisions unless a test asks: the model ranking is what most tests check; no
# channel weights either (the defaults have their own tests), so priority = expected value.
# No control group and no holdouts: the ranking itself is under test (holdouts: their own tests).
CONFIG = PolicyConfig(
    control_share=0.0,
    holdout_shares={},
    product_margin={"credit_card": 150.0},
    channel_weights={},
)
KNOWN = ("checking", "credit_card", "mortgage", "savings", "insurance")  # insurance: no model


def configure(**changes) -> PolicyConfig:
    """CONFIG with changes, validated as at service start-up."""
    return PolicyConfig.model_validate({**CONFIG.model_dump(), **changes})


def make_customer(**changes) -> Customer:
    """Medium risk, value 1000, holds checking, 500 short of the next tier's median customer.
    Expected values with CONFIG: retention 0.2 x 1000 x 0.3 = 60, upgrade 0.1 x 500 = 50,
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
    max_suggestions: int | None = 10,
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
        KNOWN,
    )


def actions(ranking: Ranking) -> list[str]:
    return [s.action for s in ranking.suggestions]


def why_not(ranking: Ranking) -> dict[str, str]:
    """Action -> reason code of every action not shown."""
    return {n.action: n.reason for n in ranking.not_shown}


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


# -- action values -----------------------------------------------------------------------------


def test_a_customer_who_already_qualifies_by_value_is_the_strongest_upgrade_case():
    # Given two customers equally likely to move up: one 500 short of the next tier's median
    # customer, one whose value of 1800 already qualifies (gap 0)
    short = make_customer(probabilities={"upgrade": 0.1})
    qualified = make_customer(probabilities={"upgrade": 0.1}, value=1800.0, gap_to_next_tier=0.0)
    # When each is ranked
    short_up, qualified_up = rank(short).suggestions[0], rank(qualified).suggestions[0]
    # Then the qualified customer is offered the upgrade, worth 0.3 x 1800, at double priority
    assert qualified_up.action == "upgrade", "gap 0 is not 'nothing to gain'"
    assert qualified_up.value == pytest.approx(540.0), "qualified_share 0.3 x value 1800"
    assert qualified_up.expected_value == pytest.approx(54.0)
    assert qualified_up.priority == pytest.approx(108.0), "qualified_weight 2 on the priority"
    assert qualified_up.priority > short_up.priority == pytest.approx(50.0)


def test_a_qualifying_upgrade_is_offered_however_unlikely_a_move_on_its_own():
    # Given a customer who qualifies by value, whom the model gives a 1% chance of moving up
    qualified = make_customer(probabilities={"upgrade": 0.01}, value=1800.0, gap_to_next_tier=0.0)
    short = make_customer(probabilities={"upgrade": 0.01})
    # Then the upgrade is still offered to them (0.01 x 540 x 2), not to one 500 short
    assert actions(rank(qualified)) == ["upgrade"], "qualifying customers are not excluded"
    assert rank(qualified).suggestions[0].priority == pytest.approx(10.8)
    assert why_not(rank(short))["upgrade"] == "below_min_probability"


def test_an_unlikely_upgrade_far_below_the_next_tier_no_longer_outranks_everything():
    # Given a 2.2%-likely upgrade with a gap of 7,474 (the demo's case) beside retention at 60
    far = with_p(upgrade=0.022)
    far = replace(far, gap_to_next_tier=7474.0)
    # When ranked; then its value is capped at 1,500: expected value 33, not 164
    ranking = rank(far)
    [up] = [s for s in ranking.suggestions if s.action == "upgrade"]
    assert up.value == pytest.approx(1500.0) and up.expected_value == pytest.approx(33.0)
    assert actions(ranking)[0] == "retention", actions(ranking)


@pytest.mark.parametrize(
    ("value", "gap", "expected"),
    [
        (1000.0, 500.0, 500.0),  # the gap to the next tier's median customer
        (1000.0, 100.0, 300.0),  # nearly there: what moving up secures, 0.3 x 1000
        (20.0, 10.0, 50.0),  # the floor
        (100.0, 9000.0, 1500.0),  # the cap
        (2000.0, 0.0, 600.0),  # already qualifies
        (1000.0, None, 300.0),  # gap unknown
    ],
)
def test_upgrade_value_is_the_extra_yearly_value_floored_and_capped(value, gap, expected):
    customer = make_customer(value=value, gap_to_next_tier=gap)
    assert upgrade_value(customer, CONFIG) == pytest.approx(expected)


def test_every_action_value_follows_its_documented_formula():
    customer = make_customer()
    assert action_value("retention", "retention", customer, CONFIG) == pytest.approx(300.0)
    assert action_value("upgrade", "upgrade", customer, CONFIG) == pytest.approx(500.0)
    assert action_value("cross_sell", "credit_card", customer, CONFIG) == pytest.approx(150.0)
    assert action_value("cross_sell", "savings", customer, CONFIG) == pytest.approx(100.0)
    for name in ("retention_save_rate", "upgrade_value", "product_margin", "default_margin"):
        assert "value" in PolicyConfig.model_fields[name].description, f"{name}: say the formula"


# -- why not shown ----------------------------------------------------------------------------


def test_every_action_considered_is_either_shown_or_explained_once():
    ranking = rank(make_customer(), max_suggestions=2)
    shown, hidden = actions(ranking), [n.action for n in ranking.not_shown]
    considered = ["retention", "upgrade", *KNOWN]
    assert sorted(shown + hidden) == sorted(considered), (shown, hidden)
    assert all(n.reason in NOT_SHOWN_REASONS and n.detail for n in ranking.not_shown)
    assert why_not(ranking) == {
        "checking": "already_held",
        "insurance": "no_model",
        "credit_card": "cut_by_limit",
        "savings": "cut_by_limit",
        "mortgage": "cut_by_limit",
    }, why_not(ranking)


@pytest.mark.parametrize(
    ("customer", "config", "context", "action", "reason", "words"),
    [
        (with_p(churn=0.05), CONFIG, None, "retention", "not_eligible", "medium or high churn"),
        (make_customer(next_tier=None), CONFIG, None, "upgrade", "not_eligible", "top tier"),
        (
            make_customer(),
            configure(product_rules={"credit_card": {"min_age": 50}}),
            None,
            "credit_card",
            "not_eligible",
            "credit_card.min_age 50",
        ),
        (
            make_customer(),
            configure(levers={"savings": 0}),
            None,
            "savings",
            "not_eligible",
            "lever",
        ),
        (
            make_customer(),
            configure(channel_weights={"chat": {"cross_sell": 0}}),
            Context("chat"),
            "savings",
            "not_eligible",
            "channel_weights chat.cross_sell",
        ),
        (
            with_p(cross_sell_mortgage=0.01),
            CONFIG,
            None,
            "mortgage",
            "below_min_probability",
            "0.0200",
        ),
        (with_p(churn=0.45), CONFIG, None, "savings", "churn_gate", "high churn risk"),
        (make_customer(), CONFIG, None, "insurance", "no_model", "no cross-sell model"),
        (make_customer(probabilities={}), CONFIG, None, "retention", "no_model", "no churn model"),
        (make_customer(probabilities={}), CONFIG, None, "upgrade", "no_model", "no upgrade model"),
        (make_customer(), CONFIG, None, "checking", "already_held", "held"),
        (
            make_customer(),
            CONFIG,
            Context("phone", queue_pressure="high"),
            "upgrade",
            "queue_pressure",
            "1 suggestion(s) at most",
        ),
        (
            make_customer(),
            configure(queue_pressure={"high": {"min_expected_value": 61}}),
            Context("phone", queue_pressure="high"),
            "retention",
            "queue_pressure",
            "below 61.00",
        ),
    ],
)
def test_each_action_not_shown_has_a_reason_code_and_a_detail(
    customer, config, context, action, reason, words
):
    ranking = rank(customer, context, config)
    [why] = [n for n in ranking.not_shown if n.action == action]
    assert (why.reason, action not in actions(ranking)) == (reason, True), why
    assert words in why.detail, f"the detail should say {words!r}: {why.detail!r}"


def test_a_pause_by_declines_says_until_when():
    # Given declines 3 and 10 days ago; the pause lasts until the older one is 30 days old
    declines = {"credit_card": [NOW - timedelta(days=3), NOW - timedelta(days=10)]}
    ranking = rank(make_customer(), declines=declines)
    [why] = [n for n in ranking.not_shown if n.action == "credit_card"]
    assert why.reason == "paused_by_declines"
    assert why.until == NOW + timedelta(days=20), why
    assert f"{why.until:%Y-%m-%d}" in why.detail, why.detail


def test_an_empty_list_always_explains_itself():
    # Given high churn risk with retention declined twice and no sales offer allowed
    declines = {"retention": [NOW - timedelta(days=1)] * 2}
    ranking = rank(with_p(churn=0.5), declines=declines)
    # Then nothing is shown, and every action considered is listed with its reason
    assert ranking.suggestions == ()
    assert why_not(ranking) == {
        "retention": "paused_by_declines",
        "upgrade": "churn_gate",
        "credit_card": "churn_gate",
        "savings": "churn_gate",
        "mortgage": "churn_gate",
        "checking": "already_held",
        "insurance": "no_model",
    }, why_not(ranking)


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


def test_the_decline_window_ends_at_the_decision_time_and_the_pause_ends_with_it():
    start, end = decline_window(NOW, CONFIG)
    assert (start, end) == (NOW - timedelta(days=30), NOW), "30 days back from the decision"
    declines = [NOW - timedelta(days=1), NOW - timedelta(days=12), NOW - timedelta(days=40)]
    until = paused_until(declines, NOW, CONFIG)
    assert until == NOW + timedelta(days=18), "until the 2nd most recent decline is 30 days old"
    assert paused(declines, until, CONFIG), "still paused at that moment"
    assert not paused(declines, until + timedelta(seconds=1), CONFIG), "and no longer after it"


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


def test_each_queue_pressure_sets_the_default_length_of_the_list():
    lengths = {
        p: len(
            rank(
                make_customer(), Context("phone", queue_pressure=p), max_suggestions=None
            ).suggestions
        )
        for p in PRESSURES
    }
    assert lengths == {"low": 5, "normal": 3, "high": 1}, lengths


def test_low_pressure_widens_the_list_with_a_lower_minimum_probability():
    customer = with_p(cross_sell_mortgage=0.015)
    low = rank(customer, Context("phone", queue_pressure="low"), max_suggestions=None)
    normal = rank(customer, Context("phone", queue_pressure="normal"), max_suggestions=10)
    assert "mortgage" in actions(low), "0.015 clears half the 0.02 minimum when the agent has time"
    assert why_not(normal)["mortgage"] == "below_min_probability"


def test_every_pressure_level_is_configured_and_documented():
    config = PolicyConfig()
    assert set(config.queue_pressure) == set(PRESSURES)
    effect = type(config.queue_pressure["low"])
    undocumented = [n for n, f in effect.model_fields.items() if not f.description]
    assert not undocumented, undocumented
    partial = PolicyConfig.model_validate({"queue_pressure": {"low": {"suggestions": 7}}})
    assert partial.queue_pressure["low"].min_probability_multiple == 0.5, "the rest stays default"
    assert partial.queue_pressure["high"] == config.queue_pressure["high"]
    earlier = PolicyConfig.model_validate({"high_pressure_min_expected_value": 100.0})
    assert earlier.queue_pressure["high"].min_expected_value == 100.0, "earlier policy files"


@pytest.mark.parametrize("pressure", ["low", "normal"])
def test_low_and_normal_pressure_allow_up_to_max_suggestions(pressure):
    ranking = rank(make_customer(), Context("phone", queue_pressure=pressure), max_suggestions=3)
    assert actions(ranking) == ["retention", "upgrade", "credit_card"], actions(ranking)
    assert why_not(ranking)["savings"] == "cut_by_limit", "asked for 3: the 4th is cut"


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
        "upgrade": (50.0, 50.0 * 2 * 0.5),  # 0.1 x gap to median 500 x 2 x lever 0.5
        "mortgage": (5.0, 5.0 * 2),
    }
    assert values == pytest.approx({a: v for a, (v, _) in expected.items()}), values
    assert priorities == pytest.approx({a: p for a, (_, p) in expected.items()}), priorities
    assert actions(ranking) == ["savings", "retention", "credit_card", "upgrade", "mortgage"]


def test_default_channel_weights_favour_what_each_channel_is_good_for():
    config = PolicyConfig(
        control_share=0.0, holdout_shares={}, product_margin={"credit_card": 150.0}
    )
    assert config.channel_weights, "channel weights are on by default"

    def priorities(channel: str) -> dict[str, float]:
        ranking = rank(make_customer(), Context(channel), config)
        return {s.action: s.priority for s in ranking.suggestions}

    phone, branch, batch = priorities("phone"), priorities("branch"), priorities("batch")
    assert phone["retention"] == pytest.approx(72.0), "phone: retention 60 x 1.2"
    assert phone["credit_card"] == pytest.approx(40.5), "phone: cross-sell 45 x 0.9"
    assert branch["credit_card"] == pytest.approx(54.0), "branch: cross-sell 45 x 1.2"
    assert batch == {s.action: s.expected_value for s in rank(make_customer()).suggestions}, (
        "the nightly file has no channel preference"
    )
    assert priorities("unknown-channel")["retention"] == pytest.approx(60.0), "unlisted: 1"
    flat = PolicyConfig.model_validate({"channel_weights": {"web": 0.5}})
    assert rank(make_customer(), Context("web"), flat).suggestions[0].priority == pytest.approx(
        30.0
    ), "one number for a channel weighs every kind"


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


def test_a_closed_customer_gets_no_sales_offer_and_says_why():
    from datetime import date

    ranking = rank(make_customer(closed_date=date(2026, 3, 1)))
    assert ranking.suggestions == ()
    reasons = {n.action: n.reason for n in ranking.not_shown}
    assert reasons["retention"] == reasons["savings"] == reasons["mortgage"] == "closed", reasons
    assert reasons["checking"] == "already_held" and reasons["insurance"] == "no_model"
    assert "closed on 2026-03-01" in next(
        n.detail for n in ranking.not_shown if n.reason == "closed"
    )


def test_a_win_back_rate_offers_a_closed_customer_a_win_back():
    from datetime import date

    config = configure(winback_rate=0.05)
    ranking = rank(make_customer(closed_date=date(2026, 3, 1)), config=config)
    assert actions(ranking) == ["win_back"]
    [offer] = ranking.suggestions
    assert offer.kind == "retention" and offer.value == 1000.0 * config.retention_save_rate
    assert offer.expected_value == offer.value * 0.05
    assert actions(rank(make_customer(), config=config)) != ["win_back"], "open: the usual list"
    gone = rank(make_customer(closed_date=date(2026, 3, 1), value=0.0), config=config)
    assert gone.suggestions[0].value == config.upgrade_value.floor, "never worth nothing"


# -- the no-offer holdouts ---------------------------------------------------------------------


def test_holdout_membership_is_stable_and_has_the_configured_share():
    members = [in_holdout(f"C{i}", "savings", "2026-03", 0.1) for i in range(20_000)]
    again = [in_holdout(f"C{i}", "savings", "2026-03", 0.1) for i in range(20_000)]
    assert members == again
    assert abs(sum(members) / 20_000 - 0.1) < 0.0065  # 3 standard errors
    assert not any(in_holdout(f"C{i}", "savings", "2026-03", 0.0) for i in range(1000))


def test_holdout_membership_lasts_the_period_and_is_drawn_anew_for_the_next():
    assert holdout_period(datetime(2026, 3, 1, tzinfo=UTC)) == "2026-03"
    assert holdout_period(datetime(2026, 3, 31, 23, 59, tzinfo=UTC)) == "2026-03"
    assert holdout_period(datetime(2026, 5, 2, tzinfo=UTC), "quarter") == "2026-Q2"
    march = {i for i in range(20_000) if in_holdout(f"C{i}", "savings", "2026-03", 0.1)}
    april = {i for i in range(20_000) if in_holdout(f"C{i}", "savings", "2026-04", 0.1)}
    upgrade = {i for i in range(20_000) if in_holdout(f"C{i}", "upgrade", "2026-03", 0.1)}
    # independent draws: about 10% of one period's members are in the next one's too
    assert 0.07 < len(march & april) / len(march) < 0.13
    assert 0.07 < len(march & upgrade) / len(march) < 0.13


def held_out_customer(action: str, share: float = 0.3) -> Customer:
    """The first customer id in ``action``'s holdout for NOW's month at ``share``."""
    period = holdout_period(NOW)
    first = next(i for i in range(1000) if in_holdout(f"C{i}", action, period, share))
    return make_customer(customer_id=f"C{first}")


def test_a_held_out_action_comes_off_the_list_is_logged_and_the_rest_move_up():
    config = configure(holdout_shares={"credit_card": 0.3})  # one action, not its kind
    customer = held_out_customer("credit_card")
    offered = rank(customer, config=CONFIG)
    ranking = rank(customer, config=config)
    assert "credit_card" in actions(offered)
    assert actions(ranking) == [a for a in actions(offered) if a != "credit_card"]
    assert [s.rank for s in ranking.suggestions] == list(range(1, len(ranking.suggestions) + 1))
    [held] = [n for n in ranking.not_shown if n.reason == "holdout"]
    assert (held.action, held.kind, held.probability) == ("credit_card", "cross_sell", 0.3)
    assert "credit_card" in ranking.eligible


def test_an_action_share_overrides_its_kind_and_unlisted_kinds_hold_none_out():
    customer = held_out_customer("credit_card", 0.5)
    config = configure(holdout_shares={"cross_sell": 0.5, "credit_card": 0.0})
    assert "credit_card" in actions(rank(customer, config=config))
    assert (
        PolicyConfig(holdout_shares={"upgrade": 0.1}).holdout_share("retention", "retention") == 0
    )
    assert PolicyConfig().holdout_share("cross_sell", "savings") == 0.05


def test_a_holdout_share_above_half_is_refused_with_its_key():
    with pytest.raises(
        ValidationError, match=r"holdout_shares must be 0\.\.0\.5; got \{'upgrade': 0\.9\}"
    ):
        PolicyConfig(holdout_shares={"upgrade": 0.9})


# -- uplift: what an offer adds, where an uplift champion says -------------------------------


def test_with_uplift_an_action_is_worth_what_the_offer_adds_less_the_contact_cost():
    # credit_card: a sure thing (likely, but the offer adds 1 point: 1.5 < the cost of 25);
    # savings: a persuadable (the offer adds 40 points: 0.4 x 100 - 25 = 15); mortgage
    # below the minimum probability, but the offer adds 50 points: 0.5 x 100 - 25 = 25.
    uplift = {"credit_card": 0.01, "savings": 0.4, "mortgage": 0.5}
    customer = make_customer(uplift=uplift)
    customer = replace(
        customer, probabilities={**customer.probabilities, "cross_sell_mortgage": 0.001}
    )
    ranking = rank(customer)
    by_action = {s.action: s for s in ranking.suggestions}
    assert actions(ranking) == ["retention", "upgrade", "mortgage", "savings"]
    assert by_action["savings"].expected_value == pytest.approx(15.0)
    assert by_action["savings"].uplift == 0.4 and by_action["retention"].uplift is None
    assert why_not(ranking)["credit_card"] == "not_eligible"


def test_an_offer_predicted_to_harm_is_not_made_and_the_agent_is_told_why():
    ranking = rank(make_customer(uplift={"retention": -0.05}))
    assert "retention" not in actions(ranking)
    [harm] = [n for n in ranking.not_shown if n.action == "retention"]
    assert harm.reason == "predicted_harm" and harm.uplift == -0.05
    assert "lower the chance of its outcome by 5.0%" in harm.detail
    assert "predicted_harm" in AGENT_REASONS
