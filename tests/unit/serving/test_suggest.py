"""The inference path on a hand-made customer and stand-in models: one suggestion type from
the policy to the response, and the not-shown list carried through to the API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from serving.api import SuggestionResponse, suggestion_response
from serving.policy import Context, PolicyConfig, Suggestion
from serving.store import StoredCustomer
from serving.suggest import Scorer, suggest, suggestion_id

NOW = dt.datetime(2026, 7, 1, 9, 30, tzinfo=dt.UTC)
CONFIG = PolicyConfig(control_share=0.0, channel_weights={})


@dataclass
class Encoding:
    features: list[str] = field(default_factory=lambda: ["x"])

    def row(self, values) -> np.ndarray:
        return np.array([[float(values.get("x") or 0.0)]])


@dataclass
class Model:
    """A predictor that gives one probability and no contributions."""

    p: float
    product: str | None = None
    encoding: Encoding = field(default_factory=Encoding)

    @property
    def meta(self) -> dict:
        return {"product": self.product} if self.product else {}

    def predict(self, row: np.ndarray) -> np.ndarray:
        return np.full(len(row), self.p)

    def contributions(self, row: np.ndarray) -> np.ndarray:
        return np.zeros((len(row), 2))


def make_scorer() -> Scorer:
    """Churn, upgrade and two cross-sell models; insurance is held by some but has no model."""
    predictors = {
        "churn": Model(0.15),
        "upgrade": Model(0.1),
        "cross_sell_savings": Model(0.2, "savings"),
        "cross_sell_checking": Model(0.4, "checking"),
    }
    encoding = predictors["churn"].encoding
    return Scorer(
        versions={"tierwise-churn": "1"},
        predictors=predictors,
        feature_text={t: {} for t in predictors},
        product_by_target={"cross_sell_savings": "savings", "cross_sell_checking": "checking"},
        encodings=((encoding, tuple(predictors)),),
        profile_features={},
        specs=({"holding_products": ["checking", "insurance", "savings"]},),
        known_products=("checking", "insurance", "savings"),
    )


def make_customer(**changes) -> StoredCustomer:
    values = {
        "customer_id": "C1",
        "as_of": dt.date(2026, 6, 30),
        "tier": "silver",
        "tier_rank": 1,
        "value": 1800.0,
        "value_tier": "major",
        "tier_reason": "silver tier",
        "next_tier": "gold",
        "gap_to_next_tier": 0.0,  # already qualifies by value
        "held": ("checking",),
        "history": {},
        "features": {"x": 1.0},
    }
    return StoredCustomer(**{**values, **changes})


def decide(**changes):
    context = Context("phone")
    return suggest(make_customer(**changes), make_scorer(), CONFIG, context, {}, NOW, None, "d1")


def test_a_suggestion_is_one_type_from_the_policy_to_the_response():
    decision = decide()
    assert all(type(s) is Suggestion for s in decision.suggestions)
    first = decision.suggestions[0]
    assert (first.action, first.rank) == ("upgrade", 1), "a qualifying upgrade ranks first"
    assert first.suggestion_id == suggestion_id("d1", "upgrade") and first.talking_points
    assert first.value == 540.0, "0.3 x value 1800: what moving a qualifying customer up secures"
    body = suggestion_response(decision)
    assert isinstance(body, SuggestionResponse)
    assert [(s.action, s.rank, s.value) for s in body.suggestions] == [
        (s.action, s.rank, s.value) for s in decision.suggestions
    ]


def test_the_not_shown_list_reaches_the_response_with_its_reasons():
    body = suggestion_response(decide()).model_dump(mode="json")
    reasons = {n["action"]: n["reason"] for n in body["not_shown"]}
    assert reasons == {"checking": "already_held", "insurance": "no_model"}, reasons
    [no_model] = [n for n in body["not_shown"] if n["action"] == "insurance"]
    assert "no cross-sell model for insurance" in no_model["detail"]


def test_the_scorer_knows_the_products_of_the_holdings_without_a_model():
    assert set(make_scorer().known_products) == {"checking", "insurance", "savings"}
