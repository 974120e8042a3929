"""Reasons from a model's contributions, and talking points from a customer's own history."""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace

import lightgbm as lgb
import numpy as np
import pytest

from features.catalogue import feature_index
from features.dataset_settings import InteractionRoles
from features.feature import Feature
from features.spec import FeatureSpec
from models.model import Calibration, Encoding, Predictor
from serving.reasons import reasons_of, suggestion_points, talking_points, top_reasons

NAMES = ["complaints_90d", "tenure_days", "value"]
SPEC = FeatureSpec(
    tables=["interactions"],
    interaction_roles=InteractionRoles(complaint=["complaint"]),
    profile={"gender": "categorical", "region": "categorical"},
    protected=["gender"],
)
FEATURES = feature_index(SPEC)
AS_OF = date(2026, 3, 13)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    """A tiny churn model where complaints drive the score and the rest is noise."""
    rng = np.random.default_rng(0)
    n = 400
    x = np.column_stack(
        [rng.integers(0, 6, n), rng.uniform(30, 3000, n), rng.uniform(0, 5000, n)]
    ).astype(float)
    y = (x[:, 0] >= 3).astype(float)
    flip = rng.random(n) < 0.05  # a little label noise
    y[flip] = 1 - y[flip]
    params = {
        "objective": "binary",
        "num_leaves": 4,
        "min_data_in_leaf": 10,
        "learning_rate": 0.2,
        "verbose": -1,
        "num_threads": 1,
        "deterministic": True,
        "seed": 0,
    }
    booster = lgb.train(params, lgb.Dataset(x, y, feature_name=NAMES), num_boost_round=20)
    return Predictor("churn", booster, Encoding(NAMES), Calibration("identity"))


def test_the_driving_feature_comes_first_in_plain_words(predictor):
    values = {"complaints_90d": 4, "tenure_days": 400, "value": 1200.0}
    reasons = top_reasons(predictor, predictor.encoding.row(values), values, FEATURES)
    assert reasons, "a customer with 4 complaints must have a reason for the high score"
    assert reasons[0].feature == "complaints_90d", f"complaints drive the model: {reasons}"
    assert reasons[0].text == "4 complaints in the last 90 days", "text from the catalogue template"
    assert all(r.contribution > 0 for r in reasons), "only features that push the score up"
    pushes = [r.contribution for r in reasons]
    assert pushes == sorted(pushes, reverse=True), "largest push first"


def test_profile_and_protected_attributes_are_never_reasons():
    # Given contributions where gender and region push hardest, then complaints
    names = ["profile_gender", "profile_region", "complaints_90d"]
    values = {"profile_gender": "f", "profile_region": "north", "complaints_90d": 2}
    # When rendered as reasons
    reasons = reasons_of(np.array([2.0, 1.5, 0.3]), names, values, FEATURES)
    # Then only the behaviour is given as why
    assert [r.feature for r in reasons] == ["complaints_90d"], reasons


def test_at_most_k_reasons(predictor):
    values = {"complaints_90d": 5, "tenure_days": 100, "value": 10.0}
    row = predictor.encoding.row(values)
    assert len(top_reasons(predictor, row, values, FEATURES, k=1)) <= 1
    assert len(top_reasons(predictor, row, values, FEATURES, k=3)) <= 3


def test_no_complaints_is_not_a_reason_for_churn(predictor):
    values = {"complaints_90d": 0, "tenure_days": 400, "value": 1200.0}
    reasons = top_reasons(predictor, predictor.encoding.row(values), values, FEATURES)
    assert "complaints_90d" not in [r.feature for r in reasons], (
        f"zero complaints pull the churn score down, so they are no reason: {reasons}"
    )


def test_ties_break_by_name_and_empty_or_unknown_features_are_skipped():
    fake = SimpleNamespace(
        encoding=SimpleNamespace(features=["b", "a", "silent", "unknown", "down"]),
        contributions=lambda m: np.array([[0.5, 0.5, 0.9, 0.8, -1.0, 0.1]]),
    )
    features = {
        name: Feature(name, name, template, "numeric", "test")
        for name, template in [("a", "a is {value:.0f}"), ("b", "b is {value:.0f}"), ("silent", "")]
    }
    features["down"] = Feature("down", "down", "down", "numeric", "test")
    values = {"a": 1, "b": 2, "silent": 3, "unknown": 4, "down": 5}
    reasons = top_reasons(fake, np.zeros((1, 5)), values, features, k=3)
    assert [r.feature for r in reasons] == ["a", "b"], f"tie a/b by name; others skipped: {reasons}"


