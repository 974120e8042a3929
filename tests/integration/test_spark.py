"""The Spark engine against the DuckDB engine: same features, same probabilities (Spark local)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from features.catalogue import features_of
from features.contract import load_dataset
from features.pipeline import build_features
from features.spark import (
    NotPortableError,
    spark_features,
    spark_session,
    transpile,
    write_spark_features,
)
from features.spec import feature_spec
from tests.conftest import base_tables

FEATURE_DATES = ("2025-12-31", "2026-06-30")
FEATURE_RTOL = 1e-9


@pytest.fixture(scope="session")
def spark():
    """One local Spark for the session (two cores, as CI has), stopped at the end."""
    started = time.perf_counter()
    # Short-lived JVM: the client JIT compiler and no web UI halve start-up and warm-up CPU.
    fast_start = {
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        "spark.ui.enabled": "false",
    }
    session = spark_session("local[2]", app="tierwise-tests", config=fast_start)
    print(f"\nSpark session started in {time.perf_counter() - started:.1f} s")
    yield session
    session.stop()


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Both engines' frames with as_of as datetime64 (DuckDB gives timestamps, Spark dates)."""
    out = frame.copy()
    out["as_of"] = pd.to_datetime(out["as_of"]).astype("datetime64[ns]")
    return out.reset_index(drop=True)


def assert_same_features(duck: pd.DataFrame, spark: pd.DataFrame, categorical: set[str]) -> None:
    """Same columns and rows in the same order; categoricals exact, numerics within 1e-9."""
    duck, spark = _comparable(duck), _comparable(spark)
    assert list(spark.columns) == list(duck.columns), "Spark gives DuckDB's columns, in order"
    assert len(spark) == len(duck), f"row count: Spark {len(spark)}, DuckDB {len(duck)}"
    keys = ["customer_id", "as_of"]
    pd.testing.assert_frame_equal(spark[keys], duck[keys], obj="(customer_id, as_of) rows")
    differ = {}
    for column in duck.columns[2:]:
        a, b = duck[column], spark[column]
        if column in categorical:
            same = (a == b) | (a.isna() & b.isna())
        else:
            x, y = a.to_numpy(np.float64), b.to_numpy(np.float64)
            same = np.isclose(y, x, rtol=FEATURE_RTOL, atol=0) | (np.isnan(x) & np.isnan(y))
        if not same.all():
            first = np.flatnonzero(~np.asarray(same))[0]
            differ[column] = f"{(~same).sum()} rows, e.g. DuckDB {a[first]!r} Spark {b[first]!r}"
    assert not differ, f"features that differ between the engines: {differ}"


def test_transpiled_day_counts_follow_day_boundaries_as_in_duckdb(spark):
    # given two timestamps two hours apart across midnight: DuckDB counts 1 day
    sql = "SELECT date_diff('day', TIMESTAMP '2024-01-01 23:00:00', TIMESTAMP '2024-01-02 01:00:00') AS d"
    # when the DuckDB SQL runs on Spark through transpile
    days = spark.sql(transpile(sql)).collect()[0]["d"]
    # then Spark counts the day boundary too (its three-argument datediff would say 0)
    assert days == 1, (
        f"date_diff('day') must count day boundaries on Spark as in DuckDB, got {days}"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT date_diff('month', a, b) FROM t",
        "SELECT dayofweek(d) FROM t",
        "SELECT list(x ORDER BY y) FROM t",
        "SELECT i FROM t CROSS JOIN range(12) r(i)",
    ],
)
def test_transpile_refuses_sql_that_would_change_meaning(sql):
    # given DuckDB SQL that sqlglot turns into something else on Spark (docs/design.md)
    # when / then it is refused with a reason, not silently rewritten
    with pytest.raises(NotPortableError):
        transpile(sql)


def test_spark_features_equal_duckdb_features_on_the_demo_base(demo_data, spark):
    # given the demo base, loaded and validated by DuckDB
    ds = load_dataset(demo_data)
    spec = feature_spec(ds)
    # when both engines compute the features at two dates
    duck = build_features(ds, FEATURE_DATES, spec)
    on_spark = spark_features(ds, FEATURE_DATES, spec, spark).toPandas()
    # then every feature of every (customer_id, as_of) agrees
    categorical = {f.name for f in features_of(spec) if f.kind == "categorical"}
    assert_same_features(duck, on_spark, categorical)


def test_spark_features_without_optional_tables(make_dataset, spark, tmp_path):
    # given a model's spec made with every table, and CSV data with only the required ones
    full = load_dataset(make_dataset(name="full"))
    spec = feature_spec(full)
    tables = {k: v for k, v in base_tables().items() if k in ("customers", "transactions")}
    ds = load_dataset(make_dataset(tables, name="required_only"))
    dates = ["2023-12-31", "2024-03-01"]
    # when Spark writes the features to parquet
    rows = write_spark_features(ds, dates, tmp_path / "features.parquet", spec, spark)
    on_spark = pd.read_parquet(tmp_path / "features.parquet")
    # then they equal DuckDB's, with the missing tables' features null in both
    duck = build_features(ds, dates, spec)
    assert rows == len(duck), f"rows written {rows}, DuckDB rows {len(duck)}"
    categorical = {f.name for f in features_of(spec) if f.kind == "categorical"}
    assert_same_features(duck, on_spark, categorical)
    assert on_spark["holdings_open_count"].isna().all(), "no holdings table: holdings unknown"


def _pandas_parquet(make_dataset, tmp_path) -> str:
    """The base tables as pandas writes parquet: nanosecond UTC timestamps, text dates."""
    tables = {k: v.copy() for k, v in base_tables().items()}
    for frame in tables.values():
        if "ts" in frame:
            frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return str(make_dataset(tables, fmt="parquet", name="pandas_parquet"))


def _sqlite(make_dataset, tmp_path) -> str:
    """The base tables in a SQLite database, read through a SQLAlchemy URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'base.sqlite'}")
    for name, frame in base_tables().items():
        frame.to_sql(name, engine, index=False)
    engine.dispose()
    return f"sqlite:///{tmp_path / 'base.sqlite'}"


@pytest.mark.parametrize("source", [_pandas_parquet, _sqlite], ids=["pandas-parquet", "sqlite"])
def test_spark_reads_other_sources_like_duckdb(source, make_dataset, spark, tmp_path):
    # given the same small base as parquet written by pandas, or in a SQL database
    ds = load_dataset(source(make_dataset, tmp_path))
    spec = feature_spec(ds)
    dates = ["2023-12-31", "2024-03-01"]
    # when both engines compute the features
    on_spark = spark_features(ds, dates, spec, spark).toPandas()
    # then they agree
    categorical = {f.name for f in features_of(spec) if f.kind == "categorical"}
    assert_same_features(build_features(ds, dates, spec), on_spark, categorical)
