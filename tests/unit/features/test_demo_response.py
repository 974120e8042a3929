"""The demo's hidden response model: off by default, seeded, types that follow features."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from features.demo import (
    NEW_ACTION,
    RESPONSE_COLUMNS,
    TIER_ORDER,
    HiddenAcceptance,
    ResponseModel,
    generate_demo_data,
)


def customers(n: int = 4000, seed: int = 3) -> pd.DataFrame:
    """Hand-made customers with the response model's columns."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(n)],
            "tier": rng.choice(["standard", "silver", "gold", "platinum"], n),
            "tier_rank": rng.integers(0, 4, n),
            "tenure_days": rng.integers(30, 9000, n),
            "txn_count_90d": rng.poisson(7, n),
            "txn_count_change_90d": rng.normal(0.2, 0.6, n),
            "complaints_90d": rng.random(n) < 0.05,
            "holdings_open_count": rng.integers(1, 6, n),
            "kind_login_90d": rng.poisson(1.3, n),
            "profile_age": rng.integers(18, 90, n),
            "profile_region": rng.choice(["London", "Wales", "South East", "Scotland"], n),
        }
    )[list(RESPONSE_COLUMNS)]


def test_the_generator_never_uses_it_so_the_demo_tables_stay_as_they_were() -> None:
    params = inspect.signature(generate_demo_data).parameters
    assert list(params) == ["out", "customers", "seed"], "the generator takes no response switch"


def test_same_seed_same_types_and_another_seed_differs() -> None:
    c = customers()
    a, b = ResponseModel(1).types(c, "upgrade"), ResponseModel(1).types(c, "upgrade")
    other = ResponseModel(2).types(c, "upgrade")
    assert (a == b).all(), "a seed fixes every customer's type"
    assert (a != other).mean() > 0.05, "another seed draws other noise"


@pytest.mark.parametrize("action", ["retention", "upgrade", "credit_card", "insurance"])
def test_every_type_occurs_and_responds_as_its_name_says(action: str) -> None:
    c = customers()
    model = ResponseModel(0)
    types = model.types(c, action)
    p0, p1 = model.probabilities(c, action)
    for name in ("persuadable", "sure_thing", "lost_cause", "sleeping_dog"):
        assert (types == name).mean() > 0.02, f"{action}: {name} is {(types == name).mean():.1%}"
    effect = p1 - p0
    assert (effect[types == "persuadable"] >= 0.3).all(), "an offer moves persuadables"
    assert (effect[types == "sleeping_dog"] <= -0.2).all(), "an offer puts sleeping dogs off"
    assert (effect[(types == "sure_thing") | (types == "lost_cause")] == 0).all()


def test_responses_follow_the_offer_at_the_type_rates() -> None:
    c = customers(20_000)
    model = ResponseModel(0)
    p0, p1 = model.probabilities(c, "upgrade")
    offered = model.respond(c, "upgrade", True, np.random.default_rng(0))
    held = model.respond(c, "upgrade", False, np.random.default_rng(1))
    assert abs(offered.mean() - p1.mean()) < 0.01 and abs(held.mean() - p0.mean()) < 0.01
    truth = model.effect_by_tier(c, "upgrade")
    assert set(truth) == {"standard", "silver", "gold", "platinum"}


def test_sure_things_have_the_higher_base_propensity_of_what_the_models_learn() -> None:
    c = customers()
    types = ResponseModel(0).types(c, "upgrade")
    growth = c["txn_count_change_90d"].to_numpy()
    assert growth[types == "sure_thing"].mean() > growth[types == "persuadable"].mean() + 0.3, (
        "sure things grow fastest, which drives the demo's upgrades and so the propensity model"
    )


def test_an_unknown_action_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown action 'yacht'"):
        ResponseModel(0).types(customers(10), "yacht")


def test_hidden_acceptance_is_fixed_by_seed_and_another_seed_differs() -> None:
    a, b, other = HiddenAcceptance(1), HiddenAcceptance(1), HiddenAcceptance(2)
    cells = [(x, t) for x in ("savings", "mortgage", "retention") for t in TIER_ORDER]
    first = [a.acceptance(x, t, 0.1, 5) for x, t in cells]
    assert first == [b.acceptance(x, t, 0.1, 5) for x, t in cells], "a seed fixes every cell"
    assert first != [other.acceptance(x, t, 0.1, 5) for x, t in cells], "another seed differs"


def test_gold_customers_take_investments_at_twice_the_models_chance_and_standard_at_half() -> None:
    hidden = HiddenAcceptance(0)
    assert hidden.acceptance("investment", "gold", 0.1, 0) == pytest.approx(0.2)
    assert hidden.acceptance("investment", "standard", 0.1, 0) == pytest.approx(0.05)


def test_acceptance_drifts_slowly_and_stays_a_probability() -> None:
    hidden = HiddenAcceptance(0)
    start = hidden.multiplier("savings", "silver", 0)
    one, twenty = (
        hidden.multiplier("savings", "silver", 1),
        hidden.multiplier("savings", "silver", 20),
    )
    assert one != start, "every cell drifts"
    assert abs(np.log(one / start)) < 0.1, "by a little per period"
    assert abs(np.log(twenty / start)) > abs(np.log(one / start)), "and further over time"
    assert hidden.acceptance("investment", "gold", 0.9, 0) == HiddenAcceptance.MAX_ACCEPTANCE


def test_the_new_action_has_its_own_rate_and_every_other_action_needs_q() -> None:
    hidden = HiddenAcceptance(0)
    rates = [hidden.acceptance(NEW_ACTION, t, None, 0) for t in TIER_ORDER]
    assert all(0 < r < 1 for r in rates) and len(set(rates)) == len(rates), rates
    with pytest.raises(ValueError, match="needs its offline propensity"):
        hidden.acceptance("savings", "gold", None, 0)


def test_agents_skip_more_under_high_pressure_and_lower_in_the_list() -> None:
    hidden = HiddenAcceptance(0)
    assert hidden.skip("low", 1) < hidden.skip("normal", 1) < hidden.skip("high", 1)
    assert hidden.skip("normal", 3) > hidden.skip("normal", 1)
    with pytest.raises(ValueError, match="unknown queue pressure"):
        hidden.skip("frantic", 1)
