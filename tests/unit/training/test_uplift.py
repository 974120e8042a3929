"""Fitting and gating uplift models on a synthetic holdout experiment with a known uplift
(tests/uplift_synthetic.py: persuadables, sure things, sleeping dogs, lost causes)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from batch.run import decision_time
from tests.uplift_synthetic import FEATURES, synthetic_decisions, true_qini
from training.uplift import (
    FittedUplift,
    UpliftConfig,
    UpliftTask,
    feature_day,
    fit_uplift,
    usable_outcomes,
)


def task(**config) -> UpliftTask:
    return UpliftTask(
        "Credit Card", "cross_sell", "Credit Card", FEATURES, ["segment"], 1, UpliftConfig(**config)
    )


@pytest.fixture(scope="module")
def decisions() -> pd.DataFrame:
    return synthetic_decisions(20_000, seed=3)


@pytest.fixture(scope="module")
def fitted(decisions) -> FittedUplift:
    result = fit_uplift(decisions, task())
    assert isinstance(result, FittedUplift), result
    return result


def test_predicted_uplift_follows_the_true_uplift(decisions, fitted):
    valid = decisions.set_index("decision_id").loc[fitted.valid.decision_id]
    corr = np.corrcoef(valid.true_uplift, fitted.valid.uplift)[0, 1]
    assert corr > 0.7, f"correlation with the true uplift {corr:.2f}"


def test_sleeping_dogs_are_predicted_to_be_harmed(decisions, fitted):
    # The refit model on customers whose true uplift is clearly negative (mostly sleeping dogs).
    harmed = decisions[decisions.true_uplift < -0.1]
    predicted = fitted.model.predict_frame(harmed)
    assert (predicted < 0).mean() > 0.8, f"{(predicted < 0).mean():.0%} predicted negative"


def test_uplift_ranks_better_than_propensity_on_the_truth(decisions, fitted):
    valid = decisions.set_index("decision_id").loc[fitted.valid.decision_id]
    model = true_qini(valid.true_uplift.to_numpy(), fitted.valid.uplift.to_numpy())
    propensity = true_qini(valid.true_uplift.to_numpy(), valid.propensity.to_numpy())
    assert model > 1.2 * propensity, f"uplift {model:.4f} vs propensity {propensity:.4f}"


def test_a_real_effect_passes_the_gate_on_the_latest_decisions(fitted):
    m = fitted.metrics
    assert fitted.failures == [], fitted.failures
    assert m["qini_low"] > 0 and m["valid_rows"] == 6000, m
    assert m["trees_offered"] >= 1 and m["trees_holdout"] >= 1


def test_the_validation_rows_are_the_latest_decisions(decisions, fitted):
    latest = decisions.sort_values("decided_at").decision_id.tail(6000)
    assert set(fitted.valid.decision_id) == set(latest)


def test_no_effect_fails_the_gate_with_the_reason():
    rows = synthetic_decisions(6000, seed=5)
    rows["outcome"] = (np.random.default_rng(0).random(len(rows)) < rows.propensity).astype(int)
    result = fit_uplift(rows, task())
    assert isinstance(result, FittedUplift), result
    assert any("lower bound" in f for f in result.failures), result.failures


def test_the_two_model_learner_beats_the_transformed_outcome_with_a_small_holdout():
    # The evidence for the default method: a 5% holdout, judged against the true uplift.
    rows = synthetic_decisions(5000, seed=1)
    figures = {}
    for method in ("two_model", "transformed_outcome"):
        result = fit_uplift(rows, task(method=method))
        valid = rows.set_index("decision_id").loc[result.valid.decision_id]
        figures[method] = true_qini(valid.true_uplift.to_numpy(), result.valid.uplift.to_numpy())
    assert figures["two_model"] > figures["transformed_outcome"], figures


@pytest.mark.parametrize(
    ("rows", "held", "reason"),
    [
        (900, 100, "900 decisions with outcomes (< 1000)"),
        (2000, 99, "99 held-out decisions (< 100)"),
    ],
)
def test_too_few_decisions_get_no_model(decisions, rows, held, reason):
    offered = decisions[decisions.arm == "offered"].head(rows - held)
    holdout = decisions[decisions.arm == "holdout"].head(held)
    assert fit_uplift(pd.concat([offered, holdout]), task()) == reason


def test_the_same_rows_give_the_same_model():
    rows = synthetic_decisions(3000, seed=2)
    a, b = fit_uplift(rows, task()), fit_uplift(rows.sample(frac=1, random_state=1), task())
    for role in ("offered", "holdout"):
        assert a.model.boosters[role].model_to_string() == b.model.boosters[role].model_to_string()
    assert a.metrics == b.metrics


def test_features_are_as_of_the_day_before_the_decision():
    # A batch decision's day is its as-of day + 1, so its features are the batch's as-of.
    as_of = dt.date(2026, 6, 30)
    at = decision_time(as_of, now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC)).replace(tzinfo=None)
    service = pd.Timestamp("2026-07-03 08:15")
    assert feature_day(pd.Series([at, service])).tolist() == [as_of, dt.date(2026, 7, 2)]


def test_only_finished_randomized_outcomes_are_used():
    rows = synthetic_decisions(10, seed=0).head(4)
    rows.loc[0, "horizon_end"] = dt.date(2026, 9, 1)  # after the as-of date: pending
    rows.loc[1, "arm"] = "shown"  # not an arm of the experiment
    used = usable_outcomes(rows, dt.date(2026, 6, 1))
    assert used.decision_id.tolist() == rows.decision_id.iloc[2:].tolist()
