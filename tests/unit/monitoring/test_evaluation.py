"""Off-policy evaluation on hand-made decision logs whose true values are known."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace

import pytest

from monitoring.evaluation import evaluate, evaluation_table
from serving.decisions import DecisionRecord, FeedbackRecord
from serving.policy import Context, Customer, PolicyConfig, rank_actions
from serving.replay import policy_inputs

T0 = dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.UTC)
PRODUCTS = {"cross_sell_card": "card", "cross_sell_savings": "savings"}
# Deterministic and without holdouts: a candidate's slate is known from its settings.
POLICY = PolicyConfig(holdout_shares={}, control_share=0.0, adaptive={"exploration_share": 0.0})
NO_CARD = POLICY.model_copy(update={"levers": {"card": 0.0}})


def customer(customer_id: str) -> Customer:
    """A silver customer at low churn risk with no upgrade model: card and savings only."""
    return Customer(customer_id, "silver", 1, "gold", 1_000.0, {}, frozenset({"checking"}))


def decision(
    n: int,
    shown: list[tuple[str, float]],
    probabilities: dict[str, float] | None = None,
    max_suggestions: int | None = 1,
    **changes,
) -> DecisionRecord:
    """Decision ``d{n}`` of customer ``C{n}`` that showed ``(action, propensity)`` in order."""
    probabilities = probabilities or {
        "churn": 0.05,
        "cross_sell_card": 0.3,
        "cross_sell_savings": 0.2,
    }
    values = {
        "decision_id": f"d{n}",
        "customer_id": f"C{n}",
        "created_at": T0 + dt.timedelta(minutes=n),
        "context": {"channel": "batch", "queue_pressure": "normal", "tier": "silver"},
        "probabilities": probabilities,
        "suggestions": [
            {
                "suggestion_id": f"d{n}-{action}",
                "rank": rank,
                "kind": "cross_sell",
                "action": action,
                "product": action,
                "probability": probabilities[f"cross_sell_{action}"],
                "value": 100.0,
                "expected_value": 100.0 * probabilities[f"cross_sell_{action}"],
                "propensity": propensity,
            }
            for rank, (action, propensity) in enumerate(shown, start=1)
        ],
        "control": False,
        "model_versions": {},
        "inputs": policy_inputs(
            customer(f"C{n}"), PRODUCTS, ("card", "checking", "savings"), max_suggestions
        ),
    }
    return DecisionRecord(**{**values, **changes})


def answer(d: DecisionRecord, action: str, response: str, at: dt.datetime | None = None):
    return FeedbackRecord(
        d.decision_id,
        f"{d.decision_id}-{action}",
        response,
        "a1",
        at or d.created_at + dt.timedelta(seconds=30),
        d.customer_id,
        action,
        "cross_sell",
    )


def fifty_fifty(card_decisions: int = 100, savings_decisions: int = 100):
    """A logging policy that shows card or savings (one suggestion) with probability 1/2
    each; 30% of card suggestions and 20% of savings ones are accepted, the rest declined
    or skipped. True acceptances per decision: card always 0.3, savings always 0.2."""
    decisions, feedback = [], []
    for n in range(card_decisions + savings_decisions):
        action, rate = ("card", 0.3) if n < card_decisions else ("savings", 0.2)
        d = decision(n, [(action, 0.5)])
        decisions.append(d)
        index = n if action == "card" else n - card_decisions
        accepted = index % 10 < rate * 10
        feedback.append(
            answer(d, action, "accepted" if accepted else ("skipped", "declined")[n % 2])
        )
    return decisions, feedback


def figure(result: dict, estimator: str, reward: str = "accepted") -> float:
    return result["estimates"][estimator][reward]["estimate"]


def test_a_candidate_equal_to_a_deterministic_logging_policy_estimates_its_observed_value():
    # Given a log made by the greedy policy itself (every propensity 1), three suggestions
    # each, with seeded random probabilities and answers
    rng = random.Random(3)
    decisions, feedback = [], []
    for n in range(150):
        p = {"churn": 0.05, "cross_sell_card": rng.uniform(0.05, 0.5)}
        p["cross_sell_savings"] = rng.uniform(0.05, 0.5)
        at = T0 + dt.timedelta(minutes=n)
        ranking = rank_actions(
            replace(customer(f"C{n}"), probabilities=p),
            Context("batch"),
            POLICY,
            {},
            at,
            3,
            f"d{n}",
            PRODUCTS,
        )
        d = decision(n, [(s.action, 1.0) for s in ranking.suggestions], p, max_suggestions=3)
        decisions.append(d)
        feedback += [
            answer(d, s["action"], "accepted" if rng.random() < 0.3 else "declined")
            for s in d.suggestions
        ]
    # When the same policy is evaluated
    result = evaluate(decisions, feedback, POLICY, replicates=50)
    # Then every estimator gives exactly what was observed
    observed = figure(result, "current")
    assert observed > 0, "the log has acceptances"
    for estimator in ("ips", "snips", "dr"):
        for reward in ("accepted", "value"):
            assert figure(result, estimator, reward) == pytest.approx(
                figure(result, "current", reward)
            ), f"{estimator} {reward}: every weight is 1, so the estimate is the observed mean"


def test_each_estimator_recovers_the_true_value_of_two_candidates():
    # Given the fifty-fifty log, whose truth is known per candidate
    decisions, feedback = fifty_fifty()
    # When the card-first policy and one without card are evaluated
    card_first = evaluate(decisions, feedback, POLICY, replicates=50)
    savings_only = evaluate(decisions, feedback, NO_CARD, replicates=50)
    # Then IPS, SNIPS and DR give their true acceptances and values
    for estimator in ("ips", "snips", "dr"):
        assert figure(card_first, estimator) == pytest.approx(0.3), estimator
        assert figure(card_first, estimator, "value") == pytest.approx(30.0), estimator
        assert figure(savings_only, estimator) == pytest.approx(0.2), estimator
    assert figure(card_first, "current") == pytest.approx(0.25), "the logging policy's mix"
    interval = card_first["estimates"]["ips"]["accepted"]
    assert interval["low"] < 0.3 < interval["high"], interval


def test_a_candidate_that_never_shows_an_action_gets_nothing_from_its_acceptances():
    # Given a log where only card suggestions were ever accepted
    decisions, feedback = fifty_fifty()
    feedback = [
        answer(next(d for d in decisions if d.decision_id == f.decision_id), f.action, "declined")
        if f.action == "savings"
        else f
        for f in feedback
    ]
    # When a candidate that never shows card is evaluated
    result = evaluate(decisions, feedback, NO_CARD, replicates=50)
    # Then nothing accepted reaches it, by any estimator
    for estimator in ("ips", "snips", "dr"):
        assert figure(result, estimator) == 0.0, f"{estimator}: card's acceptances are not its"
    assert result["calibration"]["savings"] == 0.0, "the reward model learnt savings is refused"


def test_snips_equals_ips_when_the_weights_average_one_and_corrects_it_when_not():
    # Given the balanced log (weights average 1 per decision) and an unbalanced one, where
    # the coin showed card in 80 decisions of 200 instead of the 100 expected
    balanced = evaluate(*fifty_fifty(), POLICY, replicates=20)
    unbalanced = evaluate(*fifty_fifty(80, 120), POLICY, replicates=20)
    # Then they agree on the balanced log
    assert figure(balanced, "snips") == pytest.approx(figure(balanced, "ips"))
    # And on the other, IPS is scaled by the shortfall (24 x 2 / 200) while SNIPS stays
    # at the acceptance rate of card (24 of 80)
    assert figure(unbalanced, "ips") == pytest.approx(0.24)
    assert figure(unbalanced, "snips") == pytest.approx(0.3)


def test_the_same_seed_gives_the_same_intervals_and_another_seed_others():
    decisions, feedback = fifty_fifty()
    first = evaluate(decisions, feedback, POLICY, seed=7, replicates=100)
    again = evaluate(decisions, feedback, POLICY, seed=7, replicates=100)
    other = evaluate(decisions, feedback, POLICY, seed=8, replicates=100)
    assert first == again, "the bootstrap is seeded"
    assert first["estimates"]["ips"] != other["estimates"]["ips"], "another seed, other draws"
    assert (
        "500" not in first["method"]["interval"] and "100 replicates" in first["method"]["interval"]
    )


def test_the_declines_before_a_decision_pause_the_candidate_and_later_ones_do_not():
    # Given one decision that showed savings, accepted, and two declines of card by the
    # same customer (on earlier contacts) - once before the decision, once after it
    d = decision(0, [("savings", 1.0)])
    earlier = [answer(d, "card", "declined", d.created_at - dt.timedelta(days=k)) for k in (1, 3)]
    later = [answer(d, "card", "declined", d.created_at + dt.timedelta(days=k)) for k in (1, 3)]
    accepted = answer(d, "savings", "accepted")
    # When the card-first policy is evaluated
    paused = evaluate([d], [*earlier, accepted], POLICY, replicates=10)
    not_yet = evaluate([d], [*later, accepted], POLICY, replicates=10)
    # Then with the earlier declines card is paused and savings (accepted) is its slate
    assert figure(paused, "ips") == 1.0, "the contact policy paused card as it did then"
    assert figure(not_yet, "ips") == 0.0, "declines after the decision were not known then"


def test_decisions_without_inputs_or_propensities_are_left_out_counted_and_warned_of():
    # Given 20 usable decisions, 3 logged before the inputs and 2 without propensities
    decisions, feedback = fifty_fifty(10, 10)
    old = [decision(100 + n, [("card", 0.5)], inputs=None) for n in range(3)]
    bare = [decision(200 + n, [("card", None)]) for n in range(2)]
    result = evaluate([*decisions, *old, *bare], feedback, POLICY, replicates=10)
    assert result["decisions"] == {"read": 25, "used": 20, "no_inputs": 3, "no_propensity": 2}
    warnings = " | ".join(result["warnings"])
    assert "effective sample size 10 is below 100" in warnings, warnings
    assert "3 decisions logged before their inputs" in warnings, warnings
    assert "2 decisions logged without propensities" in warnings, warnings


def test_since_and_until_keep_the_decisions_of_those_days():
    decisions, feedback = fifty_fifty(2, 2)
    moved = [replace(d, created_at=T0 + dt.timedelta(days=n)) for n, d in enumerate(decisions)]
    result = evaluate(
        moved, feedback, POLICY, since=dt.date(2026, 7, 2), until=dt.date(2026, 7, 3), replicates=5
    )
    assert result["decisions"]["read"] == 2, "the days 2 and 3 July hold two decisions"


def test_no_usable_decision_gives_no_estimate_and_says_so():
    result = evaluate([decision(0, [("card", None)])], [], POLICY, replicates=10)
    assert result["decisions"]["used"] == 0
    assert all(
        v != v for e in result["estimates"].values() for r in e.values() for v in r.values()
    ), "NaN throughout: nothing to estimate from"
    assert result["warnings"][0].startswith("no decision has the inputs and propensities")


def test_the_table_shows_each_estimator_with_its_interval():
    result = evaluate(*fifty_fifty(), POLICY, replicates=20)
    table = evaluation_table(result)
    assert [line.split()[0] for line in table.splitlines()[1:]] == ["current", "IPS", "SNIPS", "DR"]
    assert "0.3000 [" in table and "30.00 [" in table, table
