"""Batch scoring on Spark: the same features (transpiled SQL) and the same predictors."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from features.contract import Dataset
from features.model import Predictor
from features.spark import feature_frame, register_spark_spine, register_tables, spark_session
from features.spine import as_of_dates
from serving.scoring import KEYS, ModelSet, open_holdings_sql, probability_column

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession


def spark_scores(
    ds: Dataset,
    as_of: dt.date | str | Sequence[dt.date | str],
    models: ModelSet,
    spark: SparkSession | None = None,
) -> DataFrame:
    """``serving.scoring.score_customers`` on Spark: features, then the champions' predictors.

    Each model travels to the workers as plain data (``Predictor.to_dict``: LightGBM text
    and JSON) and is rebuilt once per partition iterator inside ``mapInPandas`` with one
    LightGBM thread (the workers already use every core).

    Returns:
        A Spark DataFrame with the columns of ``score_customers`` (null where the customer
        holds the cross-sell product at that date), ordered by customer_id, as_of.

    Raises:
        ValueError: no models, no as-of dates, or SQL that is not portable.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, StructField, StructType

    if not models.models:
        raise ValueError("no models to score with")
    dates = as_of_dates([as_of] if isinstance(as_of, dt.date | str) else as_of)
    spark = spark or spark_session()
    tables = register_tables(ds, spark)
    spine = register_spark_spine(tables, dates)
    scored: DataFrame | None = None
    for spec, targets in models.by_spec():
        features = feature_frame(ds, tables, spine, spec, ordered=False)
        keys = (
            [c for c in KEYS if c in features.columns]
            if scored is None
            else ["customer_id", "as_of"]
        )
        shipped = [models.models[t].predictor.to_dict() for t in targets]
        schema = StructType(
            [features.schema[k] for k in keys]
            + [StructField(probability_column(t), DoubleType()) for t in targets]
        )
        part = features.mapInPandas(
            functools.partial(_predict_batches, keys=keys, shipped=shipped), schema
        )
        scored = part if scored is None else scored.join(part, ["customer_id", "as_of"], "left")
    products = {
        t: m.predictor.meta["product"]
        for t, m in models.models.items()
        if m.predictor.meta.get("product")
    }
    if products and "holdings" in ds.tables:
        held = tables.sql(open_holdings_sql(spine))
        for target, product in sorted(products.items()):
            holders = held.where(F.col("product") == product).select(
                "customer_id", "as_of", F.lit(True).alias("_held")
            )
            column = probability_column(target)
            scored = (
                scored.join(holders, ["customer_id", "as_of"], "left")
                .withColumn(column, F.when(F.col("_held"), F.lit(None)).otherwise(F.col(column)))
                .drop("_held")
            )
    versions = ",".join(f"{n}={v}" for n, v in sorted(models.versions.items()))
    return scored.withColumn("model_versions", F.lit(versions)).orderBy("customer_id", "as_of")


def _predict_batches(
    batches: Iterator[pd.DataFrame], keys: list[str], shipped: list[dict[str, Any]]
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: rebuild the predictors once, then score every batch of feature rows."""
    predictors = [Predictor.from_dict(data, threads=1) for data in shipped]
    for batch in batches:
        out = batch[keys].copy()
        for predictor in predictors:
            out[probability_column(predictor.target)] = predictor.predict_frame(batch)
        yield out