def test_more_than_one_row_is_rejected(predictor):
    with pytest.raises(ValueError, match="one row"):
        top_reasons(predictor, np.zeros((2, 3)), {}, FEATURES)


# -- talking points ----------------------------------------------------------------------------

HISTORY = {
    "last_transaction_date": "2026-03-01",
    "last_transaction_product": "credit_card",
    "last_transaction_channel": "app",
    "last_transaction_amount": 45.2,
    "signup_date": date(2021, 3, 20),
    "last_complaint_date": datetime(2026, 3, 4, 15, 30),
    "last_satisfaction": 4,
    "products_held": ["checking", "credit_card"],
}


def test_talking_points_put_a_recent_complaint_first():
    points = talking_points(HISTORY, AS_OF, "gold")
    assert points == [
        "Complained 9 days ago - acknowledge it first",
        "Gold customer for 5 years this March - thank them for their loyalty",
        "Last purchase: credit card (45.20) on the app, 12 days ago",
    ], points


def test_milestone_only_near_a_whole_year():
    far = talking_points({"signup_date": "2021-09-01"}, AS_OF, None)
    near = talking_points({"signup_date": "2023-04-20"}, AS_OF, None)
    assert far == [], f"5.5 years is no milestone: {far}"
    assert near == ["Customer for 3 years in April - thank them for their loyalty"], near


def test_missing_keys_are_tolerated():
    assert talking_points({}, AS_OF, None) == [], "no history, nothing to say"
    sparse = {"last_transaction_date": "2026-03-12", "last_complaint_date": None}
    assert talking_points(sparse, AS_OF, None) == ["Last purchase: a transaction, yesterday"]


def test_old_complaints_and_future_rows_are_not_mentioned():
    history = {"last_complaint_date": "2025-06-01", "last_transaction_date": "2026-04-01"}
    assert talking_points(history, AS_OF, "gold") == [], "old complaint; purchase after as_of"


def test_low_satisfaction_without_complaint_is_worth_asking_about():
    points = talking_points({"last_satisfaction": 1.0}, AS_OF, None)
    assert points == ["Last satisfaction score was 1 of 5 - ask what could be better"], points


# -- suggestion points -------------------------------------------------------------------------


def test_retention_points_acknowledge_a_recent_complaint():
    points = suggestion_points("retention", None, {"days_since_last_complaint": 9, "tier": "gold"})
    assert points[0] == "Acknowledge the complaint from 9 days ago before anything else", points
    assert "review" in points[1] and "gold" in points[1], points


def test_upgrade_points_name_the_gap_then_the_next_tier():
    points = suggestion_points("upgrade", None, {"next_tier": "platinum", "gap_to_next_tier": 1200})
    assert points == [
        "They are 1,200 a year short of platinum - show what gets them there",
        "Explain the benefits of the platinum tier",
    ], points


def test_a_customer_who_already_qualifies_is_told_so():
    points = suggestion_points("upgrade", None, {"next_tier": "gold", "gap_to_next_tier": 0})
    assert points[0] == "Their value already qualifies for gold - offer to move them up now"


def test_cross_sell_points_build_on_the_longest_held_product():
    values = {
        "products_held": ["savings", "checking"],
        "held_savings_days": 400,
        "held_checking_days": 3000,
    }
    points = suggestion_points("cross_sell", "credit_card", values)
    assert points[0] == "Has held checking for 8 years - credit card works well alongside it"
    fresh = suggestion_points("cross_sell", "credit_card", {})
    assert fresh[0] == "Does not hold credit card yet - ask whether it would be useful", fresh
    assert 1 <= len(points) <= 2 and 1 <= len(fresh) <= 2


def test_cross_sell_points_mention_interest_already_shown_in_the_product():
    values = {"product_analytics_pack_count_90d": 3, "products_held": ["sso"]}
    points = suggestion_points("cross_sell", "analytics_pack", values)
    assert points[0] == (
        "Used analytics pack 3 times in the last 90 days - they already know what it offers"
    ), points


def test_retention_points_use_the_customers_own_decline_before_the_generic_opener():
    fell = suggestion_points("retention", None, {"spend_change_90d": -0.6, "tier": "gold"})
    assert fell[0] == "Spend fell 60% against their recent months - ask whether something changed"
    loyal = suggestion_points("retention", None, {"tenure_days": 3 * 365.25 + 5})
    assert loyal[0] == "A customer for 3 years - thank them for their loyalty"
    nothing = suggestion_points("retention", None, {})
    assert nothing[0] == "Ask how things are going with their accounts", "the last resort"
