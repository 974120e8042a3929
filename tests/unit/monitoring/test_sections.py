"""Monitoring sections: which as-of dates the realized performance backtests."""

from __future__ import annotations

import datetime as dt

from features.contract import load_dataset
from features.values import months_back
from monitoring.sections import backtest_dates


def test_backtest_dates_end_where_the_horizon_has_passed(make_dataset):
    # base tables end 2024-02-01; with a 90-day horizon the last labelled date is 2023-11-03
    ds = load_dataset(make_dataset(settings={"horizon_days": 90}))
    assert backtest_dates(ds, dt.date(2024, 1, 15), 3) == [
        dt.date(2023, 9, 3),
        dt.date(2023, 10, 3),
        dt.date(2023, 11, 3),
    ]
    assert backtest_dates(ds, dt.date(2023, 10, 20), 1) == [dt.date(2023, 10, 20)]


def test_no_backtest_date_when_no_horizon_has_passed(make_dataset):
    ds = load_dataset(make_dataset(settings={"horizon_days": 400}))
    assert backtest_dates(ds, dt.date(2024, 1, 15), 3) == [], (
        "every date is before the first signup"
    )


def test_months_back_clamps_to_the_end_of_the_month():
    assert months_back(dt.date(2026, 3, 31), 1) == dt.date(2026, 2, 28)
    assert months_back(dt.date(2026, 3, 15), 0) == dt.date(2026, 3, 15)
