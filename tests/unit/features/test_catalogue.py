"""The feature catalogue: a Feature for every column, a spec that round-trips, reasons that read well."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.catalogue import FAMILIES, feature_index, features_of
from features.contract import load_dataset
from features.feature import Feature, render_reason
from features.pipeline import build_features
from features.spec import FeatureSpec, feature_spec, slugs
from tests.conftest import base_tables


@pytest.fixture
def ds(make_dataset):
    roles = {"complaint": ["complaint"]}
    return load_dataset(
        make_dataset(settings={"allow_protected": ["age"], "interaction_roles": roles})
    )


@pytest.fixture
def spec(ds) -> FeatureSpec:
    return feature_spec(ds)


def test_every_output_column_has_a_feature(ds, spec):
    frame = build_features(ds, ["2023-12-31"], spec)
    index = feature_index(spec)
    missing = [c for c in frame.columns[2:] if c not in index]
    assert not missing, f"columns without a catalogue entry: {missing}"
    assert list(frame.columns[2:]) == [f.name for f in features_of(spec)], "catalogue order"


def test_features_are_unique_snake_case_and_in_known_families(spec):
    features = features_of(spec)
    names = [f.name for f in features]
    assert len(names) == len(set(names)), "feature names must be unique"
    for f in features:
        assert f.name == f.name.lower() and " " not in f.name, f"{f.name} is not snake_case"
        assert f.family in FAMILIES, f"{f.name} has unknown family {f.family}"
        assert f.description and f.template, f"{f.name} needs a description and a template"


def test_spec_lists_products_channels_profile_and_tables(spec):
    assert spec.products == ["checking", "savings"]
    assert spec.channels == ["app", "branch", "web"]
    assert spec.holding_products == ["checking", "savings"]
    assert spec.profile == {"region": "categorical", "age": "numeric"}
    assert spec.tables == ["holdings", "interactions", "tiers"]


def test_spec_round_trips_through_json(spec):
    text = json.dumps(spec.to_dict())
    again = FeatureSpec.from_dict(json.loads(text))
    assert again == spec
    assert FeatureSpec.from_json(spec.to_json()) == spec
    assert [f.name for f in features_of(again)] == [f.name for f in features_of(spec)]


def test_id_like_profile_columns_are_dropped_with_a_reason(make_dataset):
    tables = base_tables()
    n = 12
    tables["customers"] = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "signup_date": ["2023-01-01"] * n,
            "closed_date": [None] * n,
            "account_ref": [f"REF-{i}" for i in range(n)],  # unique per customer: an id
            "region": ["north", "south"] * (n // 2),
        }
    )
    tables = {"customers": tables["customers"], "transactions": tables["transactions"].iloc[:0]}
    spec = feature_spec(load_dataset(make_dataset(tables)))
    assert "account_ref" not in spec.profile and "account_ref" in spec.dropped_profile
    assert spec.profile == {"region": "categorical"}


def test_profile_columns_with_more_than_100_values_are_dropped(make_dataset):
    n = 150
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "signup_date": ["2023-01-01"] * n,
            "closed_date": [None] * n,
            "city": [f"city{i % 120}" for i in range(n)],
        }
    )
    tables = {"customers": customers, "transactions": base_tables()["transactions"].iloc[:0]}
    spec = feature_spec(load_dataset(make_dataset(tables)))
    assert "city" in spec.dropped_profile, "120 distinct cities is too many categories"


def test_top_products_are_capped_at_20_and_sorted(make_dataset):
    tables = base_tables()
    rows = [
        ("A", "2023-05-01T10:00:00Z", 1.0, f"p{i:02d}", "web")
        for i in range(25)
        for _ in range(i + 1)
    ]
    tables["transactions"] = pd.DataFrame(rows, columns=tables["transactions"].columns)
    spec = feature_spec(load_dataset(make_dataset(tables)))
    assert spec.products == [f"p{i:02d}" for i in range(5, 25)], "the 20 most frequent, sorted"


def test_slugs_make_unique_column_names():
    assert slugs(["Credit Card", "credit-card", "ATM"]) == {
        "Credit Card": "credit_card",
        "credit-card": "credit_card_2",
        "ATM": "atm",
    }


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("complaints_90d", 3, "3 complaints in the last 90 days"),
        ("complaints_90d", 1, "1 complaint in the last 90 days"),
        ("complaints_90d", 0, "no complaint in the last 90 days"),
        ("days_since_last_txn", 75, "no transaction for 75 days"),
        ("days_since_last_txn", None, "no transaction on record"),
        ("spend_change_90d", -0.4, "spend fell 40% against the previous 90 days"),
        ("held_checking", 1.0, "holds checking"),
        ("held_checking", 0.0, "does not hold checking"),
        ("tenure_days", 6 * 365.25 + 10, "customer for 6 years"),
        ("tenure_days", 300, "customer for 9 months"),
        ("profile_region", "north", "region is north"),
        ("profile_age", 34.0, "age is 34"),
        ("mix_channel_web_365d", 0.25, "25% of last year's transactions via web"),
        ("tier", "VIP", "in the VIP tier"),
        ("txn_amount_30d", -120.0, "refunds exceeded spend by 120 in the last 30 days"),
        ("days_since_last_closed", 0, "closed a product today"),
        ("days_since_last_closed", None, ""),
    ],
)
def test_reasons_read_as_plain_language(spec, name, value, expected):
    assert render_reason(feature_index(spec)[name], value) == expected


@pytest.mark.parametrize("value", [None, float("nan"), np.nan, pd.NA, pd.NaT, np.float64("nan")])
def test_every_template_renders_null_as_words_or_nothing(spec, value):
    for f in features_of(spec):
        text = render_reason(f, value)
        assert isinstance(text, str), f"{f.name} gave no text for {value!r}"
        assert "nan" not in text.lower().split(), f"{f.name} shows nan: {text!r}"
        assert ": " not in text and "unknown" not in text, f"{f.name} dumps a field: {text!r}"


@pytest.mark.parametrize("value", [0, 1, 2.5, -0.4, 1234.5, 10_000, float("inf"), "odd"])
def test_every_template_renders_typical_values(spec, value):
    for f in features_of(spec):
        text = render_reason(f, value)
        assert isinstance(text, str), f"{f.name} gave no text for {value!r}"
        assert "{" not in text, f"{f.name} left a placeholder: {text!r}"
        assert ": " not in text, f"{f.name} dumps a field: {text!r}"
        if value in (0, 1, 2.5, 1234.5, 10_000):
            assert text, f"{f.name} has no words for {value!r}"


def test_a_broken_template_or_an_unworded_value_gives_no_reason_rather_than_a_dump():
    f = Feature("x", "something odd", "{nope} {value}", "numeric", "rfm")
    assert render_reason(f, 2.0) == ""
    assert render_reason(f, float("nan")) == ""
    money = Feature("y", "net amount", "spent {num}", "numeric", "rfm")
    assert render_reason(money, -5.0) == "", "a negative sum without its own wording is no reason"


@pytest.mark.parametrize(
    ("product", "expected"),
    [
        ("mortgage", "holds a mortgage"),
        ("investment", "holds an investment"),
        ("savings", "holds savings"),
    ],
)
def test_held_product_reasons_take_the_right_article(product, expected):
    spec = FeatureSpec(holding_products=[product], tables=["holdings"])
    assert render_reason(feature_index(spec)[f"held_{product}"], 1) == expected


def _people(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "signup_date": ["2023-01-01"] * n,
            "closed_date": [None] * n,
            # Few distinct values, so only the names give them away.
            "full_name": [["Ann Lee", "Bo Chan", "Cy Diaz"][i % 3] for i in range(n)],
            "email": [f"u{i % 4}@example.com" for i in range(n)],
            "phone": [f"+44 7700 90000{i % 5}" for i in range(n)],
            "Customer Notes": [["vip", "call back"][i % 2] for i in range(n)],
            "gender": [["f", "m"][i % 2] for i in range(n)],
            "Age": [30 + i % 7 for i in range(n)],
            "region": [["north", "south"][i % 2] for i in range(n)],
        }
    )


def test_identifying_columns_are_never_features_and_are_listed_with_why(make_dataset):
    tables = {"customers": _people(), "transactions": base_tables()["transactions"].iloc[:0]}
    spec = feature_spec(load_dataset(make_dataset(tables)))
    for column in ("full_name", "email", "phone", "Customer Notes"):
        assert column not in spec.profile, f"{column} must not be a feature"
        assert "identifying" in spec.dropped_profile[column], spec.dropped_profile
    names = {f.name for f in features_of(spec)}
    assert not any(("name" in n or "email" in n or "phone" in n) for n in names), names


def test_protected_columns_are_features_only_where_allowed(make_dataset):
    tables = {"customers": _people(), "transactions": base_tables()["transactions"].iloc[:0]}
    default = feature_spec(load_dataset(make_dataset(tables, name="default")))
    assert set(default.profile) == {"region"}, default.profile
    assert "protected" in default.dropped_profile["gender"]
    assert "protected" in default.dropped_profile["Age"]
    allowed = feature_spec(
        load_dataset(make_dataset(tables, {"allow_protected": ["Age"]}, name="allowed"))
    )
    assert set(allowed.profile) == {"region", "Age"} and allowed.protected == ["Age"]
