"""The customer card from a customer's own stored features and history."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from features.contract import load_dataset
from features.history import build_history
from features.pipeline import build_features
from features.spec import feature_spec
from serving.card import customer_card
from tests.unit.features.test_pipeline import AS_OF, SETTINGS, tables, with_future


def _card(ds, customer_id: str, as_of: dt.date = AS_OF):
    spec = feature_spec(ds)
    features = build_features(ds, [as_of], spec).set_index("customer_id")
    history = build_history(ds, [as_of]).set_index("customer_id")
    row = features.loc[customer_id].drop("as_of").to_dict()
    stored = json.loads(json.dumps(history.loc[customer_id].to_dict(), default=str))
    context = {k: row.get(k) for k in ("value", "value_tier", "tier", "next_tier")}
    context |= {"tier_reason": "a reason", "gap_to_next_tier": row.get("gap_to_next_tier")}
    held = tuple(stored.pop("products_held"))
    return customer_card(row, stored, held, context, spec)


@pytest.fixture
def ds(make_dataset):
    return load_dataset(make_dataset(tables(), SETTINGS))


def test_the_card_shows_basics_traits_performance_history_and_satisfaction(ds):
    card = _card(ds, "A")
    assert card.status == "open" and card.closed_date is None
    assert card.basics.signup_date == dt.date(2020, 3, 31) and card.basics.tenure_days == 1461
    assert card.basics.profile == {"region": "north"}, "age is protected: allowed, not shown"
    assert [c.name for c in card.traits.channels] == ["app", "web"], card.traits.channels
    assert card.traits.products[0].name == "checking"
    assert len(card.performance.value_trend) == 12 and card.performance.value_trend[-1] == 35.0
    assert [c.tier for c in card.performance.tier_history] == ["major", "small"]
    assert [t.amount for t in card.transactions] == [10.0, 5.0, 20.0, -3.0, 7.0]
    assert card.transactions[0].date == AS_OF, "latest first"
    assert (card.satisfaction.last_score, card.satisfaction.complaints_90d) == (2.0, 1.0)
    assert card.satisfaction.last_complaint_date == AS_OF
    assert [h.product for h in card.holdings] == ["checking", "credit_card"]
    assert card.holdings[0].monthly_fee == 5.0 and card.holdings[0].held_days == 1461


def test_a_closed_customer_gets_a_card_that_says_so(make_dataset):
    # Given B, who closed the day after AS_OF, seen ten days later
    ds = load_dataset(make_dataset(with_future(tables(), AS_OF), SETTINGS))
    later = AS_OF + dt.timedelta(days=10)
    assert "B" not in build_history(ds, [later])["customer_id"].values, "the population"
    # When the recently closed are asked for too
    history = build_history(ds, [later], closed_within_days=30).set_index("customer_id")
    stored = json.loads(json.dumps(history.loc["B"].to_dict(), default=str))
    held = tuple(stored.pop("products_held"))
    card = customer_card({}, stored, held, {}, feature_spec(ds))
    # Then the card says closed, and when, and still shows the customer's history
    assert card.status == "closed" and card.closed_date == AS_OF + dt.timedelta(days=1)
    assert card.transactions and card.transactions[0].amount == 50.0, card.transactions
    assert _card(ds, "A", later).status == "open"
