"""The Spark engine: the same feature SQL and the same predictor, run on a Spark cluster.

Nothing here restates a feature: the typed views (``schema.typed_view_sql``), the spine
(``spine.spine_sql``) and the features (``pipeline.feature_sql``, which embeds the tiers)
are the DuckDB SQL text, transpiled to Spark SQL with sqlglot. ``transpile`` refuses the
constructs docs/design.md ("Portable SQL for Spark") found to change meaning on the way, and rewrites ``date_diff('day')``
to Spark's date-based ``datediff`` so day counts follow day boundaries as in DuckDB.

Validation stays in DuckDB: a ``Dataset`` (``load_dataset``) is loaded first, and Spark then
reads the same files (parquet as they are, CSV with the contract columns as text) and types
them with the same SQL. SQL-database sources are handed over from DuckDB's typed views
through Arrow.

pyspark is an optional extra (``pip install .[spark]``) and is imported only when used.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from features.contract import Dataset
from features.pipeline import feature_sql
from features.schema import TABLES, typed_view_sql
from features.spec import FeatureSpec, feature_spec
from features.spine import as_of_dates, spine_sql
from features.sql import ident
from features.urls import safe_url

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


MASTER_ENV = "TIERWISE_SPARK_MASTER"
INSTALL_HINT = "pip install .[spark]"
LOCAL_SHUFFLE_PARTITIONS_PER_CORE = 2  # a few tasks per core; Spark's 200 suits clusters
# Columns of the scores table besides the probabilities, as models.scoring.KEYS.
_UTC_JAVA = "-Duser.timezone=UTC"
# Spark rejects nanosecond parquet timestamps; with this they read as longs (converted here).
_NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"
# DuckDB functions whose Spark namesake means something else (docs/design.md).
_DIFFERENT_NAMESAKES = {"weekday": "day-of-week numbering differs between DuckDB and Spark"}


class NotPortableError(ValueError):
    """DuckDB SQL that would change meaning on Spark; the message says which construct."""


# -- session -----------------------------------------------------------------------------------


def spark_session(
    master: str | None = None,
    app: str = "tierwise",
    config: Mapping[str, str] | None = None,
) -> SparkSession:
    """A SparkSession pinned to UTC, with quiet logs; the active one if it already exists.

    The master is ``master``, else ``$TIERWISE_SPARK_MASTER``, else whatever the usual Spark
    settings say (``spark-defaults.conf``, ``$MASTER``, ``$PYSPARK_SUBMIT_ARGS``), else
    ``local[*]``. Python workers run this interpreter unless ``$PYSPARK_PYTHON`` says
    otherwise. Local masters get a few shuffle partitions per core instead of 200.

    Args:
        master: the Spark master URL.
        app: the application name.
        config: more Spark settings; JVM options given here keep ``-Duser.timezone=UTC``.

    Raises:
        ImportError: pyspark is not installed (``pip install .[spark]``).
    """
    _require_pyspark()
    from pyspark.sql import SparkSession

    # Workers otherwise run `python3` from PATH, which may lack lightgbm (docs/design.md).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        **(config or {}),
        "spark.sql.session.timeZone": "UTC",
        _NANOS_AS_LONG: "true",
    }
    for key in ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"):
        settings[key] = f"{_UTC_JAVA} {settings.get(key, '')}".strip()
    builder = SparkSession.builder.appName(app)
    for key, value in settings.items():
        builder = builder.config(key, value)
    master = master or os.environ.get(MASTER_ENV)
    if master:
        builder = builder.master(master)
    spark = builder.getOrCreate()
    context = spark.sparkContext
    context.setLogLevel("ERROR")
    # Again per session: a session that existed before keeps its own settings otherwise.
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set(_NANOS_AS_LONG, "true")
    if context.master.startswith("local") and "spark.sql.shuffle.partitions" not in settings:
        partitions = LOCAL_SHUFFLE_PARTITIONS_PER_CORE * context.defaultParallelism
        spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    return spark


def _require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f"the Spark engine needs pyspark, which is not installed: {INSTALL_HINT}"
        ) from err


# -- SQL ---------------------------------------------------------------------------------------


def transpile(sql: str, tables: Mapping[str, str] | None = None) -> str:
    """DuckDB SQL (the portable subset of docs/design.md) as Spark SQL with the same meaning.

    Args:
        sql: one DuckDB statement.
        tables: table names to replace (e.g. ``customers`` -> a session's temp view).

    Returns:
        Spark SQL text. ``date_diff('day', a, b)`` becomes Spark's ``datediff(b, a)``, which
        counts day boundaries as DuckDB does (Spark's three-argument form counts whole 24-hour
        periods).

    Raises:
        NotPortableError: a construct that sqlglot translates into something else on Spark:
            ``date_diff`` in other units than days, day-of-week functions, ``list(... ORDER
            BY ...)``, or a table function such as ``CROSS JOIN range(12)``.
    """
    return _to_spark(sql, tables).sql(dialect="spark")


def _to_spark(sql: str, tables: Mapping[str, str] | None = None) -> exp.Expression:
    """The parsed statement, checked and rewritten for Spark (still dialect-neutral AST)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    for node in list(tree.walk()):
        _check_portable(node)
        if isinstance(node, exp.DateDiff):
            node.replace(exp.Anonymous(this="DATEDIFF", expressions=[node.this, node.expression]))
    if tables:
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            name = table.name
            if not table.args.get("db") and name in tables and name not in ctes:
                if not table.alias:  # columns qualified by the table's own name still resolve
                    table.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
                table.set("this", exp.to_identifier(tables[name]))
    return tree


def _check_portable(node: exp.Expression) -> None:
    if isinstance(node, exp.DateDiff):
        unit = node.text("unit").upper() or "DAY"
        if unit != "DAY":
            raise NotPortableError(
                f"date_diff in {unit.lower()}s counts boundaries in DuckDB but whole units on "
                f"Spark: count months as year(d)*12+month(d) ({node.sql('duckdb')})"
            )
    elif isinstance(node, exp.DayOfWeek | exp.DayOfWeekIso):
        raise NotPortableError(
            f"day-of-week numbering differs between DuckDB and Spark: {node.sql('duckdb')}"
        )
    elif isinstance(node, exp.Anonymous) and node.name.lower() in _DIFFERENT_NAMESAKES:
        raise NotPortableError(f"{_DIFFERENT_NAMESAKES[node.name.lower()]}: {node.sql('duckdb')}")
    elif isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
        raise NotPortableError(
            f"list(... ORDER BY ...) loses its order on Spark: {node.sql('duckdb')}"
        )
    elif isinstance(node, exp.Table) and isinstance(node.this, exp.Func):
        raise NotPortableError(
            f"table function {node.this.sql('duckdb')} has no Spark equivalent here; "
            "use unnest(range(n)) in the SELECT list"
        )


# -- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SparkTables:
    """A dataset's typed tables registered in a Spark session as temp views.

    ``views`` maps each contract table of the dataset to its view; names are unique per
    registration, so several datasets can share a session.
    """

    spark: SparkSession
    views: dict[str, str]
    prefix: str

    def sql(self, duckdb_sql: str) -> DataFrame:
        """Run DuckDB SQL over the contract tables' names on Spark."""
        return self.spark.sql(transpile(duckdb_sql, self.views))


def register_tables(ds: Dataset, spark: SparkSession) -> SparkTables:
    """Register the typed tables of a loaded (validated) dataset in ``spark``.

    Files are read by Spark: parquet as stored (nanosecond timestamps, which Spark refuses,
    as longs converted to microseconds), CSV with DuckDB's detected dialect and the contract
    columns as text; each ``<table>`` view is the transpiled typed-view SELECT that DuckDB
    uses. SQL-database sources, and nanosecond parquet in a session not made by
    ``spark_session``, are handed over from DuckDB's typed views through Arrow instead.

    Raises:
        ValueError: Spark read a table differently from DuckDB (other row count, or values
            DuckDB parsed that Spark could not), so features could not match.
    """
    prefix = f"tierwise_{uuid.uuid4().hex[:10]}_"
    views = {name: prefix + name for name in sorted(ds.tables)}
    root = None if "://" in ds.source else Path(ds.source)
    for name, view in views.items():
        raw = _read_raw(ds, spark, root, name) if root is not None else None
        if raw is None:
            _from_duckdb(ds, spark, name).createOrReplaceTempView(view)
            continue
        raw.createOrReplaceTempView(prefix + "raw_" + name)
        typed = typed_view_sql(name, ds.profile)
        spark.sql(
            transpile(typed, {f"raw_{name}": prefix + "raw_" + name})
        ).createOrReplaceTempView(view)
        if _parsed_from_text(ds, name):
            _check_same_values(ds, spark, name, view)
    return SparkTables(spark, views, prefix)


def _read_raw(ds: Dataset, spark: SparkSession, root: Path, name: str) -> DataFrame | None:
    """The raw table as Spark reads the file, or None where Spark cannot read it faithfully."""
    parquet, csv = root / f"{name}.parquet", root / f"{name}.csv"
    if not parquet.exists():
        return _read_csv(ds, spark, csv, name)
    nanos = _nanosecond_timestamps(parquet)
    if not nanos:
        return spark.read.parquet(str(parquet))
    if spark.conf.get(_NANOS_AS_LONG, "false").lower() != "true":
        return None
    # Read as nanoseconds since the epoch (pandas writes those): UTC instants, tz or not.
    frame = spark.read.parquet(str(parquet))
    return frame.selectExpr(
        *(
            f"timestamp_micros({_bq(c)} DIV 1000) AS {_bq(c)}" if c in nanos else _bq(c)
            for c in frame.columns
        )
    )


def _nanosecond_timestamps(path: Path) -> list[str]:
    """Columns stored as nanosecond timestamps (Spark refuses them unless read as longs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = path if path.is_file() else next(iter(sorted(path.rglob("*.parquet"))), None)
    if first is None:
        return []
    return [
        f.name
        for f in pq.read_schema(first)
        if pa.types.is_timestamp(f.type) and f.type.unit == "ns"
    ]


def _bq(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


# DuckDB-detected types of non-contract CSV columns that Spark parses the same way.
_CSV_TYPES = {
    "BIGINT": "bigint",
    "INTEGER": "bigint",
    "SMALLINT": "bigint",
    "TINYINT": "bigint",
    "DOUBLE": "double",
    "FLOAT": "double",
    "BOOLEAN": "boolean",
    "DATE": "date",
}


def _read_csv(ds: Dataset, spark: SparkSession, path: Path, name: str) -> DataFrame:
    """The CSV with DuckDB's dialect and column types: contract columns as text."""
    sniff = ds.con.execute(
        "SELECT Delimiter, Quote, Escape, HasHeader, DateFormat FROM sniff_csv(?)", [str(path)]
    ).fetchall()[0]
    delimiter, quote, escape, header, date_format = (
        None if value in ("(empty)", "") else value for value in sniff
    )
    contract = {c.name for c in TABLES[name].columns}
    fields = []
    for column, sql_type, *_ in ds.con.execute(f"DESCRIBE raw_{name}").fetchall():
        spark_type = "string"
        if column not in contract:
            spark_type = _CSV_TYPES.get(sql_type, "string")
            if spark_type == "date" and date_format not in (None, "%Y-%m-%d"):
                spark_type = "string"
            if sql_type.startswith("DECIMAL"):
                spark_type = "double"
        fields.append(f"{_bq(column)} {spark_type}")
    quote = quote or '"'
    return (
        spark.read.schema(", ".join(fields))
        .option("header", str(bool(header)).lower())
        .option("sep", delimiter or ",")
        .option("quote", quote)
        # Doubled quotes inside quoted fields (RFC 4180), unless DuckDB found another escape.
        .option("escape", escape or quote)
        .option("mode", "PERMISSIVE")
        .csv(str(path))
    )


def _parsed_from_text(ds: Dataset, name: str) -> bool:
    """Whether typing the table parses text (CSV, or dates/numbers stored as strings)."""
    kinds = {c.name: c.kind for c in TABLES[name].columns}
    raw = ds.con.execute(f"DESCRIBE raw_{name}").fetchall()
    return any(kinds.get(row[0], "string") != "string" and row[1] == "VARCHAR" for row in raw)


def _check_same_values(ds: Dataset, spark: SparkSession, name: str, view: str) -> None:
    """Rows and non-null counts of every typed column agree between DuckDB and Spark."""
    columns = [row[0] for row in ds.con.execute(f"DESCRIBE {name}").fetchall()]
    select = ", ".join(["count(*)", *(f"count({ident(c)})" for c in columns)])
    duck = ds.con.execute(f"SELECT {select} FROM {name}").fetchall()[0]
    spark_row = spark.sql(transpile(f"SELECT {select} FROM {name}", {name: view})).collect()[0]
    labels = ["rows", *columns]
    differ = [
        f"{label}: DuckDB {d:,}, Spark {s:,}"
        for label, d, s in zip(labels, duck, spark_row, strict=True)
        if d != s
    ]
    if differ:
        raise ValueError(
            f"Spark read {name} of {safe_url(ds.source)} differently from DuckDB (non-null counts "
            f"{'; '.join(differ)}); convert the table to parquet"
        )


def _from_duckdb(ds: Dataset, spark: SparkSession, name: str) -> DataFrame:
    """DuckDB's typed view as a Spark DataFrame, through Arrow (timestamps as UTC wall clock)."""
    described = [row[:2] for row in ds.con.execute(f"DESCRIBE {name}").fetchall()]
    # Zone-aware on the way, so that Arrow and Spark cannot read a naive value in a local zone.
    exprs = [
        f"CAST({ident(c)} AS TIMESTAMPTZ) AS {ident(c)}" if t == "TIMESTAMP" else ident(c)
        for c, t in described
    ]
    table = ds.con.sql(f"SELECT {', '.join(exprs)} FROM {name}").to_arrow_table()
    frame = spark.createDataFrame(table)
    for column, sql_type in described:
        if sql_type == "TIMESTAMP":
            frame = frame.withColumn(column, frame[column].cast("timestamp_ntz"))
    return frame


# -- features ----------------------------------------------------------------------------------


def register_spark_spine(tables: SparkTables, dates: Sequence[dt.date]) -> str:
    """Register the population at each date as a Spark view (same SQL as DuckDB's); its name."""
    view = f"{tables.prefix}spine_{uuid.uuid4().hex[:6]}"
    tables.sql(spine_sql(dates)).createOrReplaceTempView(view)
    return view


def feature_frame(
    ds: Dataset, tables: SparkTables, spine: str, spec: FeatureSpec, ordered: bool = True
) -> DataFrame:
    """The pipeline's feature SQL over a registered spine, transpiled and run on Spark."""
    tree = _to_spark(feature_sql(ds, spec, spine), tables.views)
    if not ordered:  # the caller sorts later; one global sort is enough
        tree.set("order", None)
    return tables.spark.sql(tree.sql(dialect="spark"))


def spark_features(
    ds: Dataset,
    as_of: Sequence[dt.date | str],
    spec: FeatureSpec | None = None,
    spark: SparkSession | None = None,
) -> DataFrame:
    """The features of ``pipeline.build_features``, computed on Spark.

    Args:
        ds: the loaded (validated) dataset; Spark reads its source again.
        as_of: the as-of dates (dates or ISO strings).
        spec: the feature set; by default derived from ``ds``.
        spark: the session; ``spark_session()`` by default.

    Returns:
        A Spark DataFrame with ``customer_id, as_of`` then ``features_of(spec)`` in order,
        numerics DOUBLE and categoricals STRING, ordered by customer_id, as_of.

    Raises:
        ValueError: no as-of dates, one that is not an ISO date, or Spark read the source
            differently from DuckDB.
    """
    dates = as_of_dates(as_of)
    spec = spec or feature_spec(ds)
    spark = spark or spark_session()
    tables = register_tables(ds, spark)
    return feature_frame(ds, tables, register_spark_spine(tables, dates), spec)


def write_spark_features(
    ds: Dataset,
    as_of: Sequence[dt.date | str],
    out: Path | str,
    spec: FeatureSpec | None = None,
    spark: SparkSession | None = None,
) -> int:
    """Write ``spark_features`` as parquet: a directory ``out`` of part files, in order.

    Returns:
        The number of rows written (read back from the parquet footers).

    Raises:
        ValueError: as ``spark_features``.
    """
    out = str(out)
    spark = spark or spark_session()
    frame = spark_features(ds, as_of, spec, spark)
    frame.write.mode("overwrite").option("compression", "zstd").parquet(out)
    return spark.read.parquet(out).count()
