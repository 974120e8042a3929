"""Suggestion building: a stored customer and real (tiny) LightGBM models become an
assessment, ranked suggestions with their own reasons, and a not-shown list.

``test_suggest.py`` checks that a suggestion keeps one type up to the response; here the
models are real boosters, so the probabilities, the reasons and the grouping of encodings
are the ones a served model gives.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import lightgbm as lgb
import numpy as np
import pytest

from features.dataset_settings import InteractionRoles
from features.spec import FeatureSpec
from models.model import Calibration, Encoding, Predictor
from models.registry import LoadedModel, model_name
from models.scoring import ModelSet
from models.uplift import UpliftModel
from serving.policy import Context, PolicyConfig, ProductRule
from serving.store import StoredCustomer
from serving.suggest import Scorer, assess, card_of, rank, suggest, suggestion_id
from tests.unit.serving.test_suggest import make_customer

NOW = dt.datetime(2026, 7, 1, 9, 30, tzinfo=dt.UTC)
AS_OF = dt.date(2026, 6, 30)
NAMES = ["complaints_90d", "tenure_days", "profile_age"]
SPEC = FeatureSpec(
    tables=["holdings", "interactions"],
    holding_products=["checking", "insurance", "savings"],
    interaction_roles=InteractionRoles(complaint=["complaint"]),
    profile={"age": "numeric"},
)
# No control group, holdouts or channel weights: the ranking is the model ranking.
CONFIG = PolicyConfig(control_share=0.0, holdout_shares={}, channel_weights={})
COMPLAINING = {"complaints_90d": 4, "tenure_days": 2400.0, "profile_age": 45}


def fit(target: str, rate, meta: dict | None = None) -> Predictor:
    """A booster on NAMES whose outcome rate is ``rate(complaints, tenure)``."""
    rng = np.random.default_rng(len(target))
    n = 3000
    x = np.column_stack(
        [rng.integers(0, 6, n), rng.uniform(30, 4000, n), rng.uniform(18, 90, n)]
    ).astype(float)
    y = (rng.uniform(size=n) < rate(x[:, 0], x[:, 1])).astype(float)
    params = {"objective": "binary", "num_leaves": 4, "min_data_in_leaf": 50, "verbose": -1}
    params |= {"learning_rate": 0.1, "num_threads": 1, "deterministic": True, "seed": 0}
    booster = lgb.train(params, lgb.Dataset(x, y, feature_name=NAMES), num_boost_round=30)
    return Predictor(target, booster, Encoding(list(NAMES)), Calibration("identity"), meta or {})


@pytest.fixture(scope="module")
def predictors() -> dict[str, Predictor]:
    """Churn driven by complaints, savings by tenure; upgrade and checking flat."""
    return {
        "churn": fit("churn", lambda c, t: 0.04 + 0.2 * (c >= 3)),
        "upgrade": fit("upgrade", lambda c, t: np.full_like(c, 0.1)),
        "cross_sell_savings": fit(
            "cross_sell_savings", lambda c, t: 0.1 + 0.4 * (t > 2000), {"product": "savings"}
        ),
        "cross_sell_checking": fit(
            "cross_sell_checking", lambda c, t: np.full_like(c, 0.3), {"product": "checking"}
        ),
    }


def model_set(predictors: dict[str, Predictor]) -> ModelSet:
    """The predictors as the registry reader hands them over (version 1 each, one spec)."""
    return ModelSet(
        {
            t: LoadedModel(model_name(t), "1", "champion", f"run-{t}", p, SPEC.to_dict())
            for t, p in predictors.items()
        }
    )


@pytest.fixture(scope="module")
def scorer(predictors) -> Scorer:
    return Scorer.from_models(model_set(predictors))


def customer(**changes) -> StoredCustomer:
    """A complaining silver customer, 300 a year short of gold, holding checking."""
    values = {
        "gap_to_next_tier": 300.0,
        "history": {"signup_date": "2020-01-15", "last_complaint_date": "2026-06-20"},
        "features": dict(COMPLAINING),
    }
    return make_customer(**{**values, **changes})


def decide(scorer: Scorer, stored: StoredCustomer | None = None, **options):
    """``suggest`` for a phone contact, up to ten suggestions unless ``options`` say otherwise."""
    args = {
        "config": CONFIG,
        "context": Context("phone"),
        "declines": {},
        "now": NOW,
        "max_suggestions": 10,
        "decision_id": "d1",
    } | options
    return suggest(stored or customer(), scorer, **args)


def shown(decision) -> list[str]:
    return [s.action for s in decision.suggestions]


def why_not(decision) -> dict[str, str]:
    return {n.action: n.reason for n in decision.not_shown}


# -- the scorer --------------------------------------------------------------------------------


def test_models_trained_together_share_one_encoding(scorer):
    # Given four models on the same features, each with its own Encoding object
    # Then the scorer encodes a customer once for all four
    [(encoding, targets)] = scorer.encodings
    assert encoding.features == NAMES
    assert sorted(targets) == sorted(scorer.predictors), "every target reads the one row"


def test_the_scorer_reads_products_versions_and_profile_from_the_models(scorer):
    assert scorer.product_by_target == {
        "cross_sell_checking": "checking",
        "cross_sell_savings": "savings",
    }, "a cross-sell model's product comes from its meta"
    assert scorer.versions == {model_name(t): "1" for t in scorer.predictors}
    assert scorer.known_products == ("checking", "insurance", "savings"), (
        "products of the spec's holdings are known even without a model (insurance)"
    )
    assert scorer.profile_features == {"age": "profile_age"}, "profile column -> feature"


# -- the assessment ----------------------------------------------------------------------------


def test_probabilities_are_each_models_prediction_for_the_stored_row(scorer, predictors):
    assessment = assess(customer(), scorer, CONFIG)
    for target in ("churn", "upgrade", "cross_sell_savings"):
        p = predictors[target]
        expected = float(p.predict(p.encoding.row(COMPLAINING))[0])
        assert assessment.probabilities[target] == pytest.approx(expected), target
    assert assessment.churn.probability == assessment.probabilities["churn"]
    assert assessment.upgrade.probability == assessment.probabilities["upgrade"]
    assert assessment.model_versions == scorer.versions, "every answer reports its versions"


def test_a_held_product_gets_no_probability_and_is_marked_held(scorer):
    assessment = assess(customer(held=("checking",)), scorer, CONFIG)
    assert assessment.probabilities["cross_sell_checking"] is None, "no offer of what is held"
    views = {v.product: (v.held, v.probability is None) for v in assessment.cross_sell}
    assert views == {"checking": (True, True), "savings": (False, False)}, views


def test_the_churn_reasons_name_what_drives_the_score_in_plain_words(scorer):
    churn = assess(customer(), scorer, CONFIG).churn
    assert churn.risk_band == "medium", f"about 0.24 with four complaints: {churn.probability}"
    assert churn.reasons, "a medium risk has reasons"
    assert churn.reasons[0].text == "4 complaints in the last 90 days", churn.reasons
    assert len(churn.reasons) <= 3
    assert "profile_age" not in {r.feature for r in churn.reasons}, "a profile is never a reason"


def test_the_talking_points_come_from_the_stored_history(scorer):
    points = assess(customer(), scorer, CONFIG).talking_points
    assert points[0] == "Complained 10 days ago - acknowledge it first", points


def test_assess_is_the_assessment_a_decision_shows(scorer):
    assert assess(customer(), scorer, CONFIG) == decide(scorer).assessment


def test_without_a_churn_model_the_risk_is_low_and_retention_has_no_model(predictors):
    scorer = Scorer.from_models(model_set({t: p for t, p in predictors.items() if t != "churn"}))
    decision = decide(scorer)
    churn = decision.assessment.churn
    assert (churn.probability, churn.risk_band, churn.reasons) == (None, "low", ())
    assert why_not(decision)["retention"] == "no_model"
    assert "upgrade" in shown(decision), "the other models still suggest"


def test_a_model_giving_no_finite_probability_counts_as_no_model(predictors):
    # Given a savings model whose calibration gives NaN for every score
    broken = replace(
        predictors["cross_sell_savings"],
        calibration=Calibration("isotonic", [0.0, 1.0], [np.nan, np.nan]),
    )
    scorer = Scorer.from_models(model_set({**predictors, "cross_sell_savings": broken}))
    decision = decide(scorer)
    assert decision.assessment.probabilities["cross_sell_savings"] is None
    [savings] = [n for n in decision.not_shown if n.action == "savings"]
    assert (savings.reason, savings.detail) == ("no_model", "no probability"), savings


# -- the suggestions ---------------------------------------------------------------------------


def test_each_suggestion_carries_the_reasons_of_its_own_model(scorer):
    decision = decide(scorer)
    by_action = {s.action: s for s in decision.suggestions}
    assert {"retention", "savings"} <= set(by_action), shown(decision)
    assert by_action["retention"].reasons == decision.assessment.churn.reasons, (
        "retention answers the churn model"
    )
    savings = by_action["savings"].reasons
    assert savings and savings[0].feature == "tenure_days", f"tenure drives savings: {savings}"


def test_each_suggestion_has_talking_points_from_the_customers_own_tier(scorer):
    [upgrade] = [s for s in decide(scorer).suggestions if s.action == "upgrade"]
    assert (
        upgrade.talking_points[0] == "They are 300 a year short of gold - show what gets them there"
    )


def test_suggestions_are_ranked_by_priority_and_numbered_from_one(scorer):
    suggestions = decide(scorer).suggestions
    assert [s.rank for s in suggestions] == list(range(1, len(suggestions) + 1))
    priorities = [s.priority for s in suggestions]
    assert priorities == sorted(priorities, reverse=True), priorities


def test_suggestion_ids_are_stable_per_decision_and_action_and_unique_otherwise(scorer):
    first, again, other = decide(scorer), decide(scorer), decide(scorer, decision_id="d2")
    ids = [s.suggestion_id for s in first.suggestions]
    assert ids == [suggestion_id("d1", s.action) for s in first.suggestions]
    assert ids == [s.suggestion_id for s in again.suggestions], "same decision, same ids"
    assert len(set(ids)) == len(ids), "unique within a decision"
    assert not set(ids) & {s.suggestion_id for s in other.suggestions}, "unique across decisions"


def test_two_recent_declines_pause_an_action_until_a_stated_time(scorer):
    declines = {"savings": [NOW - dt.timedelta(days=3), NOW - dt.timedelta(days=1)]}
    decision = decide(scorer, declines=declines)
    assert "savings" not in shown(decision)
    [paused] = [n for n in decision.not_shown if n.action == "savings"]
    assert paused.reason == "paused_by_declines"
    assert paused.until == NOW - dt.timedelta(days=3) + dt.timedelta(days=30), paused


def test_the_stored_profile_reaches_the_product_rules(scorer):
    config = CONFIG.model_copy(update={"product_rules": {"savings": ProductRule(min_age=50)}})
    young = decide(scorer, config=config)
    [savings] = [n for n in young.not_shown if n.action == "savings"]
    assert (savings.reason, savings.detail) == (
        "not_eligible",
        "product rule savings.min_age 50: age 45",
    ), savings
    older = customer(features={**COMPLAINING, "profile_age": 60})
    assert "savings" in shown(decide(scorer, older, config=config)), "the rule holds at 60"


def test_a_customer_who_closed_gets_no_sales_offer(scorer):
    closed = customer(history={"closed_date": "2026-05-01"})
    decision = decide(scorer, closed)
    assert decision.suggestions == (), "no policy win-back rate: nothing to offer"
    reasons = why_not(decision)
    assert reasons["upgrade"] == reasons["savings"] == reasons["retention"] == "closed", reasons
    assert reasons["checking"] == "already_held" and reasons["insurance"] == "no_model"
    assert all(
        "closed on 2026-05-01" in n.detail for n in decision.not_shown if n.reason == "closed"
    )


def test_max_suggestions_out_of_range_is_refused(scorer):
    for bad in (0, 11):
        with pytest.raises(ValueError, match=f"max_suggestions must be 1..10, got {bad}"):
            decide(scorer, max_suggestions=bad)


def test_ranking_known_probabilities_gives_the_decision_the_service_gives(scorer):
    # Given the service's decision for a customer
    decision = decide(scorer, max_suggestions=2)
    # When the batch ranks the same customer from its probabilities and profile alone
    profile_only = customer(features={"profile_age": COMPLAINING["profile_age"]})
    ranking = rank(
        profile_only,
        scorer,
        CONFIG,
        Context("phone"),
        {},
        NOW,
        2,
        "d1",
        decision.assessment.probabilities,
    )
    # Then the same actions are shown in the same order, and the same ones held back
    assert [(s.action, s.rank, s.priority) for s in ranking.suggestions] == [
        (s.action, s.rank, s.priority) for s in decision.suggestions
    ]
    assert ranking.not_shown == decision.not_shown
    assert ranking.eligible == decision.eligible


# -- the card ----------------------------------------------------------------------------------


def test_the_card_shows_the_stored_tier_holdings_and_profile(scorer):
    card = card_of(customer(), scorer)
    performance = card.performance
    assert (performance.tier, performance.next_tier, performance.gap_to_next_tier) == (
        "silver",
        "gold",
        300.0,
    )
    assert performance.value == 1800.0 and performance.value_tier == "major"
    assert [h.product for h in card.holdings] == ["checking"]
    assert card.basics.profile == {"age": 45}, "a profile feature of the models' spec"
    assert card.satisfaction.complaints_90d == 4 and card.status == "open"


def test_an_uplift_champion_ranks_its_action_by_what_the_offer_adds_and_holds_back_harm(
    predictors,
):
    # Savings offers move long-standing customers (+50 points) and put off new ones (-25).
    offered = fit("offered", lambda c, t: np.where(t > 2000, 0.7, 0.05)).booster
    held = fit("held", lambda c, t: np.where(t > 2000, 0.2, 0.3)).booster
    uplift = UpliftModel(
        "savings", "two_model", {"offered": offered, "holdout": held}, Encoding(NAMES)
    )
    uplift.name, uplift.version = "tierwise-uplift-savings", "2"
    models = model_set(predictors)
    scorer = Scorer.from_models(ModelSet(models.models, {"savings": uplift}))
    assert scorer.versions["tierwise-uplift-savings"] == "2"

    loyal = decide(scorer, customer(features={**COMPLAINING, "tenure_days": 2400.0}))
    [savings] = [s for s in loyal.suggestions if s.action == "savings"]
    assert savings.uplift == pytest.approx(0.5, abs=0.08)
    assert savings.expected_value == pytest.approx(savings.uplift * savings.value - 25.0)

    new = decide(scorer, customer(features={**COMPLAINING, "tenure_days": 300.0}))
    assert "savings" not in shown(new) and why_not(new)["savings"] == "predicted_harm"
