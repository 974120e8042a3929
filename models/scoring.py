"""Scoring customers with the registry's champion models, in memory (monitoring, notebooks).

The nightly job over the whole base is ``batch.run``; the service shares the predictor.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.catalogue import FeatureSpec
from features.contract import Dataset
from features.history import held_products_sql
from features.pipeline import build_features
from features.spine import as_of_dates, register_spine
from models.registry import CHAMPION, LoadedModel, load_aliased
from tierwise.settings import Settings

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


def open_holdings(ds: Dataset, as_of: list[dt.date]) -> pd.DataFrame | None:
    """Holdings open at each date for the population then; None without a holdings table."""
    register_spine(ds, as_of, name="holdings_spine")
    sql = held_products_sql(ds, "holdings_spine")
    return None if sql is None else ds.con.execute(sql).df()


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
