"""A customer's own recent history for talking points and the card: hand-checked, point in time."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from features.contract import load_dataset
from features.history import COLUMNS, build_history
from tests.unit.features.test_pipeline import AS_OF, SETTINGS, tables, with_future


@pytest.fixture
def history(make_dataset) -> pd.DataFrame:
    return build_history(load_dataset(make_dataset(tables(), SETTINGS)), [AS_OF]).set_index(
        "customer_id"
    )


def test_the_last_transactions_come_latest_first(history):
    a = history.loc["A"]
    assert (a.last_transaction_date, a.last_transaction_amount) == (AS_OF, 10.0)
    dates = [a[f"txn_{i}_date"] for i in range(2, 6)]
    assert dates == [AS_OF - dt.timedelta(d) for d in (29, 30, 100, 364)], dates
    assert [a[f"txn_{i}_amount"] for i in range(2, 6)] == [5.0, 20.0, -3.0, 7.0]
    assert a.txn_5_product is None, "a transaction without a product stays without one"
    assert history.loc["B"].txn_2_date is None, "B has one transaction only"


def test_monthly_amounts_cover_the_last_365_days_latest_month_first(history):
    a = history.loc["A"]
    months = [a[f"spend_month_{m}"] for m in range(1, 13)]
    assert months[0] == 35.0, "ages 0, 29 and 30 fall in the latest of 12 equal months"
    assert months[3] == -3.0 and months[11] == 7.0, months
    assert sum(months) == 39.0, "the row 365 days back is outside the year"
    assert [history.loc["C"][f"spend_month_{m}"] for m in range(1, 13)] == [0.0] * 12


def test_tier_changes_are_the_latest_rows_on_or_before_the_date(history):
    a = history.loc["A"]
    assert (a.tier_change_1_date, a.tier_change_1_tier) == (dt.date(2023, 12, 1), "major")
    assert (a.tier_change_2_date, a.tier_change_2_tier) == (dt.date(2020, 3, 31), "small")
    assert a.tier_change_3_date is None


def test_a_closure_shows_only_once_it_has_happened(make_dataset):
    later = with_future(tables(), AS_OF)  # B closes the day after AS_OF
    ds = load_dataset(make_dataset(later, SETTINGS))
    before = build_history(ds, [AS_OF]).set_index("customer_id")
    assert before.loc["B"].closed_date is None, "a closure after the date is the future"
    assert set(COLUMNS) <= set(before.columns)


def test_rows_after_the_date_change_no_history(make_dataset):
    base = build_history(load_dataset(make_dataset(tables(), SETTINGS, name="base")), [AS_OF])
    later_ds = load_dataset(make_dataset(with_future(tables(), AS_OF), SETTINGS, name="later"))
    later = build_history(later_ds, [AS_OF])
    pd.testing.assert_frame_equal(base, later)
