"""The policy's inputs logged with a decision: through the decision log and back to the
same ranking; logs from before them read without."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from serving.decisions import DecisionLog, read_decisions, record_of
from serving.policy import Context, Customer, rank_actions
from serving.replay import policy_inputs, replay_of
from serving.suggest import suggest
from tests.unit.serving.test_decisions import make_decision
from tests.unit.serving.test_suggest import CONFIG, NOW, make_customer, make_scorer


def test_a_logged_decision_ranks_again_as_it_was_ranked(tmp_path):
    # Given a decision made through the inference path and logged in a real store
    scorer = make_scorer()
    context = Context("phone", "complaint")
    made = suggest(make_customer(), scorer, CONFIG, context, {}, NOW, 2, "d1")
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    log = DecisionLog(url)
    log.record(record_of(made, context, NOW))
    log.close()
    # When it is read back and ranked again from its logged inputs
    [logged] = read_decisions(url)
    replay = replay_of(logged.inputs, logged.customer_id, logged.probabilities)
    again = rank_actions(
        replay.customer,
        context,
        CONFIG,
        {},
        logged.created_at,
        replay.max_suggestions,
        logged.decision_id,
        replay.product_by_target,
        replay.known_products,
    )
    # Then the slate is the one shown, and what was not shown is the same too
    assert [(s.action, s.rank) for s in again.suggestions] == [
        (s.action, s.rank) for s in made.suggestions
    ], "the logged inputs are what the policy read"
    assert len(made.suggestions) == 2 and replay.max_suggestions == 2
    assert {(n.action, n.reason) for n in again.not_shown} == {
        (n.action, n.reason) for n in made.not_shown
    }


def test_the_inputs_keep_every_customer_field_the_policy_reads():
    customer = Customer(
        "C1",
        "silver",
        1,
        "gold",
        1_200.5,
        {"churn": 0.2},
        frozenset({"checking", "card"}),
        {"age": 41.0, "region": "north", "missing": float("nan")},
        350.0,
        dt.date(2026, 5, 31),
        {"savings": 0.04},
    )
    inputs = policy_inputs(customer, {"cross_sell_card": "card"}, ("card", "checking"), None)
    back = replay_of(inputs, "C1", {"churn": 0.2, "upgrade": None}).customer
    assert back == Customer(
        **{**customer.__dict__, "profile": {"age": 41.0, "region": "north", "missing": None}}
    ), "a missing probability means no model, and a missing profile value is None"


def test_a_log_from_before_the_inputs_reads_its_decisions_without_them(tmp_path):
    # Given a log whose decision_inputs table does not exist (made before it was kept)
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    log = DecisionLog(url)
    log.record(make_decision())
    log.close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE decision_inputs"))
    engine.dispose()
    # When its decisions are read, then they read whole, with no inputs
    [old] = read_decisions(url)
    assert old.decision_id == "d1" and old.inputs is None
    assert old.not_shown == [], "the other tables still join"
