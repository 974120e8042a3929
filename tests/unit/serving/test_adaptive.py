"""Learning from answers: the estimator, and what the policy does with it (ratio, exploration,
new actions, logged propensities), on hand-made customers."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from serving.adaptive import EMPTY, AdaptiveState, Cell
from serving.policy import Context, PolicyConfig, decision_mode, rank_actions
from serving.policy_config import AdaptiveConfig
from tests.unit.serving.test_policy import KNOWN, NOW, PRODUCTS, make_customer

SETTINGS = AdaptiveConfig(prior_strength=50, min_answers=100, exploration_share=0.0)
# Greedy only, no holdouts, no channel weights: priority = expected value x ratio.
# Expected values: retention 60, upgrade 50, credit_card 45, savings 20, mortgage 5.
CONFIG = PolicyConfig(
    control_share=0.0,
    holdout_shares={},
    product_margin={"credit_card": 150.0},
    channel_weights={},
    adaptive=SETTINGS,
)


def configure(**adaptive) -> PolicyConfig:
    return CONFIG.model_copy(update={"adaptive": SETTINGS.model_copy(update=adaptive)})


def rank(config=CONFIG, state=EMPTY, decision_id="d-1", customer=None, length=3):
    return rank_actions(
        customer or make_customer(),
        Context("phone"),
        config,
        {},
        NOW,
        length,
        decision_id,
        PRODUCTS,
        KNOWN,
        state,
    )


def learned(action: str, answers: int, accepted: int, expected: float, tier="silver"):
    return AdaptiveState({(action, tier): Cell(answers, accepted, expected)})


def test_the_ratio_is_the_gamma_posterior_mean_once_the_cell_is_mature():
    # Given a cell of 200 answers, 10 accepted where the model expected 40
    state = learned("savings", 200, 10, 40.0)
    # Then its ratio is (50 + 10) / (50 + 40), and 1 for a cell below 100 answers
    assert state.ratio("savings", "silver", SETTINGS) == pytest.approx(60 / 90)
    young = learned("savings", 99, 0, 40.0)
    assert young.ratio("savings", "silver", SETTINGS) == 1.0, "below min_answers: trust q"
    assert state.ratio("savings", "gold", SETTINGS) == 1.0, "another tier is another cell"


def test_skips_and_not_shown_never_move_a_cell():
    cell = Cell(3, 1, 0.9)
    assert cell.add("skipped", 0.4) == cell, "a skip is the agent's call, not a decline"
    assert cell.add("not_shown", 0.4) == cell, "never reached the customer"
    assert cell.add("declined", 0.4) == Cell(4, 1, pytest.approx(1.3))
    assert cell.add("accepted", 0.4) == Cell(4, 2, pytest.approx(1.3))


def test_explored_decisions_draw_from_the_posterior_and_repeat_by_decision_id():
    # Given a mature cell, and every decision explored
    state = learned("retention", 400, 20, 80.0)
    assert state.ratio_posterior("retention", "silver", SETTINGS) == (70, 130)
    config = configure(exploration_share=0.5, min_answers=0)
    ids = [f"x{i}" for i in range(1000)]
    explored = [r for r in (rank(config, state, i, length=10) for i in ids) if r.mode == "explore"]
    ratios = [next(s.ratio for s in r.suggestions if s.action == "retention") for r in explored]
    # Then retention's ratio is a draw from Gamma(70, 130), the same on a second call
    assert sum(ratios) / len(ratios) == pytest.approx(70 / 130, rel=0.02)
    again = [rank(config, state, r_id) for r_id in ids[:50]]
    assert [r.suggestions for r in again] == [rank(config, state, i).suggestions for i in ids[:50]]


def test_a_mature_cell_of_declines_moves_an_action_down_the_greedy_list():
    # Given retention (ev 60) first and upgrade (50) second, and silver customers who
    # accept retention at a third of the rate its model predicts
    assert [s.action for s in rank().suggestions] == ["retention", "upgrade", "credit_card"]
    state = learned("retention", 300, 20, 60.0)
    ratio = (50 + 20) / (50 + 60)
    # Then retention's priority is 60 x 0.64 = 38 and upgrade and the credit card pass it
    got = rank(state=state).suggestions
    assert [s.action for s in got] == ["upgrade", "credit_card", "retention"]
    assert got[2].priority == pytest.approx(60 * ratio) and got[2].ratio == pytest.approx(ratio)
    # And a gold customer's cell is not the silver one's
    gold = rank(state=state, customer=make_customer(tier="gold")).suggestions
    assert gold[0].action == "retention"


def test_modes_take_their_shares_from_one_draw_and_never_overlap():
    config = PolicyConfig(control_share=0.1, adaptive=AdaptiveConfig(exploration_share=0.2))
    modes = Counter(decision_mode(f"id-{i}", config) for i in range(20_000))
    assert modes["control"] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert modes["explore"] / 20_000 == pytest.approx(0.2, abs=0.01)
    assert modes["greedy"] / 20_000 == pytest.approx(0.7, abs=0.01)


def test_exploration_reorders_but_never_passes_the_churn_gate_or_a_pause():
    config = configure(exploration_share=0.5)
    orders = {
        tuple(s.action for s in rank(config, decision_id=f"e{i}").suggestions) for i in range(200)
    }
    assert len(orders) > 1, "explored decisions try other orders"
    # A high-risk customer: sales offers yield to retention in every mode
    risky = make_customer(probabilities={**make_customer().probabilities, "churn": 0.45})
    for i in range(200):
        r = rank(config, decision_id=f"e{i}", customer=risky)
        assert [s.action for s in r.suggestions] == ["retention"], r.mode
    # A paused action stays paused when explored
    declines = {"upgrade": [NOW.replace(day=1), NOW.replace(day=5)]}
    for i in range(100):
        r = rank_actions(
            make_customer(), Context("phone"), config, declines, NOW, 5, f"e{i}", PRODUCTS, KNOWN
        )
        assert "upgrade" not in [s.action for s in r.suggestions]


def test_a_new_action_starts_optimistic_and_falls_with_declines():
    # Given insurance, which has no model, listed as a new action
    config = CONFIG.model_copy(
        update={"adaptive": SETTINGS.model_copy(update={"new_actions": ("insurance",)})}
    )
    fresh = {s.action: s for s in rank(config, length=10).suggestions}
    # Then it is offered at the flat prior's mean 0.5 x the default margin 100
    assert fresh["insurance"].probability == pytest.approx(0.5)
    assert fresh["insurance"].expected_value == pytest.approx(50)
    # And after 60 declines in silver its acceptance 1/62 is below the minimum probability
    state = learned("insurance", 60, 0, 30.0)
    later = rank(config, state, length=10)
    assert "insurance" not in [s.action for s in later.suggestions]
    assert any(
        n.action == "insurance" and n.reason == "below_min_probability" for n in later.not_shown
    )


@pytest.mark.parametrize("length", [1, 3, 5])
def test_the_propensities_of_a_rank_sum_to_one(length):
    # Given every mode in use and a learned cell, without holdouts
    config = CONFIG.model_copy(
        update={
            "control_share": 0.2,
            "adaptive": SETTINGS.model_copy(update={"exploration_share": 0.3}),
        }
    )
    state = learned("upgrade", 150, 30, 20.0)
    for i in range(20):
        r = rank(config, state, decision_id=f"p{i}", length=length)
        for k in range(1, length + 1):
            total = sum(p for (_, rank_), p in r.propensities.items() if rank_ == k)
            assert total == pytest.approx(1.0), f"rank {k} of decision p{i}"
        for s in r.suggestions:
            assert s.propensity == r.propensities[s.action, s.rank] > 0


def test_control_propensities_with_holdouts_match_random_orders():
    # Given a customer held out of one of their five actions, and half the decisions control
    config = PolicyConfig(
        control_share=0.5,
        holdout_shares={"cross_sell": 0.5},
        product_margin={"credit_card": 150.0},
        channel_weights={},
        adaptive=SETTINGS,
    )
    customer = next(
        c
        for c in (make_customer(customer_id=f"C{i}") for i in range(100))
        if sum(n.reason == "holdout" for n in rank(config, customer=c, length=5).not_shown) == 1
    )
    first = rank(config, customer=customer, decision_id="greedy-one")
    # When many control decisions are made for them
    seen: Counter = Counter()
    n = 0
    for i in itertools.count():
        r = rank(config, customer=customer, decision_id=f"c{i}")
        if r.mode != "control":
            continue
        n += 1
        seen.update((s.action, s.rank) for s in r.suggestions)
        if n == 6000:
            break
    # Then the control part of each logged propensity is the share seen there
    ranked = rank(config.model_copy(update={"control_share": 0.0}), customer=customer)
    greedy = {(s.action, s.rank) for s in ranked.suggestions}
    for key, p in first.propensities.items():
        control = (p - 0.5 * (key in greedy)) / 0.5
        assert seen[key] / n == pytest.approx(control, abs=0.02), key
