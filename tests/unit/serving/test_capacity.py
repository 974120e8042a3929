"""Capacity and budgets: the settings, the agent's time per call, and the service's counters."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from serving.capacity import CapacityConfig, caps_of
from serving.decisions import DecisionLog
from serving.policy import Context, PolicyConfig, rank_actions
from tests.unit.serving.test_decisions import NOW, make_decision
from tests.unit.serving.test_policy import CONFIG, KNOWN, PRODUCTS, make_customer


def configure(capacity: dict) -> PolicyConfig:
    return PolicyConfig.model_validate({**CONFIG.model_dump(), "capacity": capacity})


def test_the_default_policy_sets_no_cap():
    capacity = PolicyConfig().capacity
    assert capacity == CapacityConfig(), "no cap unless a business owner sets one"
    assert caps_of("savings", "phone", capacity) == ()
    assert capacity.call_limit("high") is None


@pytest.mark.parametrize(
    ("capacity", "says"),
    [
        ({"actions": {"savings": {"per": "day"}}}, "offers, budget or both"),
        ({"actions": {"savings": {"budget": 100}}}, "needs the cost"),
        ({"actions": {"savings": {"offers": 5, "per": "month"}}}, "per"),
        ({"channels": {"phone": -1}}, "0 or more"),
        ({"minutes": {"retention": -2}}, "0 or more"),
        ({"call_minutes": {"busy": 3}}, "call_minutes"),
    ],
)
def test_a_wrong_cap_is_refused_naming_it(capacity, says):
    with pytest.raises(ValidationError, match=says):
        configure(capacity)


def test_an_offer_counts_against_its_stock_budget_and_channel_caps():
    capacity = CapacityConfig.model_validate(
        {
            "actions": {"savings": {"offers": 5, "budget": 100, "cost": 30, "per": "week"}},
            "channels": {"phone": 50},
        }
    )
    caps = caps_of("savings", "phone", capacity)
    assert [(c.key, c.limit, c.amount, c.per) for c in caps] == [
        ("action:savings:offers", 5, 1.0, "week"),
        ("action:savings:budget", 100, 30, "week"),
        ("channel:phone", 50, 1.0, "day"),
    ]
    assert caps[0].period_start(NOW) == dt.date(2026, 6, 29), "a week starts on its Monday"
    assert caps[2].period_start(NOW) == dt.date(2026, 7, 1)
    assert caps_of("credit_card", "chat", capacity) == (), "no cap of its own, none of chat"


# -- agent time per call -----------------------------------------------------------------------


def rank(config: PolicyConfig, pressure: str = "normal"):
    context = Context("phone", queue_pressure=pressure)
    return rank_actions(make_customer(), context, config, {}, NOW, 10, "d-1", PRODUCTS, KNOWN)


def test_the_list_stops_where_the_next_offer_would_run_over_the_call():
    # Given a call of 8 minutes; retention takes 4, upgrade 3, a cross-sell 2 (credit_card 3)
    config = configure(
        {
            "minutes": {"retention": 4, "upgrade": 3, "cross_sell": 2, "credit_card": 3},
            "call_minutes": 8,
        }
    )
    # When the customer (retention 60 > upgrade 50 > credit_card 45 > savings 20) is ranked
    ranking = rank(config)
    # Then retention and upgrade fit (7 min); credit_card's 3 exceed the 1 left, and the
    # list stops there: savings (2 min) is not pulled up past it
    assert [s.action for s in ranking.suggestions] == ["retention", "upgrade"]
    assert [s.rank for s in ranking.suggestions] == [1, 2]
    capped = {n.action: n.detail for n in ranking.not_shown if n.reason == "capacity"}
    assert set(capped) == {"credit_card", "savings", "mortgage"}, capped
    assert capped["credit_card"] == (
        "agent time: credit_card takes 3 min, 1 of the call's 8 min left at normal queue pressure"
    )


def test_call_minutes_by_queue_pressure_limit_only_the_levels_listed():
    config = configure({"minutes": {"retention": 4, "upgrade": 3}, "call_minutes": {"low": 4}})
    assert [s.action for s in rank(config, "low").suggestions] == ["retention"]
    assert len(rank(config, "normal").suggestions) == 5, "normal has no time limit set"


def test_offers_without_minutes_take_no_time():
    config = configure({"call_minutes": 0})
    assert len(rank(config).suggestions) == 5, "no minutes set: every offer fits any call"


# -- the service's running counters ------------------------------------------------------------


@pytest.fixture
def log(tmp_path) -> DecisionLog:
    return DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}")


def card_caps(**cap) -> dict:
    capacity = CapacityConfig.model_validate({"actions": {"credit_card": cap}})
    return {a: caps_of(a, "phone", capacity) for a in ("retention", "credit_card")}


def test_an_action_whose_cap_is_used_up_is_logged_not_shown_and_the_rest_move_up(log):
    # Given a cap of 2 credit-card offers a day
    caps = card_caps(offers=2)
    # When three decisions show it
    refused = [log.record(make_decision(f"d{i}"), caps) for i in range(3)]
    # Then the first two take it, the third logs it as not shown with the cap in words
    assert refused[:2] == [{}, {}]
    assert refused[2] == {"credit_card": "cap used up: credit_card: 2 offers per day"}
    third = log.get("d2")
    assert [s["action"] for s in third.suggestions] == ["retention"]
    assert [n["reason"] for n in third.not_shown] == ["capacity"]
    assert log.capacity_used() == {("action:credit_card:offers", dt.date(2026, 7, 1)): 2.0}


def test_a_new_period_starts_a_new_counter(log):
    caps = card_caps(offers=1)
    log.record(make_decision("d1"), caps)
    tomorrow = NOW + dt.timedelta(days=1)
    assert log.record(make_decision("d2", created_at=tomorrow), caps) == {}
    assert log.record(make_decision("d3", created_at=tomorrow), caps) != {}, "day 2's unit gone"


def test_an_offer_takes_all_of_its_caps_or_none(log):
    # Given stock of 5 but a budget of 100 at 40 an offer: the budget runs out first
    caps = card_caps(offers=5, budget=100, cost=40)
    for i in range(3):
        log.record(make_decision(f"d{i}"), caps)
    used = log.capacity_used()
    day = dt.date(2026, 7, 1)
    assert used[("action:credit_card:budget", day)] == 80.0, "a third offer would spend 120"
    assert used[("action:credit_card:offers", day)] == 2.0, "the refused offer took no stock"


def test_concurrent_decisions_never_take_more_than_the_cap(tmp_path):
    # Given 8 threads, each with its own connection pool to one store, and a cap of 5
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    logs = [DecisionLog(url) for _ in range(8)]
    caps = card_caps(offers=5)
    # When 40 decisions showing the capped action are logged at once
    with ThreadPoolExecutor(8) as pool:
        refused = list(
            pool.map(lambda i: logs[i % 8].record(make_decision(f"d{i}"), caps), range(40))
        )
    # Then exactly 5 took it
    assert sum(not r for r in refused) == 5, "exactly the cap's 5 offers are shown"
    assert logs[0].capacity_used()[("action:credit_card:offers", dt.date(2026, 7, 1))] == 5.0
    assert logs[0].count()[0] == 40, "every decision is logged"


def test_a_decision_without_caps_is_logged_as_before(log):
    assert log.record(make_decision()) == {}
    assert log.get("d1") == make_decision()
    assert log.capacity_used() == {}
