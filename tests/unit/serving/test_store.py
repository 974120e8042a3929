"""The online store: point lookups, atomic refreshes, and the rows built from a dataset."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
import sqlalchemy as sa

from batch.online import build_rows
from features.contract import load_dataset
from features.spec import feature_spec
from models.registry import LoadedModel
from models.scoring import ModelSet
from serving.store import TABLE, OnlineStore, StoreInfo, StoreMissingError
from tests.conftest import base_tables

AS_OF = dt.date(2024, 1, 1)
LATER = dt.date(2024, 2, 1)

ROLES = {"interaction_roles": {"complaint": ["complaint"]}}  # the hand-made base's words


def make_row(customer_id: str, as_of: dt.date = AS_OF, **changes) -> dict:
    """A store row as build_rows makes it."""
    row = {
        "customer_id": customer_id,
        "as_of": as_of,
        "tier": "gold",
        "tier_rank": 2,
        "value": 1200.0,
        "value_tier": "major",
        "tier_reason": "gold tier",
        "next_tier": "platinum",
        "gap_to_next_tier": 300.0,
        "held": json.dumps(["checking"]),
        "history": json.dumps({"signup_date": "2020-05-01"}),
        "features": json.dumps({"txn_count_30d": 4.0, "profile_region": "north"}),
    }
    return {**row, **changes}


def make_info(as_of: dt.date = AS_OF) -> StoreInfo:
    return StoreInfo(as_of, 0, dt.datetime(2024, 1, 2, tzinfo=dt.UTC), {"tierwise-churn": "3"})


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'online.db'}"


def test_a_refreshed_customer_is_found_by_id_with_its_values(url):
    # Given a store refreshed with two customers
    store = OnlineStore(url)
    store.refresh([[make_row("A"), make_row("B", value=10.0)]], make_info())
    # When a customer is looked up; then every value comes back, JSON parsed
    got = store.get("A")
    assert got is not None, "a refreshed customer must be found"
    assert (got.customer_id, got.as_of, got.tier, got.tier_rank) == ("A", AS_OF, "gold", 2)
    assert got.held == ("checking",), "held products come back as a tuple"
    assert got.features == {"txn_count_30d": 4.0, "profile_region": "north"}
    assert got.history["signup_date"] == "2020-05-01"
    assert store.get("B").value == 10.0


def test_an_unknown_customer_is_none(url):
    store = OnlineStore(url)
    store.refresh([[make_row("A")]], make_info())
    assert store.get("nobody") is None, "an unknown customer is None, not an error"


def test_a_store_never_built_is_a_clear_error(tmp_path, url):
    with pytest.raises(StoreMissingError, match="tierwise materialize"):
        OnlineStore(f"sqlite:///{tmp_path / 'missing.db'}", create=False)
    with pytest.raises(StoreMissingError, match="never built"):
        OnlineStore(url).info()


def test_a_refresh_records_what_it_was_built_for(url):
    store = OnlineStore(url)
    written = store.refresh([[make_row("A")], [make_row("B")]], make_info())
    info = store.info()
    assert written.rows == 2 and info.rows == 2, "rows counted over every chunk"
    assert info.as_of == AS_OF and info.model_versions == {"tierwise-churn": "3"}


def test_a_refresh_replaces_every_row_and_the_metadata(url):
    # Given a first run with A and B
    store = OnlineStore(url)
    store.refresh([[make_row("A"), make_row("B")]], make_info())
    # When a later run holds only A and C
    store.refresh([[make_row("A", LATER), make_row("C", LATER)]], make_info(LATER))
    # Then B is gone, A is the new row, and the metadata is the new run's
    assert store.get("B") is None, "a customer absent from the new run is not served"
    assert store.get("A").as_of == LATER and store.get("C").as_of == LATER
    assert store.info().as_of == LATER
    assert store.customer_ids() == ["A", "C"]


def test_readers_see_the_previous_run_until_the_swap(url):
    # Given a first run, and a reader (another connection) on the same store
    OnlineStore(url).refresh([[make_row("A"), make_row("B")]], make_info())
    reader = OnlineStore(url, create=False)
    seen_during: list[tuple] = []

    def chunks():
        yield [make_row("A", LATER)]
        # When the new run is half written: the reader still sees the old run whole
        seen_during.append((reader.get("A").as_of, reader.get("B").as_of, reader.info().as_of))
        yield [make_row("B", LATER)]

    OnlineStore(url).refresh(chunks(), make_info(LATER))
    assert seen_during == [(AS_OF, AS_OF, AS_OF)], "no row or metadata of a run before its swap"
    # Then after the swap the same reader sees the new run whole
    assert (reader.get("A").as_of, reader.get("B").as_of, reader.info().as_of) == (LATER,) * 3


def test_a_failed_refresh_leaves_the_previous_run_in_place(url):
    store = OnlineStore(url)
    store.refresh([[make_row("A")]], make_info())

    def broken():
        yield [make_row("Z", LATER)]
        raise RuntimeError("the feature job died")

    with pytest.raises(RuntimeError, match="died"):
        store.refresh(broken(), make_info(LATER))
    assert store.get("A").as_of == AS_OF and store.get("Z") is None, "the old run still serves"
    assert store.info().as_of == AS_OF
    tables = sa.inspect(store.engine).get_table_names()
    assert sorted(tables) == sorted([TABLE, f"{TABLE}_meta"]), f"no staging table left: {tables}"


def test_a_refresh_drops_what_a_killed_refresh_left_behind(url):
    # Given a store, and the staging table of a refresh that was killed part-way
    store = OnlineStore(url)
    store.refresh([[make_row("A")]], make_info())
    leftover = sa.Table(f"{TABLE}_new_deadbeef0000", sa.MetaData(), sa.Column("x", sa.Integer))
    with store.engine.begin() as conn:
        leftover.create(conn)
    # When the next refresh runs
    store.refresh([[make_row("B", LATER)]], make_info(LATER))
    # Then the leftover is gone and the new run serves
    tables = sa.inspect(store.engine).get_table_names()
    assert sorted(tables) == sorted([TABLE, f"{TABLE}_meta"]), f"leftovers dropped: {tables}"
    assert store.get("B").as_of == LATER and store.get("A") is None


# -- rows built from a dataset ------------------------------------------------------------------


def models_for(ds) -> ModelSet:
    """A ModelSet whose one model was trained with the dataset's feature spec (no booster
    needed: building rows reads only the spec and the version)."""
    spec = feature_spec(ds).to_dict()
    return ModelSet({"churn": LoadedModel("tierwise-churn", "7", "champion", "run", None, spec)})


def test_rows_carry_the_history_as_of_the_date_and_the_held_products(make_dataset):
    # Given the three-customer base, plus a transaction of A after the as-of date
    tables = base_tables()
    late = pd.DataFrame(
        {
            "customer_id": ["A"],
            "ts": ["2024-01-05T10:00:00Z"],
            "amount": [999.0],
            "product": ["savings"],
            "channel": ["web"],
        }
    )
    tables["transactions"] = pd.concat([tables["transactions"], late], ignore_index=True)
    ds = load_dataset(make_dataset(tables, ROLES))
    # When the rows of 2024-01-01 are built
    info, chunks = build_rows(ds, AS_OF, models_for(ds))
    rows = {r["customer_id"]: r for chunk in chunks for r in chunk}
    # Then: the population at the date, and what each customer had done by then
    assert sorted(rows) == ["A", "B", "C"], "B closes only in February: still a customer"
    assert info.rows == 3 and info.as_of == AS_OF and info.model_versions == {"tierwise-churn": "7"}
    a = json.loads(rows["A"]["history"])
    assert (a["last_transaction_date"], a["last_transaction_amount"]) == ("2023-12-20", -20.0), (
        "the last transaction on or before the date; the January one is the future"
    )
    assert (a["last_transaction_product"], a["last_transaction_channel"]) == ("checking", "app")
    b = json.loads(rows["B"]["history"])
    assert (b["last_complaint_date"], b["last_satisfaction"]) == ("2023-11-01", 1.0)
    assert json.loads(rows["A"]["held"]) == ["checking"] and json.loads(rows["C"]["held"]) == []
    assert json.loads(rows["B"]["held"]) == ["savings"], "B's savings closes on 15 January"


def test_rows_carry_the_service_tier_its_reason_and_the_next_tier(make_dataset):
    ds = load_dataset(make_dataset())
    _, chunks = build_rows(ds, AS_OF, models_for(ds))
    rows = {r["customer_id"]: r for chunk in chunks for r in chunk}
    a = rows["A"]
    assert (a["tier"], a["tier_rank"], a["next_tier"]) == ("major", 2, "VIP"), (
        "A moved to major on 1 December; VIP is next in the tier order"
    )
    assert a["gap_to_next_tier"] is None, "no VIP customer to measure the gap against"
    assert a["tier_reason"].startswith("major tier, in the current tier for 31 days; by value, "), a
    features = json.loads(a["features"])
    assert features["txn_count_365d"] == 2.0 and features["tier"] == "major"
    assert all(v is None or isinstance(v, str | int | float) for v in features.values()), (
        "feature values are plain JSON values"
    )


def test_the_store_serves_what_build_rows_made(make_dataset, url):
    ds = load_dataset(make_dataset(settings=ROLES))
    info, chunks = build_rows(ds, AS_OF, models_for(ds))
    store = OnlineStore(url)
    store.refresh(chunks, info)
    got = store.get("B")
    assert got.held == ("savings",) and got.history["last_complaint_date"] == "2023-11-01"
    assert store.info().specs == [feature_spec(ds).to_dict()], "the spec the rows were built for"
