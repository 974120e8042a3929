"""Scoring customers with the registry's champion models (batch; the service shares the predictor)."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.catalogue import FeatureSpec
from features.contract import Dataset
from features.pipeline import build_features
from features.registry import CHAMPION, LoadedModel, load_aliased
from features.settings import Settings
from features.spine import as_of_dates, register_spine

# Columns of the scores table besides the probabilities.
KEYS = ["customer_id", "as_of", "tier", "value"]


@dataclass
class ModelSet:
    """The models in use, keyed by target, and the versions to report with every score."""

    models: dict[str, LoadedModel]

    @property
    def versions(self) -> dict[str, str]:
        return {m.name: m.version for m in self.models.values()}

    def by_spec(self) -> list[tuple[FeatureSpec, list[str]]]:
        """Targets grouped by the feature spec they were trained with (one group when trained together)."""
        groups: dict[str, list[str]] = {}
        for target, model in sorted(self.models.items()):
            groups.setdefault(json.dumps(model.spec, sort_keys=True), []).append(target)
        return [(FeatureSpec.from_dict(json.loads(k)), v) for k, v in sorted(groups.items())]


def load_champions(settings: Settings, alias: str = CHAMPION) -> ModelSet:
    """Load every Tierwise model's ``alias`` version from the registry (raises LookupError)."""
    return ModelSet(load_aliased(settings.tracking_uri(), alias, threads=settings.threads))


def probability_column(target: str) -> str:
    """``churn`` -> ``churn_probability``; ``cross_sell_mortgage`` -> ``cross_sell_mortgage_probability``."""
    return f"{target}_probability"


def score_frame(
    features: pd.DataFrame, models: ModelSet, targets: list[str], held: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One calibrated probability column per target for the feature rows (index kept).

    A cross-sell probability is missing (NaN) where ``held`` (customer_id, as_of, product)
    says the customer holds the product at that row's as-of date.
    """
    out = pd.DataFrame(index=features.index)
    keys = _keys(features)
    for target in targets:
        predictor = models.models[target].predictor
        out[probability_column(target)] = predictor.predict_frame(features)
        product = predictor.meta.get("product")
        if product is not None and held is not None:
            holders = _keys(held.loc[held["product"] == product])
            out.loc[keys.isin(holders), probability_column(target)] = np.nan
    return out


def _keys(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays(
        [frame["customer_id"].to_numpy(), pd.to_datetime(frame["as_of"]).to_numpy("datetime64[D]")]
    )


def open_holdings_sql(spine: str) -> str:
    """(customer_id, as_of, product) for spine rows holding a product open at their as-of date.

    The one definition of "holds at t" for both engines (DuckDB here, Spark by transpiling).
    """
    return f"""SELECT DISTINCT s.customer_id, s.as_of, h.product
        FROM {spine} s JOIN holdings h ON h.customer_id = s.customer_id
        WHERE h.opened <= s.as_of AND (h.closed IS NULL OR h.closed > s.as_of)"""


def open_holdings(ds: Dataset, as_of: list[dt.date]) -> pd.DataFrame | None:
    """Holdings open at each date for the population then; None without a holdings table."""
    if "holdings" not in ds.tables:
        return None
    register_spine(ds, as_of, name="holdings_spine")
    return ds.con.execute(open_holdings_sql("holdings_spine")).df()


def score_customers(ds: Dataset, as_of: dt.date | str, models: ModelSet) -> pd.DataFrame:
    """Score the population at ``as_of``: keys, tier, value, one probability per target, versions."""
    dates = as_of_dates([as_of])
    held = open_holdings(ds, dates)
    parts = []
    for spec, targets in models.by_spec():
        features = build_features(ds, dates, spec)
        if not parts:
            parts.append(features[[c for c in KEYS if c in features]])
        parts.append(score_frame(features, models, targets, held))
    scores = pd.concat(parts, axis=1)
    scores["model_versions"] = ",".join(f"{n}={v}" for n, v in sorted(models.versions.items()))
    return scores


def write_scores(scores: pd.DataFrame, out: Path, versions: dict[str, str]) -> Path:
    """Write the scores table atomically (a temporary file renamed into place)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(scores, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), b"tierwise.model_versions": json.dumps(versions).encode()}
    )
    staging = out.with_name(f".{out.name}.tmp")
    pq.write_table(table, staging)
    os.replace(staging, out)
    return out
