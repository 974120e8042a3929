"""The batch's allocation under caps: hand-made cases with a known optimum."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from batch.allocate import allocate
from batch.runs import BatchError
from serving.capacity import CapacityConfig


def frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """Candidates in the policy's order per customer (order counts up within a customer)."""
    out = pd.DataFrame(rows, columns=["customer_id", "action", "expected_value"])
    out["order"] = out.groupby("customer_id").cumcount() + 1
    return out


def chosen(c: pd.DataFrame, mask: np.ndarray) -> set[tuple[str, str]]:
    return set(zip(c["customer_id"][mask], c["action"][mask], strict=True))


def caps(**settings) -> CapacityConfig:
    return CapacityConfig.model_validate(settings)


CANDIDATES = frame(
    [
        ("A", "card", 50.0),
        ("A", "savings", 40.0),
        ("B", "card", 45.0),
        ("B", "savings", 5.0),
        ("C", "card", 30.0),
        ("C", "savings", 20.0),
    ]
)


def test_without_caps_each_customer_gets_the_policys_top_k():
    mask = allocate(CANDIDATES, CapacityConfig(), "batch", top=1)
    assert chosen(CANDIDATES, mask) == {("A", "card"), ("B", "card"), ("C", "card")}


def test_a_stock_cap_goes_where_it_adds_most_and_the_rest_fill_in():
    # Given 1 card offer for three customers, one offer each: the optimum gives the card to
    # B (45, whose savings is worth 5), and savings to A (40) and C (20): 105, not the
    # greedy 50 + 5 + 20 = 75
    mask = allocate(CANDIDATES, caps(actions={"card": {"offers": 1}}), "batch", top=1)
    assert chosen(CANDIDATES, mask) == {("A", "savings"), ("B", "card"), ("C", "savings")}


def test_a_budget_with_costs_is_a_knapsack_solved_to_its_optimum():
    # Given a savings budget of 100 at 40 an offer (2 offers) and 2 offers each
    c = frame([(f"C{i}", "savings", float(v)) for i, v in enumerate([10, 30, 20, 25])])
    mask = allocate(c, caps(actions={"savings": {"budget": 100, "cost": 40}}), "batch", top=2)
    assert chosen(c, mask) == {("C1", "savings"), ("C3", "savings")}, "the two worth most"


def test_a_channel_cap_limits_every_offer_of_the_runs_channel_only():
    capacity = caps(channels={"batch": 2})
    assert allocate(CANDIDATES, capacity, "batch", top=2).sum() == 2
    assert allocate(CANDIDATES, capacity, "phone", top=2).sum() == 6, "not the run's channel"


@pytest.mark.parametrize("top", [1, 2, 3])
def test_a_random_base_respects_every_cap_and_k_and_repeats_exactly(top):
    # Given 300 customers x 4 actions with random values and caps on three of them
    rng = np.random.default_rng(7)
    rows = [(f"C{i:03d}", a, float(rng.gamma(2, 20))) for i in range(300) for a in "wxyz"]
    c = frame(rows)
    capacity = caps(
        actions={"w": {"offers": 40}, "x": {"budget": 500, "cost": 12.5}, "y": {"offers": 0}},
        channels={"batch": 400},
    )
    mask = allocate(c, capacity, "batch", top=top)
    offered = c[mask]
    assert (offered["action"] == "w").sum() <= 40
    assert (offered["action"] == "x").sum() * 12.5 <= 500
    assert (offered["action"] == "y").sum() == 0
    assert len(offered) <= 400
    assert offered.groupby("customer_id").size().max() <= top
    assert (allocate(c, capacity, "batch", top=top) == mask).all(), "the same input, the same"


def test_missing_columns_are_refused_naming_them():
    with pytest.raises(BatchError, match="order"):
        allocate(CANDIDATES.drop(columns="order"), CapacityConfig(), "batch", 1)
