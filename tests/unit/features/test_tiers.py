"""Value pyramid and service tiers: hand-checked on small tables."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from features.contract import load_dataset, validate_dataset
from features.spine import register_spine
from features.tier_schemes import ABC, PYRAMID, TierScheme, tier_reason
from features.tiers import assign_tiers, tier_rank_at, tier_sql

AS_OF = dt.date(2024, 6, 30)


def customers(ids: list[str], signup: str = "2023-01-01", closed=None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": [signup] * len(ids),
            "closed_date": closed if closed is not None else [None] * len(ids),
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


def holdings(rows: list[tuple[str, str, str, str | None, float | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["customer_id", "product", "opened", "closed", "monthly_fee"]
    ).astype({"monthly_fee": "float64"})


def twenty_customers() -> dict[str, pd.DataFrame]:
    """C01..C20 with 12-month values 100, 200, ..., 2000 (one purchase each)."""
    ids = [f"C{i:02d}" for i in range(1, 21)]
    return {
        "customers": customers(ids),
        "transactions": transactions(
            [(c, "2024-01-15T10:00:00Z", 100.0 * i) for i, c in enumerate(ids, start=1)]
        ),
    }


def by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("customer_id")


def test_pyramid_cuts_twenty_customers_by_count(make_dataset):
    # given 20 customers with distinct values
    ds = load_dataset(make_dataset(twenty_customers()))
    # when they are tiered with the default pyramid (5/15/30/50 % from the top)
    frame = by_customer(assign_tiers(ds, [AS_OF]))
    # then VIP 1, major 3, ordinary 6, small 10 customers, the best ones highest
    counts = frame["value_tier"].value_counts().to_dict()
    assert counts == {"VIP": 1, "major": 3, "ordinary": 6, "small": 10}, counts
    assert frame.loc["C20", "value_tier"] == "VIP"
    assert set(frame.index[frame["value_tier"] == "major"]) == {"C17", "C18", "C19"}
    assert set(frame.index[frame["value_tier"] == "ordinary"]) == {f"C{i}" for i in range(11, 17)}
    assert frame["value_tier_rank"].tolist() == [
        PYRAMID.names.index(t) for t in frame["value_tier"]
    ], "value_tier_rank must be the position of value_tier in the scheme, lowest 0"


def test_pyramid_thresholds_gaps_and_percentiles(make_dataset):
    ds = load_dataset(make_dataset(twenty_customers()))
    frame = by_customer(assign_tiers(ds, [AS_OF]))
    # thresholds are the lowest value in each tier
    assert frame.loc["C20", "tier_threshold"] == 2000.0
    assert frame.loc["C18", "tier_threshold"] == 1700.0
    assert frame.loc["C12", "tier_threshold"] == 1100.0
    assert frame.loc["C01", "tier_threshold"] == 100.0
    # the gap reaches the next tier's lowest value; nothing above the top
    assert frame.loc["C16", "next_tier"] == "major"
    assert frame.loc["C16", "gap_to_next_tier"] == pytest.approx(100.0)
    assert frame.loc["C01", "gap_to_next_tier"] == pytest.approx(1000.0)
    assert frame.loc["C19", "gap_to_next_tier"] == pytest.approx(100.0)
    assert frame.loc["C20", "next_tier"] is None and pd.isna(frame.loc["C20", "gap_to_next_tier"])
    # percentile: share of customers ranked at or below, 1 for the best
    assert frame.loc["C20", "value_percentile"] == pytest.approx(1.0)
    assert frame.loc["C01", "value_percentile"] == pytest.approx(0.05)
    assert frame.loc["C10", "value_percentile"] == pytest.approx(0.5)


def test_customers_of_equal_value_share_their_percentile_whatever_their_ids(make_dataset):
    # Given C01..C05 all worth 100 (ties), and the rest of the twenty as usual
    tables = twenty_customers()
    ids = [f"C{i:02d}" for i in range(1, 6)]
    tables["transactions"].loc[tables["transactions"].customer_id.isin(ids), "amount"] = 100.0
    frame = by_customer(assign_tiers(load_dataset(make_dataset(tables)), [AS_OF]))
    # Then each has the share ranked at or below the tie, not a position set by its id
    assert frame.loc[ids, "value_percentile"].tolist() == pytest.approx([0.25] * 5)
    assert frame.loc["C06", "value_percentile"] == pytest.approx(0.3)


def test_ties_are_broken_by_customer_id(make_dataset):
    # given 20 customers with the same value
    tables = twenty_customers()
    tables["transactions"]["amount"] = 50.0
    ds = load_dataset(make_dataset(tables))
    # when tiered
    frame = by_customer(assign_tiers(ds, [AS_OF]))
    # then the order is by customer_id, so the first id is the VIP, and nobody needs more value
    assert frame.loc["C01", "value_tier"] == "VIP", "ties must break by customer_id"
    assert frame["value_tier"].value_counts()["small"] == 10
    assert (frame["gap_to_next_tier"].dropna() == 0).all()


def test_abc_cuts_by_cumulative_value_share(make_dataset):
    # given 10 customers whose values sum to 1000
    values = [400, 200, 100, 100, 80, 50, 20, 20, 15, 15]
    ids = [f"K{i}" for i in range(10)]
    tables = {
        "customers": customers(ids),
        "transactions": transactions(
            [(c, "2024-03-01T00:00:00Z", float(v)) for c, v in zip(ids, values, strict=True)]
        ),
    }
    ds = load_dataset(make_dataset(tables))
    # when tiered ABC (A: top 80% of value, B: next 15%, C: the rest)
    frame = assign_tiers(ds, [AS_OF], ABC)
    # then each tier holds exactly its share of value
    shares = (frame.groupby("value_tier")["value"].sum() / 1000).to_dict()
    assert shares == pytest.approx({"A": 0.80, "B": 0.15, "C": 0.05}), shares
    assert frame.groupby("value_tier").size().to_dict() == {"A": 4, "B": 3, "C": 3}


def test_abc_customer_straddling_a_cut_goes_by_share_before_it(make_dataset):
    # given values 70, 20, 10: the second customer's share before it is 70% (< 80%)
    ids = ["X", "Y", "Z"]
    tables = {
        "customers": customers(ids),
        "transactions": transactions(
            [(c, "2024-03-01T00:00:00Z", v) for c, v in zip(ids, [70.0, 20.0, 10.0], strict=True)]
        ),
    }
    ds = load_dataset(make_dataset(tables))
    frame = by_customer(assign_tiers(ds, [AS_OF], ABC))
    # then X and Y are A (Y starts inside the top 80%), Z (share before 90%) is B
    assert frame["value_tier"].to_dict() == {"X": "A", "Y": "A", "Z": "B"}


def test_value_counts_window_edges_refunds_and_open_holdings_fees(make_dataset):
    # given one customer with purchases around the 365-day window and holdings around t
    tables = {
        "customers": customers(["A", "B"]),
        "transactions": transactions(
            [
                ("A", "2023-07-01T12:00:00Z", 1000.0),  # t-365 days: outside (t-365, t]
                ("A", "2023-07-02T00:00:00Z", 100.0),  # t-364 days: inside
                ("A", "2024-03-10T09:00:00Z", 40.5),
                ("A", "2024-03-11T09:00:00Z", -15.25),  # refund
                ("A", "2024-06-30T23:59:59Z", 10.0),  # on t: inside
                ("A", "2024-07-01T00:00:00Z", 999.0),  # after t
                ("B", "2024-01-01T00:00:00Z", 1.0),
            ]
        ),
        "holdings": holdings(
            [
                ("A", "checking", "2023-01-01", None, 10.0),  # open: 120
                ("A", "savings", "2023-01-01", None, None),  # no fee: 0
                ("A", "card", "2023-01-01", "2024-06-30", 50.0),  # closed at t: not open
                ("A", "loan", "2024-06-30", "2024-08-01", 5.0),  # opened at t, closes later: 60
                ("A", "mortgage", "2024-07-01", None, 100.0),  # opened after t
            ]
        ),
    }
    ds = load_dataset(make_dataset(tables))
    # when valued as of t
    frame = by_customer(assign_tiers(ds, [AS_OF]))
    # then value = 100 + 40.5 - 15.25 + 10 + 12 * (10 + 0 + 5)
    assert frame.loc["A", "value"] == pytest.approx(100 + 40.5 - 15.25 + 10 + 180), (
        "value is the net amount in (t-365, t] plus 12x the fees of holdings open at t"
    )
    assert frame.loc["B", "value"] == pytest.approx(1.0)


def test_rows_after_as_of_change_nothing(make_dataset):
    # given a dataset, and the same dataset with rows dated after t added
    base = twenty_customers()
    base["holdings"] = holdings([("C01", "checking", "2023-02-01", None, 30.0)])
    base["tiers"] = pd.DataFrame(
        {"customer_id": ["C02"], "tier": ["major"], "effective": ["2024-01-01"]}
    )
    later = {name: frame.copy() for name, frame in base.items()}
    later["customers"] = pd.concat(
        [later["customers"], customers(["NEW"], signup="2024-07-01")], ignore_index=True
    )
    later["customers"].loc[later["customers"]["customer_id"] == "C05", "closed_date"] = "2024-08-01"
    later["transactions"] = pd.concat(
        [
            later["transactions"],
            transactions(
                [("C01", "2024-07-01T00:00:00Z", 1e6), ("NEW", "2024-07-02T00:00:00Z", 5)]
            ),
        ],
        ignore_index=True,
    )
    later["holdings"] = pd.concat(
        [later["holdings"], holdings([("C03", "loan", "2024-07-01", None, 900.0)])],
        ignore_index=True,
    )
    later["tiers"] = pd.concat(
        [
            later["tiers"],
            pd.DataFrame({"customer_id": ["C02"], "tier": ["VIP"], "effective": ["2024-07-01"]}),
        ],
        ignore_index=True,
    )
    before = assign_tiers(load_dataset(make_dataset(base, name="before")), [AS_OF])
    after = assign_tiers(load_dataset(make_dataset(later, name="after")), [AS_OF])
    # then the tiers as of t are identical
    pd.testing.assert_frame_equal(before, after, obj="tiers as of t with and without later rows")


def test_every_population_customer_gets_exactly_one_tier(make_dataset):
    # given customers not yet signed up, closed on t, and closed after t
    tables = twenty_customers()
    frame = tables["customers"]
    frame.loc[frame["customer_id"] == "C01", "signup_date"] = "2024-07-01"
    frame.loc[frame["customer_id"] == "C02", "closed_date"] = "2024-06-30"
    frame.loc[frame["customer_id"] == "C03", "closed_date"] = "2024-07-01"
    ds = load_dataset(make_dataset(tables))
    result = assign_tiers(ds, [AS_OF])
    # then only the population at t is tiered, each customer once, each with a tier
    ids = result["customer_id"].tolist()
    assert "C01" not in ids and "C02" not in ids, "not signed up / closed on t: no row"
    assert "C03" in ids, "closing after t keeps the customer in the population at t"
    assert len(ids) == len(set(ids)) == 18
    assert result["value_tier"].notna().all()


def test_service_tier_from_tiers_table(make_dataset):
    # given a tiers table: A moved up twice (and repeated gold), B has no row, C only later
    tables = {
        "customers": pd.DataFrame(
            {
                "customer_id": ["A", "B", "C"],
                "signup_date": ["2023-01-01", "2024-06-01", "2023-01-01"],
                "closed_date": [None, None, None],
            }
        ),
        "transactions": transactions([("A", "2024-01-01T00:00:00Z", 10.0)]),
        "tiers": pd.DataFrame(
            {
                "customer_id": ["A", "A", "A", "C"],
                "tier": ["silver", "gold", "gold", "gold"],
                "effective": ["2024-01-01", "2024-03-01", "2024-05-01", "2024-07-01"],
            }
        ),
    }
    ds = load_dataset(make_dataset(tables, settings={"tier_order": ["bronze", "silver", "gold"]}))
    # when tiered as of 2024-06-30
    frame = by_customer(assign_tiers(ds, [AS_OF]))
    # then A is gold since 2024-03-01 (the repeat is no change), with 2 changes in a year
    assert frame.loc["A", "tier"] == "gold" and frame.loc["A", "tier_rank"] == 2
    assert frame.loc["A", "days_in_tier"] == (AS_OF - dt.date(2024, 3, 1)).days
    assert frame.loc["A", "tier_changes_365d"] == 2
    # B and C have no row on or before t: the lowest tier, since signup
    assert frame.loc["B", "tier"] == "bronze" and frame.loc["B", "tier_rank"] == 0
    assert frame.loc["B", "days_in_tier"] == 29
    assert frame.loc["C", "tier"] == "bronze", "a row effective after t must not count"
    assert frame.loc["C", "tier_changes_365d"] == 0
    # the value tier is still computed beside the service tier
    assert frame.loc["A", "value_tier"] == "VIP"


def test_without_tiers_table_service_tier_is_value_tier(make_dataset):
    ds = load_dataset(make_dataset(twenty_customers()))
    frame = assign_tiers(ds, [AS_OF])
    assert (frame["tier"] == frame["value_tier"]).all()
    assert (frame["tier_rank"] == frame["value_tier_rank"]).all()
    assert frame["days_in_tier"].isna().all() and frame["tier_changes_365d"].isna().all()


def test_reasons_state_the_rule_in_the_customers_terms(make_dataset):
    ds = load_dataset(make_dataset(twenty_customers()))
    frame = by_customer(assign_tiers(ds, [AS_OF]))
    vip, major = frame.loc["C20", "tier_reason"], frame.loc["C18", "tier_reason"]
    assert vip == (
        "your 12-month value of 2,000 puts you in the top 5% of customers, in our VIP tier; "
        "VIP starts at 2,000"
    ), vip
    assert major == (
        "your 12-month value of 1,800 puts you in the top 20% of customers, in our major tier; "
        "major starts at 1,700; 200 more would reach VIP"
    ), major
    abc = by_customer(assign_tiers(ds, [AS_OF], ABC)).loc["C20", "tier_reason"]
    assert abc.startswith("your 12-month value of 2,000 puts you in our A tier, the customers"), abc
    assert "top 80% of our business" in abc, abc


def test_reasons_never_state_a_negative_sum_or_a_threshold_for_the_lowest_tier():
    low = tier_reason(PYRAMID, "small", 0, -40.0, -120.0, "ordinary", 160.0)
    assert low == (
        "more refunded than spent over the last 12 months puts you in our small tier; "
        "160 more would reach ordinary"
    ), low
    assert "-" not in low


def test_value_tiers_come_from_the_dataset_settings(make_dataset):
    # Given ABC 80/20 named in the settings
    ds = load_dataset(make_dataset(twenty_customers(), {"value_tiers": "abc"}))
    frame = by_customer(assign_tiers(ds, [AS_OF]))
    # Then tiers and the service tier (no tiers table) use its names
    assert set(frame["value_tier"]) <= {"A", "B", "C"} and frame.loc["C20", "value_tier"] == "A"
    assert ds.tier_order == ["C", "B", "A"]
    custom = {"names": ["bronze", "gold"], "shares": [0.8, 0.2], "method": "quantile"}
    ds = load_dataset(make_dataset(twenty_customers(), {"value_tiers": custom}, name="custom"))
    assert by_customer(assign_tiers(ds, [AS_OF])).loc["C20", "value_tier"] == "gold"


def test_bad_value_tiers_are_refused_naming_the_setting(make_dataset):
    bad = {"names": ["a", "b"], "shares": [0.5, 0.6]}
    report = validate_dataset(make_dataset(twenty_customers(), {"value_tiers": bad}))
    assert any("value_tiers" in p.column and "sum to 1" in p.rule for p in report.problems), (
        report.render()
    )


@pytest.mark.parametrize(
    ("names", "shares", "method", "message"),
    [
        (("a", "a"), (0.5, 0.5), "quantile", "unique"),
        (("a", "b"), (0.5, 0.6), "quantile", "sum to 1"),
        (("a", "b"), (1.2, -0.2), "quantile", "positive"),
        (("a", "b"), (1.0, 0.0), "quantile", "positive"),
        (("a", "b"), (1.0,), "quantile", "one share per tier"),
        ((), (), "quantile", "at least one"),
        (("a", "b"), (0.5, 0.5), "median", "method"),
    ],
)
def test_invalid_schemes_are_rejected(names, shares, method, message):
    with pytest.raises(ValueError, match=message):
        TierScheme(names, shares, method)


def test_shares_summing_to_one_within_tolerance_are_accepted():
    scheme = TierScheme(("low", "mid", "high"), (1 / 3, 1 / 3, 1 / 3), "quantile")
    assert scheme.names == ("low", "mid", "high")


def test_multi_date_equals_one_date_at_a_time(make_dataset):
    # given customers with activity over two years and a tier history
    tables = twenty_customers()
    tables["transactions"] = pd.concat(
        [
            tables["transactions"],
            transactions(
                [(f"C{i:02d}", "2024-09-01T00:00:00Z", 300.0 * (21 - i)) for i in range(1, 21)]
            ),
        ],
        ignore_index=True,
    )
    tables["tiers"] = pd.DataFrame(
        {
            "customer_id": ["C01", "C01", "C05"],
            "tier": ["major", "VIP", "ordinary"],
            "effective": ["2024-02-01", "2024-10-01", "2024-08-01"],
        }
    )
    ds = load_dataset(make_dataset(tables))
    dates = [dt.date(2024, 6, 30), dt.date(2024, 12, 31)]
    # when tiered for both dates at once and for each alone
    together = assign_tiers(ds, dates)
    alone = pd.concat([assign_tiers(ds, [d]) for d in dates]).sort_values(
        ["customer_id", "as_of"], ignore_index=True
    )
    # then the results agree, and the dates do differ (the test could fail)
    pd.testing.assert_frame_equal(together, alone, obj="two dates at once vs one at a time")
    first, last = (together[together["as_of"] == pd.Timestamp(d)] for d in dates)
    assert first["value_tier"].tolist() != last["value_tier"].tolist()


def test_tier_rank_at_offset_uses_the_later_population(make_dataset):
    # given C20 closes before t+90 and C01 becomes the best customer after t
    tables = twenty_customers()
    frame = tables["customers"]
    frame.loc[frame["customer_id"] == "C20", "closed_date"] = "2024-08-01"
    tables["transactions"] = pd.concat(
        [tables["transactions"], transactions([("C01", "2024-08-01T00:00:00Z", 10_000.0)])],
        ignore_index=True,
    )
    ds = load_dataset(make_dataset(tables))
    register_spine(ds, [AS_OF])
    # when the tier rank is taken as of t and as of t+90
    now = by_customer(ds.con.execute(tier_rank_at(ds, "spine", 0)).df())
    later = by_customer(ds.con.execute(tier_rank_at(ds, "spine", 90)).df())
    # then rows keep as_of = t, the closed customer has no rank, C01 rose to the top
    assert (later["as_of"] == pd.Timestamp(AS_OF)).all()
    assert len(later) == len(now) == 20
    assert pd.isna(later.loc["C20", "tier_rank"]), "closed by t+H: not in the population"
    assert now.loc["C01", "tier_rank"] == 0 and later.loc["C01", "tier_rank"] == 3
    # and the rank at offset 0 is the tier_sql tier_rank
    full = by_customer(ds.con.execute(tier_sql(ds, "spine")).df())
    assert (full["tier_rank"] == now["tier_rank"].reindex(full.index)).all()


def test_tier_sql_ranks_among_the_whole_population_for_a_partial_spine(make_dataset):
    # given a spine holding only one customer
    ds = load_dataset(make_dataset(twenty_customers()))
    ds.con.execute(
        "CREATE TEMP TABLE one AS SELECT 'C20' AS customer_id, DATE '2024-06-30' AS as_of"
    )
    # when tiered
    rows = ds.con.execute(
        f"SELECT value_tier, value_percentile FROM ({tier_sql(ds, 'one')}) t"
    ).fetchall()
    # then it is the VIP of the full base, not of a one-customer population
    assert rows == [("VIP", 1.0)]
