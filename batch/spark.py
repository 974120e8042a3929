"""The batch on Spark: the same inputs SQL and the same ``ChunkScorer``, run on the cluster.

The serving inputs are the SQL of ``batch.inputs``, transpiled and run on Spark; scoring
is ``ChunkScorer.score`` in ``mapInPandas``. PySpark is imported only when a run uses it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from batch.chunks import ChunkScorer
from batch.inputs import inputs_sql
from batch.runs import part_path
from features.contract import Dataset
from features.spec import FeatureSpec

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def session() -> SparkSession:
    """The Spark session of the settings (``features.spark.spark_session``)."""
    from features.spark import spark_session

    return spark_session()


def stage_on_spark(
    ds: Dataset, as_of: dt.date, spec: FeatureSpec, path: Path, spark: SparkSession
) -> None:
    """The serving inputs from the same SQL, transpiled and run on Spark (kept when complete)."""
    from features.spark import register_spark_spine, register_tables

    if (path / "_SUCCESS").exists():
        return
    tables = register_tables(ds, spark)
    spine = register_spark_spine(tables, [as_of])
    tables.sql(inputs_sql(ds, spec, spine)).write.mode("overwrite").parquet(str(path))


def score_on_spark(
    job: ChunkScorer,
    inputs: Path,
    staging: Path,
    key: str,
    spark: SparkSession,
) -> tuple[list[Path], int]:
    """``ChunkScorer.score`` in ``mapInPandas`` over the staged inputs; parts renamed in order.

    Each worker predicts with one LightGBM thread: Spark already runs a task per core.

    Returns:
        The parts in order, and 0: a Spark run is not resumed part by part.
    """
    from pyspark.sql.pandas.types import from_arrow_schema

    single = {
        t: dataclasses.replace(p, meta={**p.meta, "threads": 1})
        for t, p in job.scorer.predictors.items()
    }
    job = dataclasses.replace(job, scorer=dataclasses.replace(job.scorer, predictors=single))

    written = staging / "spark-parts"
    for old in staging.glob("part-*"):
        old.unlink()
    frame = spark.read.parquet(str(inputs))
    scored = frame.mapInPandas(
        functools.partial(_score_batches, job=job), from_arrow_schema(job.schema)
    )
    scored.orderBy("customer_id").write.mode("overwrite").option("compression", "zstd").parquet(
        str(written)
    )
    parts = []
    for i, file in enumerate(sorted(written.glob("part-*.parquet"))):
        part = part_path(staging, i, key)
        file.rename(part)
        parts.append(part)
    shutil.rmtree(written)
    return parts, 0


def _score_batches(batches: Iterator[pd.DataFrame], job: ChunkScorer) -> Iterator[pd.DataFrame]:
    for batch in batches:
        yield job.score(batch.reset_index(drop=True))
