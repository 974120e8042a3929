"""Serving inputs: one merged feature spec, population figures, and the tier context of a chunk."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from batch.inputs import Population, inputs_sql, tier_context
from features.catalogue import features_of
from features.contract import load_dataset
from features.spec import FeatureSpec, feature_spec, merged_spec
from features.spine import register_spine
from features.tiers import assign_tiers
from tests.conftest import base_tables

AS_OF = dt.date(2024, 1, 1)


def test_a_merged_spec_computes_every_feature_of_each_spec():
    old = FeatureSpec(products=["checking"], channels=["app"], profile={"age": "numeric"})
    new = FeatureSpec(
        products=["checking", "savings"], channels=["web"], profile={"region": "categorical"}
    )
    merged = merged_spec([old, new])
    names = {f.name for f in features_of(merged)}
    for spec in (old, new):
        missing = {f.name for f in features_of(spec)} - names
        assert not missing, f"features a model needs but the merged spec lacks: {missing}"
    assert merged_spec([old]) is old


def test_specs_of_different_catalogue_versions_do_not_merge():
    with pytest.raises(ValueError, match="different feature versions"):
        merged_spec([FeatureSpec(version=1), FeatureSpec(version=2)])


@pytest.mark.parametrize("with_tiers", [True, False])
def test_the_tier_context_of_a_chunk_matches_the_whole_population(make_dataset, with_tiers):
    # Given the three-customer base, with or without a service-tier table
    tables = base_tables()
    if not with_tiers:
        del tables["tiers"]
    ds = load_dataset(make_dataset(tables))
    spec = feature_spec(ds)
    register_spine(ds, [AS_OF])
    inputs = ds.con.execute(inputs_sql(ds, spec)).df()
    population = Population.of(ds, f"({inputs_sql(ds, spec)})")
    # When the context is computed one customer at a time
    alone = [tier_context(inputs.iloc[[i]], population, spec) for i in range(len(inputs))]
    whole = tier_context(inputs, population, spec)
    # Then each chunk gets what the whole population gives it
    pd.testing.assert_frame_equal(pd.concat(alone), whole, check_dtype=False)
    assert whole["tier_reason"].notna().all(), "every customer has a tier reason"
    # And without a tiers table the value-tier reason is the one tiers.py gives
    if not with_tiers:
        expected = assign_tiers(ds, [AS_OF]).set_index("customer_id")["tier_reason"]
        got = dict(zip(inputs["customer_id"], whole["tier_reason"], strict=True))
        assert got == expected.to_dict()


def test_the_batch_tier_context_uses_the_datasets_own_value_tiers(make_dataset):
    # Given a base without a service-tier table, set to the ABC value tiers
    tables = base_tables()
    del tables["tiers"]
    ds = load_dataset(make_dataset(tables, settings={"value_tiers": "abc"}))
    spec = feature_spec(ds)
    register_spine(ds, [AS_OF])
    inputs = ds.con.execute(inputs_sql(ds, spec)).df()
    context = tier_context(inputs, Population.of(ds, f"({inputs_sql(ds, spec)})"), spec)
    # Then the batch names the same tiers, with the same reasons, as tiers.py's SQL does
    expected = assign_tiers(ds, [AS_OF]).set_index("customer_id")
    assert set(context["value_tier"].dropna()) <= {"A", "B", "C"}, set(context["value_tier"])
    got = dict(zip(inputs["customer_id"], context["tier_reason"], strict=True))
    assert got == expected["tier_reason"].to_dict()
