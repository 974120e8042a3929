"""Outcome attribution on hand-made tables: windows, arms, value, pending and unknown customers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.contract import load_dataset
from monitoring.outcomes import (
    attribute_outcomes,
    batch_actions,
    record_outcomes,
    service_actions,
)
from serving.decisions import DecisionLog, DecisionRecord, read_decisions, read_outcomes

DECIDED = dt.datetime(2026, 6, 2, 9, 30, tzinfo=dt.UTC)  # decision date d = 2026-06-02
H = 30  # the window is (2026-06-02, 2026-07-02]
END = dt.date(2026, 7, 2)
SETTINGS = {"horizon_days": H, "data_end": "2026-12-31", "tier_order": ["bronze", "silver"]}


def day(offset: int) -> str:
    """ISO date ``offset`` days from the decision date."""
    return (DECIDED.date() + dt.timedelta(days=offset)).isoformat()


def tables(closed: dict[str, str | None], opened: dict[str, str], rises: set[str]) -> dict:
    """Customers with closures, one ``card`` opening each, and tier rises (bronze to silver)."""
    ids = list(closed)
    return {
        "customers": pd.DataFrame(
            {
                "customer_id": ids,
                "signup_date": ["2025-01-01"] * len(ids),
                "closed_date": closed.values(),
            }
        ),
        "transactions": pd.DataFrame(
            {
                "customer_id": ["value"] * 6 + ids,
                "ts": [f"{day(o)}T12:00:00Z" for o in (-3, 0, 8, H, H + 1, 5)]
                + [f"{day(-10)}T08:00:00Z"] * len(ids),
                "amount": [1000.0, 500.0, 10.25, 5.0, 100.0, 0.5] + [1.0] * len(ids),
                "product": [None] * (6 + len(ids)),
                "channel": [None] * (6 + len(ids)),
            }
        ),
        "holdings": pd.DataFrame(
            {
                "customer_id": list(opened),
                "product": ["card"] * len(opened),
                "opened": list(opened.values()),
                "closed": [None] * len(opened),
                "monthly_fee": [np.nan] * len(opened),
            }
        ),
        "tiers": pd.DataFrame(
            {
                "customer_id": [*ids, *sorted(rises)],
                "tier": ["bronze"] * len(ids) + ["silver"] * len(rises),
                "effective": ["2025-01-01"] * len(ids) + [day(10)] * len(rises),
            }
        ),
    }


@pytest.fixture
def dataset(make_dataset):
    """Customers for every case of the window, closures and tier changes."""
    closed = {
        c: None
        for c in ("before", "same_day", "inside", "last_day", "after", "value", "rises", "flat")
    }
    closed |= {"leaves": day(18), "leaves_later": day(H + 8)}
    opened = {
        "before": day(-1),
        "same_day": day(0),
        "inside": day(13),
        "last_day": day(H),
        "after": day(H + 1),
    }
    return load_dataset(make_dataset(tables(closed, opened, {"rises"}), SETTINGS, fmt="parquet"))


def decision(customer_id: str, offered: list[tuple[str, str]], **changes) -> DecisionRecord:
    """A logged decision that offered (kind, action) pairs, cross-sell actions being products."""
    suggestions = [
        {
            "suggestion_id": f"{customer_id}-{i}",
            "rank": i + 1,
            "kind": kind,
            "action": action,
            "product": action if kind == "cross_sell" else None,
            "probability": 0.25,
        }
        for i, (kind, action) in enumerate(offered)
    ]
    values = {
        "decision_id": f"d-{customer_id}",
        "customer_id": customer_id,
        "created_at": DECIDED,
        "context": {"channel": "phone", "tier": "bronze"},
        "probabilities": {},
        "suggestions": suggestions,
        "control": False,
        "model_versions": {},
    }
    return DecisionRecord(**{**values, **changes})


def logged(tmp_path, decisions: list[DecisionRecord]) -> pd.DataFrame:
    """The decisions recorded in a real log and read back as offered and held-out actions."""
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    log = DecisionLog(url)
    for d in decisions:
        log.record(d)
    log.close()
    return service_actions(read_decisions(url))


def outcome_of(result, customer_id: str, action: str) -> tuple[int, float]:
    rows = result.rows[
        (result.rows["customer_id"] == customer_id) & (result.rows["action"] == action)
    ]
    assert len(rows) == 1, f"one outcome row for {customer_id}/{action}, got {len(rows)}"
    return int(rows["outcome"].iloc[0]), float(rows["value"].iloc[0])


def test_an_opening_counts_only_after_the_decision_day_and_within_the_horizon(dataset, tmp_path):
    # Given card offers to customers who opened a card before, on, inside and after the window
    cases = ["before", "same_day", "inside", "last_day", "after"]
    actions = logged(tmp_path, [decision(c, [("cross_sell", "card")]) for c in cases])
    # When attributed once the horizon has passed
    result = attribute_outcomes(dataset, actions, END)
    # Then only openings in (d, d+H] are outcomes
    got = {c: outcome_of(result, c, "card")[0] for c in cases}
    assert got == {"before": 0, "same_day": 0, "inside": 1, "last_day": 1, "after": 0}, got
    assert (result.rows["horizon_end"] == END).all(), "the horizon ends at d + H"


def test_value_sums_only_the_transactions_within_the_window(dataset, tmp_path):
    # Given a customer with transactions before, on the day of, inside and after the window
    actions = logged(tmp_path, [decision("value", [("cross_sell", "card")])])
    # When attributed
    result = attribute_outcomes(dataset, actions, END)
    # Then the value is the sum of those dated in (d, d+H]: 10.25 + 5.0 + 0.5
    assert outcome_of(result, "value", "card") == (0, 15.75)


def test_retention_is_the_customer_still_open_at_the_horizon(dataset, tmp_path):
    offered = [("retention", "retention")]
    cases = ["leaves", "leaves_later", "flat"]
    actions = logged(tmp_path, [decision(c, offered) for c in cases])
    result = attribute_outcomes(dataset, actions, END)
    got = {c: outcome_of(result, c, "retention")[0] for c in cases}
    assert got == {"leaves": 0, "leaves_later": 1, "flat": 1}, "a closure after d+H is still open"


def test_retention_under_inactive_is_a_transaction_in_the_window(dataset, tmp_path):
    actions = logged(
        tmp_path, [decision(c, [("retention", "retention")]) for c in ("value", "flat")]
    )
    result = attribute_outcomes(dataset, actions, END, churn_definition="inactive")
    assert outcome_of(result, "value", "retention")[0] == 1, "active within the window"
    assert outcome_of(result, "flat", "retention")[0] == 0, "only a transaction before d"


def test_an_upgrade_is_the_tier_rank_rising_by_the_horizon(dataset, tmp_path):
    actions = logged(tmp_path, [decision(c, [("upgrade", "upgrade")]) for c in ("rises", "flat")])
    result = attribute_outcomes(dataset, actions, END)
    assert outcome_of(result, "rises", "upgrade")[0] == 1, "bronze at d, silver at d+H"
    assert outcome_of(result, "flat", "upgrade")[0] == 0


def test_held_out_actions_get_the_holdout_arm_and_other_not_shown_none(dataset, tmp_path):
    # Given a decision that offered a card, held out the upgrade and cut retention by the limit
    not_shown = [
        {
            "kind": "upgrade",
            "action": "upgrade",
            "product": None,
            "reason": "holdout",
            "probability": 0.4,
        },
        {"kind": "retention", "action": "retention", "product": None, "reason": "cut_by_limit"},
    ]
    actions = logged(tmp_path, [decision("rises", [("cross_sell", "card")], not_shown=not_shown)])
    # When attributed
    result = attribute_outcomes(dataset, actions, END)
    # Then the offered card and the held-out upgrade have rows, the cut action none
    arms = dict(zip(result.rows["action"], result.rows["arm"], strict=True))
    assert arms == {"card": "offered", "upgrade": "holdout"}, arms
    held = result.rows[result.rows["arm"] == "holdout"].iloc[0]
    assert held["probability"] == 0.4 and held["outcome"] == 1, "the holdout keeps its propensity"
    assert held["tier"] == "bronze" and held["channel"] == "phone" and held["source"] == "service"


def test_a_decision_stays_pending_until_its_horizon_has_passed(dataset, tmp_path):
    actions = logged(tmp_path, [decision("inside", [("cross_sell", "card")])])
    # When attributed the day before the horizon ends, then on that day
    early = attribute_outcomes(dataset, actions, END - dt.timedelta(days=1))
    due = attribute_outcomes(dataset, actions, END)
    # Then it is pending first, and has its outcome once the horizon has passed
    assert early.rows.empty and early.pending == 1, "no row while the horizon is open"
    assert len(due.rows) == 1 and due.pending == 0


def test_a_horizon_past_the_data_end_is_pending(make_dataset, dataset, tmp_path):
    # Given data that ends the day before the horizon does
    short = {**SETTINGS, "data_end": (END - dt.timedelta(days=1)).isoformat()}
    base = {
        name: dataset.con.execute(f"SELECT * FROM {name}").df() for name in sorted(dataset.tables)
    }
    ds = load_dataset(make_dataset(base, short, fmt="parquet", name="short"))
    actions = logged(tmp_path, [decision("inside", [("cross_sell", "card")])])
    # When attributed as of a later date, then the outcome waits for the data
    result = attribute_outcomes(ds, actions, END + dt.timedelta(days=30))
    assert result.rows.empty and result.pending == 1, "the data does not cover the window yet"


def test_decisions_after_the_as_of_day_are_not_read(dataset, tmp_path):
    actions = logged(tmp_path, [decision("inside", [("cross_sell", "card")])])
    result = attribute_outcomes(dataset, actions, DECIDED.date() - dt.timedelta(days=1))
    assert result.decisions == {} and result.pending == 0 and result.rows.empty


def test_a_customer_unknown_to_the_data_is_reported(dataset, tmp_path):
    # Given a decision for a customer the data does not have, beside a known one
    decisions = [
        decision("ghost", [("cross_sell", "card")]),
        decision("inside", [("cross_sell", "card")]),
    ]
    # When attributed
    result = attribute_outcomes(dataset, logged(tmp_path, decisions), END)
    # Then it is reported and the known one still gets its outcome
    assert result.unknown == ("d-ghost",), "the unknown customer's decision is named"
    assert result.rows["customer_id"].tolist() == ["inside"]
    assert result.decisions == {"service": 2}


def test_batch_decisions_are_attributed_from_the_as_of_date(dataset):
    # Given a batch output for as-of d-1 (decided as that day ends) with a card offered and
    # retention held out
    output = pd.DataFrame(
        {
            "customer_id": ["inside", "leaves"],
            "as_of": [dt.date(2026, 6, 1)] * 2,
            "tier": ["bronze", "bronze"],
            "control": [False, True],
            "churn_probability": [0.1, 0.7],
            "suggestion_1_kind": ["cross_sell", None],
            "suggestion_1_action": ["card", None],
            "suggestion_1_product": ["card", None],
            "suggestion_1_probability": [0.3, np.nan],
            "suggestion_1_expected_value": [12.0, np.nan],
            "holdout_actions": [[], ["retention"]],
        }
    )
    actions = batch_actions(output, dt.datetime(2026, 6, 2, tzinfo=dt.UTC), channel="batch")
    # When attributed once (2026-06-01, 2026-07-01] has passed
    result = attribute_outcomes(dataset, actions, dt.date(2026, 7, 1))
    # Then both are batch rows with their arms, ids and the held-out churn probability
    rows = result.rows.set_index("decision_id")
    assert rows.loc["batch:2026-06-01:inside", ["action", "arm", "outcome"]].tolist() == [
        "card",
        "offered",
        1,
    ]
    held = rows.loc["batch:2026-06-01:leaves"]
    assert [held["action"], held["arm"], held["outcome"]] == ["retention", "holdout", 0]
    assert held["probability"] == 0.7 and bool(held["control"]) and held["channel"] == "batch"
    assert (result.rows["source"] == "batch").all()
    assert (result.rows["horizon_end"] == dt.date(2026, 7, 1)).all(), "the window starts at as-of"


def test_the_predicted_uplift_reaches_the_stored_outcome_rows(dataset, tmp_path):
    # Given a logged decision whose card offer and held-out upgrade kept their predicted
    # uplift, and a batch decision (the batch output keeps none)
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    held = {"kind": "upgrade", "action": "upgrade", "reason": "holdout", "uplift": -0.05}
    offered = decision("inside", [("cross_sell", "card")], not_shown=[held])
    offered.suggestions[0]["uplift"] = 0.12
    no_model = decision("rises", [("cross_sell", "card")], decision_id="d-no-model")
    log = DecisionLog(url)
    for d in (offered, no_model):
        log.record(d)
    log.close()
    output = pd.DataFrame(
        {
            "customer_id": ["flat"],
            "as_of": [dt.date(2026, 6, 1)],
            "tier": ["bronze"],
            "control": [False],
            "suggestion_1_kind": ["cross_sell"],
            "suggestion_1_action": ["card"],
            "suggestion_1_product": ["card"],
            "suggestion_1_probability": [0.3],
        }
    )
    batch = batch_actions(output, dt.datetime(2026, 6, 2, tzinfo=dt.UTC))
    # When their outcomes are recorded and read back
    record_outcomes(dataset, url, END, batch=[batch])
    stored = read_outcomes(url).set_index(["decision_id", "action"])["uplift"]
    # Then each row has the uplift its decision logged, NaN where there was none
    assert stored[("d-inside", "card")] == 0.12
    assert stored[("d-inside", "upgrade")] == -0.05, "a held-out entry keeps its uplift too"
    assert np.isnan(stored[("d-no-model", "card")]), "no uplift model at the decision: NaN"
    assert np.isnan(stored[("batch:2026-06-01:flat", "card")]), "the batch output has none"
