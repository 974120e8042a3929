"""Point-in-time features: hand-checked values, no leakage from the future, one query for many dates."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.catalogue import features_of
from features.contract import load_dataset
from features.demo import generate_demo_data
from features.pipeline import build_features, feature_sql, write_features
from features.spec import FeatureSpec, feature_spec
from features.spine import register_spine

AS_OF = dt.date(2024, 3, 31)


def day(age: int, time: str = "12:00:00") -> str:
    """A UTC timestamp `age` days before AS_OF."""
    return f"{AS_OF - dt.timedelta(days=age)}T{time}Z"


def tables() -> dict[str, pd.DataFrame]:
    """A: active, with rows on the window edges and after AS_OF; B: new; C: no transactions;
    D: last transaction and complaint more than a year before AS_OF."""
    return {
        "customers": pd.DataFrame(
            {
                "customer_id": ["A", "B", "C", "D"],
                "signup_date": ["2020-03-31", "2023-06-01", "2022-01-01", "2021-01-01"],
                "closed_date": [None, None, None, None],
                "region": ["north", "south", None, "north"],
                "age": [40, 30, 50, None],
            }
        ),
        "transactions": pd.DataFrame(
            [
                ("A", day(0, "23:59:59"), 10.0, "checking", "app"),  # on the as-of day
                ("A", day(29), 5.0, "savings", "app"),
                ("A", day(30), 20.0, "checking", "web"),  # exactly 30 days before
                ("A", day(100), -3.0, "checking", None),  # a refund
                ("A", day(364), 7.0, None, "web"),
                ("A", day(365), 1000.0, "checking", "web"),  # just outside the year
                ("B", day(5), 50.0, "savings", "branch"),
                ("D", "2022-06-01T09:00:00Z", 80.0, "checking", "branch"),
            ],
            columns=["customer_id", "ts", "amount", "product", "channel"],
        ),
        "holdings": pd.DataFrame(
            [
                ("A", "checking", "2020-03-31", None, 5.0),
                ("A", "savings", str(AS_OF - dt.timedelta(60)), str(AS_OF - dt.timedelta(20)), 1.0),
                ("A", "credit_card", "2023-01-01", "2024-05-01", 2.5),  # closes after AS_OF
                ("B", "savings", "2023-06-01", None, None),
                ("D", "mortgage", "2021-01-01", None, 100.0),
            ],
            columns=["customer_id", "product", "opened", "closed", "monthly_fee"],
        ),
        "interactions": pd.DataFrame(
            [
                ("A", day(0, "08:00:00"), "complaint", "phone", 2.0),
                ("A", day(90), "complaint", "phone", None),  # outside the 90 days
                ("A", day(16), "inquiry", "web", 4.0),
                ("A", day(11), "login", "app", None),
                ("A", day(59), "login", "app", None),
                ("A", day(6), "campaign_response", "web", None),
                ("D", day(700), "complaint", "branch", 1.0),
            ],
            columns=["customer_id", "ts", "kind", "channel", "satisfaction"],
        ),
        "tiers": pd.DataFrame(
            {
                "customer_id": ["A", "A", "B", "D"],
                "tier": ["small", "major", "ordinary", "small"],
                "effective": ["2020-03-31", "2023-12-01", "2023-06-01", "2021-01-01"],
            }
        ),
    }


# The hand-made base's own meanings: its words for complaints and engagement, and age allowed.
SETTINGS = {
    "allow_protected": ["age"],
    "interaction_roles": {"complaint": ["complaint"], "engagement": ["login", "campaign_response"]},
}


def future_rows(after: dt.date) -> dict[str, pd.DataFrame]:
    """Rows of every table dated after `after` (appended to `tables()`)."""
    later = after + dt.timedelta(days=1)
    return {
        "transactions": pd.DataFrame(
            [
                ("A", f"{later}T00:00:01Z", 999.0, "checking", "app"),
                ("C", f"{later}T10:00:00Z", 50.0, "savings", "web"),
                ("B", f"{after + dt.timedelta(200)}T10:00:00Z", 5.0, "mortgage", "phone"),
            ],
            columns=["customer_id", "ts", "amount", "product", "channel"],
        ),
        "holdings": pd.DataFrame(
            [
                ("A", "mortgage", str(later), None, 300.0),
                ("C", "savings", str(later), str(later + dt.timedelta(5)), 1.0),
            ],
            columns=["customer_id", "product", "opened", "closed", "monthly_fee"],
        ),
        "interactions": pd.DataFrame(
            [
                ("A", f"{later}T00:00:00Z", "complaint", "phone", 1.0),
                ("C", f"{later}T09:00:00Z", "login", "app", None),
            ],
            columns=["customer_id", "ts", "kind", "channel", "satisfaction"],
        ),
        "tiers": pd.DataFrame(
            {"customer_id": ["A", "C"], "tier": ["VIP", "major"], "effective": [str(later)] * 2}
        ),
    }


def with_future(base: dict[str, pd.DataFrame], after: dt.date) -> dict[str, pd.DataFrame]:
    """`base` plus future rows, a holding closed after `after`, and a closure after `after`."""
    out = {name: frame.copy() for name, frame in base.items()}
    for name, rows in future_rows(after).items():
        out[name] = pd.concat([out[name], rows], ignore_index=True)
    holdings = out["holdings"]
    open_rows = holdings["closed"].isna() & (holdings["opened"] <= str(after))
    holdings.loc[open_rows.idxmax(), "closed"] = str(after + dt.timedelta(days=3))
    customers = out["customers"]
    customers.loc[customers["customer_id"] == "B", "closed_date"] = str(after + dt.timedelta(1))
    return out


def assert_same_frames(left: pd.DataFrame, right: pd.DataFrame, why: str) -> None:
    """Equal column names, order, dtypes and values, NaN equal to NaN."""
    assert list(left.columns) == list(right.columns), f"{why}: columns differ"
    pd.testing.assert_frame_equal(
        left.reset_index(drop=True), right.reset_index(drop=True), check_exact=True, obj=why
    )


@pytest.fixture
def hand(make_dataset):
    return load_dataset(make_dataset(tables(), SETTINGS))


@pytest.fixture
def row(hand):
    """Features of the hand-made base as of AS_OF, as customer_id -> row."""
    frame = build_features(hand, [AS_OF])
    return frame.set_index("customer_id")


# -- hand-checked values -----------------------------------------------------------------------


def test_transaction_windows_count_the_as_of_day_and_exclude_day_30_from_30_days(row):
    a = row.loc["A"]
    assert (a.txn_count_30d, a.txn_amount_30d) == (2, 15.0), "30d: ages 0 and 29, not 30"
    assert (a.txn_count_90d, a.txn_amount_90d) == (3, 35.0), "90d adds the day-30 row"
    assert (a.txn_count_180d, a.txn_amount_180d) == (4, 32.0), "180d adds the refund"
    assert (a.txn_count_365d, a.txn_amount_365d) == (5, 39.0), "365d: age 364 in, 365 out"
    assert a.txn_avg_amount_365d == pytest.approx(39.0 / 5)


def test_recency_regularity_and_active_months(row):
    a, d, c = row.loc["A"], row.loc["D"], row.loc["C"]
    assert a.days_since_last_txn == 0, "a transaction on the as-of day is 0 days old"
    assert d.days_since_last_txn == 669, "recency reaches back beyond the 365-day window"
    assert math.isnan(c.days_since_last_txn), "no transaction ever -> null recency"
    assert a.txn_mean_gap_days_365d == pytest.approx(364 / 4), "(oldest - newest) / (n - 1)"
    assert math.isnan(row.loc["B"].txn_mean_gap_days_365d), "one transaction has no gap"
    assert a.active_months_12m == 3, "ages 0, 29, 30 in month 0; 100 in month 3; 364 in 11"
    assert (c.txn_count_365d, c.txn_amount_365d, c.active_months_12m) == (0, 0, 0)
    assert math.isnan(c.txn_avg_amount_365d), "no average without transactions"


def test_trend_compares_the_last_90_days_with_the_90_before(row):
    a = row.loc["A"]
    assert a.spend_change_90d == pytest.approx((35 - (-3)) / (3 + 1))
    assert a.txn_count_change_90d == pytest.approx((3 - 1) / (1 + 1))
    monthly = np.zeros(12)  # 12 equal months of the 365 days, oldest first
    for age, amount in [(0, 10), (29, 5), (30, 20), (100, -3), (364, 7)]:
        monthly[11 - age * 12 // 365] += amount
    expected = np.polyfit(np.arange(12), monthly, 1)[0]
    assert a.spend_slope_12m == pytest.approx(expected), "least-squares slope over 12 months"


def test_mix_shares_split_last_year_transactions(row):
    a = row.loc["A"]
    assert a.mix_product_checking_365d == pytest.approx(3 / 5)
    assert a.mix_product_savings_365d == pytest.approx(1 / 5), "a null product counts in none"
    assert a.mix_channel_app_365d == pytest.approx(2 / 5)
    assert a.mix_channel_web_365d == pytest.approx(2 / 5)
    assert math.isnan(row.loc["C"].mix_product_checking_365d), "no share without transactions"


def test_holdings_count_what_is_open_at_the_date(row):
    a = row.loc["A"]
    assert a.holdings_open_count == 2, "checking, and the card that closes only after as_of"
    assert (a.held_checking, a.held_credit_card, a.held_savings) == (1, 1, 0)
    assert a.holdings_monthly_fees == pytest.approx(7.5), "fees of open holdings only"
    assert a.days_since_last_opened == 60
    assert a.days_since_last_closed == 20
    assert (a.holdings_opened_90d, a.holdings_closed_90d) == (1, 1)
    assert math.isnan(row.loc["B"].days_since_last_closed), "never closed -> null"
    assert row.loc["C"].holdings_open_count == 0


def test_interactions_count_complaints_contacts_logins_and_satisfaction(row):
    a = row.loc["A"]
    assert (a.complaints_30d, a.complaints_90d) == (1, 1), "the complaint 90 days back is out"
    assert (a.contacts_30d, a.contacts_90d) == (2, 2), (
        "logins and campaign responses are no contact"
    )
    assert a.engagement_30d == 2, "the login 11 days back and the campaign response 6 days back"
    assert a.days_since_last_complaint == 0
    assert a.satisfaction_last_365d == 2, "the latest score, not the best"
    assert a.satisfaction_mean_365d == pytest.approx(3.0)
    d = row.loc["D"]
    assert d.days_since_last_complaint == 700, "complaint recency looks over all history"
    assert math.isnan(d.satisfaction_mean_365d), "scores older than a year are not used"


def test_every_kind_gets_counts_recency_and_trend_in_its_own_name(row):
    a, d = row.loc["A"], row.loc["D"]
    assert (a.kind_complaint_30d, a.kind_complaint_90d, a.kind_complaint_365d) == (1, 1, 2)
    assert a.kind_complaint_days_since == 0
    assert a.kind_complaint_trend == pytest.approx((1 - 1 / 3) / (1 / 3 + 1)), (
        "one in the last 30 days against one in the 90 before (age 90)"
    )
    assert (a.kind_login_30d, a.kind_login_90d, a.kind_login_days_since) == (1, 2, 11)
    assert a.kind_inquiry_trend == pytest.approx(1.0), "one now, none in the 90 days before"
    assert d.kind_complaint_365d == 0 and math.isnan(d.kind_complaint_days_since), (
        "a complaint 700 days back is outside the year"
    )
    assert a.engagement_trend == pytest.approx((2 - 1 / 3) / (1 / 3 + 1)), (
        "two engagement events now, one (the login at 59 days) in the 90 before"
    )


def test_every_product_gets_its_own_spend_and_count_windows(row):
    a = row.loc["A"]
    assert (a.product_checking_count_30d, a.product_checking_spend_30d) == (1, 10.0)
    assert (a.product_checking_count_90d, a.product_checking_spend_90d) == (2, 30.0)
    assert (a.product_checking_count_365d, a.product_checking_spend_365d) == (3, 27.0), (
        "the refund counts; the row 365 days back does not"
    )
    assert (a.product_savings_count_30d, a.product_savings_spend_30d) == (1, 5.0)
    assert row.loc["C"].product_checking_count_365d == 0


def test_every_held_product_gets_its_tenure_and_fee(row):
    a = row.loc["A"]
    assert (a.held_checking_days, a.fee_checking) == (1461, 5.0)
    assert (a.held_credit_card_days, a.fee_credit_card) == (455, 2.5), "closes after AS_OF"
    assert math.isnan(a.held_savings_days) and a.fee_savings == 0, "savings closed 20 days back"


def test_fee_change_compares_open_fees_with_90_days_before(make_dataset):
    base = tables()
    recent = ("C", "savings", str(AS_OF - dt.timedelta(10)), None, 3.0)
    base["holdings"].loc[len(base["holdings"])] = recent
    gone = ("D", "checking", "2021-01-01", str(AS_OF - dt.timedelta(5)), 4.0)
    base["holdings"].loc[len(base["holdings"])] = gone
    frame = build_features(load_dataset(make_dataset(base, SETTINGS)), [AS_OF])
    change = frame.set_index("customer_id")["holdings_fee_change_90d"]
    assert (change["A"], change["C"], change["D"]) == (0, 3.0, -4.0)


def test_tier_history_counts_moves_up_and_down(make_dataset):
    base = tables()
    moves = [("B", "major", "2023-09-01"), ("B", "small", "2024-02-01")]
    for move in moves:
        base["tiers"].loc[len(base["tiers"])] = move
    frame = build_features(load_dataset(make_dataset(base, SETTINGS)), [AS_OF]).set_index(
        "customer_id"
    )
    assert (frame.loc["A", "tier_ups_365d"], frame.loc["A", "tier_downs_365d"]) == (1, 0)
    assert (frame.loc["B", "tier_ups_365d"], frame.loc["B", "tier_downs_365d"]) == (1, 1), (
        "ordinary -> major -> small"
    )


def test_named_roles_are_settings_not_code(make_dataset):
    # Given the same base with no roles declared
    ds = load_dataset(make_dataset(tables()))
    names = {f.name for f in features_of(feature_spec(ds))}
    # Then per-kind features exist, but no complaint or engagement family, and every kind counts
    assert "kind_complaint_30d" in names and "kind_login_30d" in names
    assert not names & {"complaints_30d", "days_since_last_complaint", "engagement_30d"}
    frame = build_features(ds, [AS_OF]).set_index("customer_id")
    assert frame.loc["A", "contacts_30d"] == 4, "without engagement kinds every kind is a contact"


def test_a_kind_or_product_first_seen_after_as_of_has_no_value_then(make_dataset):
    # Given a kind and a product that first appear after AS_OF, in the spec of the later data
    later = tables()
    later["interactions"].loc[len(later["interactions"])] = (
        "A", f"{AS_OF + dt.timedelta(3)}T10:00:00Z", "chat", "web", None,
    )  # fmt: skip
    later["transactions"].loc[len(later["transactions"])] = (
        "A", f"{AS_OF + dt.timedelta(3)}T10:00:00Z", 9.0, "crypto", "web",
    )  # fmt: skip
    ds = load_dataset(make_dataset(later, SETTINGS))
    frame = build_features(ds, [AS_OF]).set_index("customer_id")
    # Then as of AS_OF they count nothing
    assert (frame["kind_chat_365d"] == 0).all() and frame["kind_chat_days_since"].isna().all()
    assert (frame["product_crypto_count_365d"] == 0).all()
    assert (frame["product_crypto_spend_365d"] == 0).all()


def test_tenure_profile_and_tier(row):
    a = row.loc["A"]
    assert a.tenure_days == 1461
    assert (a.profile_region, a.profile_age) == ("north", 40.0)
    assert row.loc["C"].profile_region is None, "a null category stays null"
    assert a.tier == "major" and a.tier_rank == 2, "the tier effective on 2023-12-01"
    assert (a.days_in_tier, a.tier_changes_365d) == (121, 1)


# -- point in time -----------------------------------------------------------------------------


def test_rows_after_as_of_change_no_feature(make_dataset):
    # Given the hand-made base, and the same base with rows dated after the last as-of date
    dates = [dt.date(2024, 1, 31), AS_OF]
    base = load_dataset(make_dataset(tables(), SETTINGS, name="base"))
    spec = feature_spec(base)
    later = load_dataset(make_dataset(with_future(tables(), AS_OF), SETTINGS, name="later"))
    # When features are computed as of those dates with one spec
    before, after = build_features(base, dates, spec), build_features(later, dates, spec)
    # Then nothing differs
    assert_same_frames(before, after, "features with future rows appended")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo_data(tmp_path_factory.mktemp("demo") / "data", customers=1000, seed=3)


def truncate(source: Path, out: Path, cut: dt.date) -> Path:
    """Copy a parquet dataset keeping only what was known on `cut`."""
    out.mkdir()
    shutil.copy(source / "tierwise.yaml", out / "tierwise.yaml")
    d = f"DATE '{cut}'"
    keep = {
        "customers": f"SELECT * REPLACE (CASE WHEN closed_date <= {d} THEN closed_date END AS closed_date) FROM t",
        "transactions": f"SELECT * FROM t WHERE CAST(ts AS DATE) <= {d}",
        "holdings": f"SELECT * REPLACE (CASE WHEN closed <= {d} THEN closed END AS closed) FROM t WHERE opened <= {d}",
        "interactions": f"SELECT * FROM t WHERE CAST(ts AS DATE) <= {d}",
        "tiers": f"SELECT * FROM t WHERE effective <= {d}",
    }
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, sql in keep.items():
        con.execute(f"CREATE OR REPLACE VIEW t AS SELECT * FROM '{source / name}.parquet'")
        con.execute(f"COPY ({sql}) TO '{out / name}.parquet' (FORMAT parquet)")
    return out


def test_demo_base_features_ignore_everything_after_as_of(demo_dir, tmp_path):
    # Given the demo base, and a copy holding only what was known on the as-of date
    cut = dt.date(2025, 3, 31)
    full = load_dataset(demo_dir)
    known = load_dataset(truncate(demo_dir, tmp_path / "known", cut))
    spec = feature_spec(full)
    # When features are computed as of that date on both
    with_future_rows = build_features(full, [cut], spec)
    known_only = build_features(known, [cut], spec)
    # Then they are identical, and there are customers to compare
    assert len(known_only) > 300, "the demo base should have a population at the date"
    assert_same_frames(known_only, with_future_rows, "demo features as of 2025-03-31")


def test_many_dates_in_one_query_equal_one_date_at_a_time(demo_dir):
    ds = load_dataset(demo_dir)
    spec = feature_spec(ds)
    dates = [dt.date(2024, 12, 31), dt.date(2025, 3, 31), dt.date(2025, 6, 30)]
    together = build_features(ds, dates, spec)
    assert set(together["as_of"].dt.date) == set(dates)
    for d in dates:
        alone = build_features(ds, [d], spec)
        part = together[together["as_of"].dt.date == d]
        assert_same_frames(part, alone, f"as of {d} within many dates vs alone")


def test_rows_are_the_spine_ordered_by_customer_then_date(hand):
    frame = build_features(hand, ["2024-03-31", "2023-07-01"])
    keys = list(zip(frame["customer_id"], frame["as_of"].dt.date.astype(str), strict=True))
    assert keys == sorted(keys), "rows ordered by customer_id, as_of"
    assert ("B", "2023-07-01") in keys and ("C", "2023-07-01") in keys
    assert len(keys) == 4 + 4, "every customer signed up by both dates is in the spine"


# -- columns and specs -------------------------------------------------------------------------


def test_columns_follow_the_catalogue_with_doubles_and_strings(hand):
    spec = feature_spec(hand)
    frame = build_features(hand, [AS_OF], spec)
    features = features_of(spec)
    assert list(frame.columns) == ["customer_id", "as_of", *[f.name for f in features]]
    for f in features:
        dtype = frame[f.name].dtype
        if f.kind == "numeric":
            assert dtype == np.float64, f"{f.name} should be DOUBLE, is {dtype}"
        else:
            assert dtype == np.dtype(object), f"{f.name} should be VARCHAR, is {dtype}"


def test_missing_optional_tables_drop_their_features(make_dataset):
    only = {k: v for k, v in tables().items() if k in ("customers", "transactions")}
    ds = load_dataset(make_dataset(only))
    frame = build_features(ds, [AS_OF])
    names = set(frame.columns)
    assert not any(n.startswith(("held_", "holdings_", "complaints_", "logins_")) for n in names)
    assert {"txn_count_30d", "tenure_days", "tier", "value_tier"} <= names
    assert frame.set_index("customer_id").loc["A", "tier"] is not None, "tier falls back to value"


def test_spec_from_training_fixes_the_columns_at_scoring(make_dataset):
    # Given a spec saved as JSON at training time
    spec = FeatureSpec.from_json(feature_spec(load_dataset(make_dataset(name="train"))).to_json())
    # When scoring data has a new product, channel, kind and profile value
    later = tables()
    later["transactions"].loc[len(later["transactions"])] = ("A", day(1), 9.0, "crypto", "kiosk")
    later["holdings"].loc[len(later["holdings"])] = ("A", "crypto", str(AS_OF), None, 1.0)
    later["customers"].loc[0, "region"] = "east"
    scored = build_features(load_dataset(make_dataset(later, name="score")), [AS_OF], spec)
    # Then the columns are the training ones
    assert list(scored.columns[2:]) == [f.name for f in features_of(spec)]
    assert not any("crypto" in c or "kiosk" in c for c in scored.columns)


def test_spec_table_missing_at_scoring_gives_null_columns(make_dataset):
    spec = feature_spec(load_dataset(make_dataset(name="train")))
    only = {k: v for k, v in tables().items() if k != "holdings"}
    scored = build_features(load_dataset(make_dataset(only, name="score")), [AS_OF], spec)
    assert scored["holdings_open_count"].isna().all(), "unknown holdings -> null, not 0"


def test_write_features_streams_the_same_rows_to_parquet(hand, tmp_path):
    dates = ["2024-01-31", AS_OF]
    expected = build_features(hand, dates)
    rows = write_features(hand, dates, tmp_path / "out" / "features.parquet")
    written = pq.read_table(tmp_path / "out" / "features.parquet").to_pandas()
    assert rows == len(expected) == len(written)
    assert list(written.columns) == list(expected.columns)
    written["as_of"] = pd.to_datetime(written["as_of"]).astype(expected["as_of"].dtype)
    assert_same_frames(written, expected, "parquet vs DataFrame")


def test_families_restrict_the_columns_to_those_families(hand):
    spec = feature_spec(hand)
    register_spine(hand, [AS_OF])
    frame = hand.con.execute(feature_sql(hand, spec, families={"rfm", "tenure"})).df()
    expected = [f.name for f in features_of(spec) if f.family in ("rfm", "tenure")]
    assert list(frame.columns[2:]) == expected
