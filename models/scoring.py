"""Scoring customers with the registry's champion models: the one path to probabilities.

``predict_probabilities`` is where every calibrated probability comes from: the service (one
customer, ``serving.suggest``), the nightly batch (a chunk of customers, ``batch.chunks``)
and evaluation and monitoring (``score_frame``). ``held_mask`` is the one rule of products
held: a cross-sell model gives no probability, so no offer, for a product the customer has.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.spec import FeatureSpec
from models.model import Encoding, Predictor
from models.registry import CHAMPION, LoadedModel, load_aliased, load_uplift_aliased
from models.uplift import UpliftModel
from tierwise.settings import Settings

if TYPE_CHECKING:  # the batch's scoring needs DuckDB; a service worker starts without it
    from features.contract import Dataset

# Columns of the scores table besides the probabilities.
KEYS = ["customer_id", "as_of", "tier", "value"]

# The distinct feature encodings of some predictors, each with the targets that use it.
Encodings = tuple[tuple[Encoding, tuple[str, ...]], ...]


@dataclass
class ModelSet:
    """The models in use, keyed by target, the uplift models keyed by action (none: every
    action is ranked by propensity), and the versions to report with every score."""

    models: dict[str, LoadedModel]
    uplift: dict[str, UpliftModel] = field(default_factory=dict)

    @property
    def versions(self) -> dict[str, str]:
        models = [*self.models.values(), *self.uplift.values()]
        return {m.name: m.version for m in models}

    def by_spec(self) -> list[tuple[FeatureSpec, list[str]]]:
        """Targets grouped by the feature spec they were trained with (one group when trained together)."""
        groups: dict[str, list[str]] = {}
        for target, model in sorted(self.models.items()):
            groups.setdefault(json.dumps(model.spec, sort_keys=True), []).append(target)
        return [(FeatureSpec.from_dict(json.loads(k)), v) for k, v in sorted(groups.items())]


def load_champions(settings: Settings, alias: str = CHAMPION) -> ModelSet:
    """Load every Tierwise model's ``alias`` version from the registry, uplift models too
    (raises LookupError)."""
    uri, threads = settings.tracking_uri(), settings.threads
    return ModelSet(
        load_aliased(uri, alias, threads=threads), load_uplift_aliased(uri, alias, threads)
    )


def load_uplift_champions(settings: Settings, alias: str = CHAMPION) -> dict[str, UpliftModel]:
    """Every action's ``alias`` uplift model, keyed by action; empty when none is promoted
    (raises ``ModelIntegrityError``, a LookupError, for a version whose files fail checks)."""
    return load_uplift_aliased(settings.tracking_uri(), alias, threads=settings.threads)


def probability_column(target: str) -> str:
    """``churn`` -> ``churn_probability``; ``cross_sell_mortgage`` -> ``cross_sell_mortgage_probability``."""
    return f"{target}_probability"


def shared_encodings(predictors: Mapping[str, Predictor]) -> Encodings:
    """The distinct encodings of ``predictors`` and their targets, so that rows are encoded
    once for all the models trained together (they share one encoding)."""
    groups: dict[tuple, tuple[Encoding, list[str]]] = {}
    for target, predictor in predictors.items():
        enc = predictor.encoding
        key = (tuple(enc.features), json.dumps(enc.categories, sort_keys=True))
        groups.setdefault(key, (enc, []))[1].append(target)
    return tuple((enc, tuple(targets)) for enc, targets in groups.values())


def encode(encodings: Encodings, rows: pd.DataFrame | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Target -> the encoded matrix of ``rows``: a frame of feature rows, or one customer's
    feature values (a 1-row matrix made without pandas: the service's hot path)."""
    out: dict[str, np.ndarray] = {}
    for encoding, targets in encodings:
        matrix = encoding.matrix(rows) if isinstance(rows, pd.DataFrame) else encoding.row(rows)
        out.update(dict.fromkeys(targets, matrix))
    return out


def held_mask(product: str | None, held: Sequence[Collection[str]] | None) -> np.ndarray | None:
    """Which rows' customers hold ``product``: those get no cross-sell probability for it.

    The one place of the rule "no cross-sell offer of a product already held" for scores:
    a probability that is missing ranks no offer (the policy also lists it as held).

    Args:
        product: the product a cross-sell model predicts; None for other models.
        held: per row, the products the customer holds; None when holdings are unknown.

    Returns:
        A boolean array, one per row; None when no row can be held back.
    """
    if not product or held is None:
        return None
    return np.fromiter((product in h for h in held), dtype=bool, count=len(held))


def predict_probabilities(
    predictors: Mapping[str, Predictor],
    matrices: Mapping[str, np.ndarray],
    held: Sequence[Collection[str]] | None = None,
) -> dict[str, np.ndarray]:
    """Target -> calibrated probabilities of encoded rows (``encode``), NaN where ``held_mask``
    holds the row back.

    A model whose product every row holds is not run (the service's one customer).
    """
    out: dict[str, np.ndarray] = {}
    for target, predictor in predictors.items():
        matrix = matrices[target]
        mask = held_mask(predictor.meta.get("product"), held)
        if mask is not None and len(mask) and mask.all():
            out[target] = np.full(len(mask), np.nan)
            continue
        p = np.asarray(predictor.predict(matrix), dtype=np.float64)
        if mask is not None:
            p[mask] = np.nan
        out[target] = p
    return out


def score_frame(
    features: pd.DataFrame, models: ModelSet, targets: list[str], held: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One calibrated probability column per target for the feature rows (index kept).

    A cross-sell probability is missing (NaN) where ``held`` (customer_id, as_of, product)
    says the customer holds the product at that row's as-of date.
    """
    predictors = {t: models.models[t].predictor for t in targets}
    found = predict_probabilities(
        predictors, encode(shared_encodings(predictors), features), _held_by_row(features, held)
    )
    out = pd.DataFrame(index=features.index)
    for target in targets:
        out[probability_column(target)] = found[target]
    return out


def _held_by_row(features: pd.DataFrame, held: pd.DataFrame | None) -> list[set[str]] | None:
    """Per feature row, the products ``held`` lists for its customer and as-of day."""
    if held is None:
        return None
    products: dict[tuple, set[str]] = {}
    for key, product in zip(_keys(held), held["product"], strict=True):
        products.setdefault(key, set()).add(product)
    return [products.get(key, set()) for key in _keys(features)]


def _keys(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays(
        [frame["customer_id"].to_numpy(), pd.to_datetime(frame["as_of"]).to_numpy("datetime64[D]")]
    )


def open_holdings(ds: Dataset, as_of: list[dt.date]) -> pd.DataFrame | None:
    """Holdings open at each date for the population then; None without a holdings table."""
    from features.history import held_products_sql
    from features.spine import register_spine

    register_spine(ds, as_of, name="holdings_spine")
    sql = held_products_sql(ds, "holdings_spine")
    return None if sql is None else ds.con.execute(sql).df()


def score_customers(ds: Dataset, as_of: dt.date | str, models: ModelSet) -> pd.DataFrame:
    """Score the population at ``as_of``: keys, tier, value, one probability per target, versions."""
    from features.pipeline import build_features
    from features.spine import as_of_dates

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
