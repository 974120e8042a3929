"""Targets (docs/data-contract.md, "Targets"): hand-checked per definition on small tables."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.contract import load_dataset
from features.labels import build_labels, default_as_of, label_end

T = dt.date(2024, 3, 31)
H = 30  # the horizon is (T, T+30] = (2024-03-31, 2024-04-30]
SETTINGS = {"horizon_days": H, "data_end": "2024-12-31"}


def day(offset: int) -> str:
    """ISO date ``offset`` days from T."""
    return (T + dt.timedelta(days=offset)).isoformat()


def ts(offset: int, time: str = "12:00:00") -> str:
    return f"{day(offset)}T{time}Z"


def customers(closed: dict[str, str | None], signup: dict[str, str] | None = None) -> pd.DataFrame:
    ids = list(closed)
    signup = signup or {}
    return pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": [signup.get(c, "2023-01-01") for c in ids],
            "closed_date": [closed[c] for c in ids],
        }
    )


def transactions(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": [r[1] for r in rows],
            "amount": [r[2] for r in rows],
            "product": [None] * len(rows),
            "channel": [None] * len(rows),
        }
    )


def holdings(rows: list[tuple[str, str, str, str | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "product", "opened", "closed"])
    frame["monthly_fee"] = np.nan
    return frame


def labels_of(frame: pd.DataFrame, column: str) -> dict[str, float]:
    """customer_id -> label, with NaN as None so dicts compare."""
    return {
        c: (None if pd.isna(v) else v)
        for c, v in zip(frame["customer_id"], frame[column], strict=True)
    }


def test_churn_closed_counts_closures_inside_the_horizon(make_dataset):
    # given closures on the first and last day of (t, t+H], just after it, and never
    tables = {
        "customers": customers(
            {"first": day(1), "last": day(H), "after": day(H + 1), "never": None}
        ),
        "transactions": transactions([("never", ts(-5), 1.0)]),
    }
    ds = load_dataset(make_dataset(tables, settings=SETTINGS))
    # when labelled
    frame = build_labels(ds, [T], churn_definition="closed")
    # then churn is 1 exactly for closures in (t, t+H]
    assert labels_of(frame, "churn") == {"after": 0.0, "first": 1.0, "last": 1.0, "never": 0.0}


def test_population_excludes_not_yet_signed_up_and_already_closed(make_dataset):
    # given a customer signing up after t, one closed on t, one closed before t
    tables = {
        "customers": customers(
            {"late": None, "on_t": day(0), "gone": day(-10), "here": None},
            signup={"late": day(1)},
        ),
        "transactions": transactions([("here", ts(-5), 1.0)]),
    }
    ds = load_dataset(make_dataset(tables, settings=SETTINGS))
    frame = build_labels(ds, [T])
    # then only the population at t has a row
    assert frame["customer_id"].tolist() == ["here"], frame


def test_churn_inactive_needs_activity_in_the_prior_year(make_dataset):
    # given purchases around t-365 days, t, and t+H
    tables = {
        "customers": customers({c: None for c in ["edge", "stays", "late", "none", "on_t"]}),
        "transactions": transactions(
            [
                ("edge", ts(-365), 5.0),  # first day of [t-365, t]: active before, none after
                ("stays", ts(-100), 5.0),
                ("stays", ts(H, "23:00:00"), 5.0),  # last day of (t, t+H]: still active
                ("late", ts(-10), 5.0),
                ("late", ts(H + 1), 5.0),  # after the horizon: churned
                ("none", ts(-366), 5.0),  # before the prior year: label undefined
                ("none", ts(5), 5.0),
                ("on_t", ts(0, "23:59:59"), 5.0),  # on t counts as before
                ("on_t", ts(1, "00:00:00"), 5.0),
            ]
        ),
    }
    ds = load_dataset(make_dataset(tables, settings=SETTINGS))
    # when labelled with the inactive definition
    frame = build_labels(ds, [T], churn_definition="inactive")
    # then
    assert labels_of(frame, "churn") == {
        "edge": 1.0,
        "late": 1.0,
        "none": None,
        "on_t": 0.0,
        "stays": 0.0,
    }


def test_upgrade_from_tiers_table(make_dataset):
    tables = {
        "customers": customers(
            {c: None for c in ["up", "too_late", "top", "down"]} | {"closes": day(10)}
        ),
        "transactions": transactions([("up", ts(-5), 1.0)]),
        "tiers": pd.DataFrame(
            [
                ("up", "silver", "2023-01-01"),
                ("up", "gold", day(H)),  # moves up on the last day of the horizon
                ("too_late", "silver", "2023-01-01"),
                ("too_late", "gold", day(H + 1)),
                ("top", "gold", "2023-06-01"),
                ("down", "silver", "2023-01-01"),
                ("down", "bronze", day(5)),
            ],
            columns=["customer_id", "tier", "effective"],
        ),
    }
    settings = SETTINGS | {"tier_order": ["bronze", "silver", "gold"]}
    ds = load_dataset(make_dataset(tables, settings=settings))
    # when labelled
    frame = build_labels(ds, [T])
    # then upgrade = higher tier rank at t+H; top tier undefined; closing is no upgrade
    assert labels_of(frame, "upgrade") == {
        "closes": 0.0,
        "down": 0.0,
        "too_late": 0.0,
        "top": None,
        "up": 1.0,
    }


def test_upgrade_from_value_tiers_without_tiers_table(make_dataset):
    # given 20 customers with values 100..2000; C01 (small) spends 50,000 inside the horizon
    ids = [f"C{i:02d}" for i in range(1, 21)]
    tables = {
        "customers": customers(dict.fromkeys(ids)),
        "transactions": transactions(
            [(c, ts(-30), 100.0 * i) for i, c in enumerate(ids, start=1)]
            + [("C01", ts(H), 50_000.0), ("C05", ts(H + 1), 50_000.0)]
        ),
    }
    ds = load_dataset(make_dataset(tables, settings=SETTINGS))
    # when labelled
    upgrade = labels_of(build_labels(ds, [T]), "upgrade")
    # then C01 reaches VIP by t+H, C05's spend comes too late, C20 (VIP at t) is undefined
    assert upgrade["C01"] == 1.0
    assert upgrade["C05"] == 0.0, "a purchase after t+H must not count"
    assert upgrade["C20"] is None, "the top tier at t cannot move up"
    assert upgrade["C19"] == 0.0, "staying major is no upgrade"


def test_cross_sell_held_not_held_and_opened_at_the_edges(make_dataset):
    tables = {
        "customers": customers({c: None for c in ["A", "B", "C", "D"]}),
        "transactions": transactions([("D", ts(-5), 1.0)]),
        "holdings": holdings(
            [
                ("A", "checking", "2023-01-01", None),  # held at t: undefined
                ("A", "savings", day(H), None),  # opened on the last day: 1
                ("A", "loan", day(H + 1), None),  # opened after the horizon: 0
                ("B", "checking", "2023-01-01", day(0)),  # closed on t: not held
                ("B", "checking", day(1), None),  # reopened on the first day: 1
                ("B", "loan", "2023-01-01", day(1)),  # still open at t: undefined
                ("C", "savings", day(0), None),  # opened on t: held
            ]
        ),
    }
    ds = load_dataset(make_dataset(tables, settings=SETTINGS))
    # when labelled with the default products
    frame = build_labels(ds, [T])
    # then every product in holdings gets a sorted column, with the hand-checked values
    product_columns = [c for c in frame.columns if c.startswith("cross_sell:")]
    assert product_columns == ["cross_sell:checking", "cross_sell:loan", "cross_sell:savings"]
    assert labels_of(frame, "cross_sell:checking") == {"A": None, "B": 1.0, "C": 0.0, "D": 0.0}
    assert labels_of(frame, "cross_sell:savings") == {"A": 1.0, "B": 0.0, "C": None, "D": 0.0}
    assert labels_of(frame, "cross_sell:loan") == {"A": 0.0, "B": None, "C": 0.0, "D": 0.0}


def test_chosen_products_and_no_holdings_table(make_dataset):
    tables = {
        "customers": customers({"A": None}),
        "transactions": transactions([("A", ts(-5), 1.0)]),
    }
    ds = load_dataset(make_dataset(tables, settings=SETTINGS))
    frame = build_labels(ds, [T])
    assert list(frame.columns) == ["customer_id", "as_of", "churn", "upgrade"]
    with pytest.raises(ValueError, match="holdings"):
        build_labels(ds, [T], products=["checking"])


def test_horizon_beyond_data_end_raises_naming_the_date(make_dataset):
    tables = {
        "customers": customers({"A": None}),
        "transactions": transactions([("A", ts(-5), 1.0)]),
    }
    ds = load_dataset(make_dataset(tables, settings={"horizon_days": H, "data_end": day(H)}))
    # t + H = data_end is fine, one day later is not
    assert len(build_labels(ds, [T])) == 1
    late = T + dt.timedelta(days=1)
    with pytest.raises(ValueError, match=rf"{late}.*data_end {day(H)}"):
        build_labels(ds, [T, late])
    with pytest.raises(ValueError, match="churn_definition"):
        build_labels(ds, [T], churn_definition="left")


def test_default_as_of_steps_back_monthly_inside_the_data(make_dataset):
    # given data ending 2024-04-30 and H = 30: label end 2024-03-31; first signup 2024-01-15
    tables = {
        "customers": customers(
            {"A": None, "B": None}, signup={"A": "2024-01-15", "B": "2024-02-01"}
        ),
        "transactions": transactions([("A", ts(-5), 1.0)]),
    }
    ds = load_dataset(make_dataset(tables, settings={"horizon_days": H, "data_end": "2024-04-30"}))
    assert label_end(ds) == T
    assert label_end(ds, horizon_days=60) == dt.date(2024, 3, 1)
    # when 4 monthly dates are asked for
    dates = default_as_of(ds, count=4)
    # then month ends clamp (29 February), and December is dropped (before any signup)
    assert dates == [dt.date(2024, 1, 31), dt.date(2024, 2, 29), T]
    assert len(build_labels(ds, dates)) == 1 + 2 + 2, "the dates label without error"


def test_labels_ignore_rows_after_the_horizon_and_match_per_date(make_dataset):
    # given a dataset, and the same with rows dated after t+H added
    base = {
        "customers": customers({"A": None, "B": None, "C": day(20)}),
        "transactions": transactions([("A", ts(-40), 10.0), ("B", ts(-300), 20.0)]),
        "holdings": holdings(
            [("A", "checking", "2023-01-01", None), ("B", "savings", day(3), None)]
        ),
    }
    later = {name: frame.copy() for name, frame in base.items()}
    later["customers"].loc[later["customers"]["customer_id"] == "A", "closed_date"] = day(H + 2)
    later["customers"] = pd.concat(
        [later["customers"], customers({"N": None}, signup={"N": day(1)})], ignore_index=True
    )
    later["transactions"] = pd.concat(
        [later["transactions"], transactions([("B", ts(H + 1), 1e5), ("N", ts(2), 5.0)])],
        ignore_index=True,
    )
    later["holdings"] = pd.concat(
        [later["holdings"], holdings([("A", "savings", day(H + 1), None)])], ignore_index=True
    )
    dates = [T - dt.timedelta(days=60), T]
    before = build_labels(load_dataset(make_dataset(base, settings=SETTINGS, name="b")), dates)
    after = build_labels(load_dataset(make_dataset(later, settings=SETTINGS, name="a")), [T])
    # then labels at t are unchanged (N signed up after t has no row) ...
    at_t = before[before["as_of"] == pd.Timestamp(T)].reset_index(drop=True)
    pd.testing.assert_frame_equal(at_t, after, obj="labels at t with and without later rows")
    # ... and two dates at once equal one date at a time
    ds = load_dataset(make_dataset(base, settings=SETTINGS, name="c"))
    alone = pd.concat([build_labels(ds, [d]) for d in dates]).sort_values(
        ["customer_id", "as_of"], ignore_index=True
    )
    pd.testing.assert_frame_equal(before, alone, obj="two dates at once vs one at a time")
    assert labels_of(at_t, "churn") == {"A": 0.0, "B": 0.0, "C": 1.0}
