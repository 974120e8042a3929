"""Reading a dataset under the data contract (docs/data-contract.md): ``load_dataset``.

A dataset is a directory of ``<table>.parquet`` / ``<table>.csv`` files or a SQLAlchemy URL,
with dataset settings (``tierwise.yaml``, ``features.dataset_settings``). Loading exposes
the raw tables to DuckDB as ``raw_<table>`` views, checks every rule (``features.validation``),
and only then defines the typed views ``customers``, ``transactions``, ... (``features.schema``)
that every other module reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import yaml
from pydantic import ValidationError

from features.dataset_settings import SETTINGS_FILE, DatasetSettings
from features.schema import TABLES, typed_view_sql
from features.sql import ident, literal
from features.urls import create_engine
from features.validation import Problem, ValidationReport, check_tables, raw_columns


class ContractError(ValueError):
    """The dataset breaks the data contract; ``report`` lists every broken rule."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.render())
        self.report = report


@dataclass
class Dataset:
    """A validated dataset: typed DuckDB views named after the contract's tables."""

    con: duckdb.DuckDBPyConnection
    source: str
    tables: frozenset[str]
    settings: DatasetSettings  # resolved: churn_definition, tier_order and data_end are set
    profile: dict[str, Literal["categorical", "numeric"]]  # customers' usable extra columns

    @property
    def tier_order(self) -> list[str]:
        return list(self.settings.tier_order or self.settings.value_scheme().names)


def connect(threads: int = 2, memory_limit: str = "8GB", temp_dir: Path | None = None):
    """A DuckDB connection pinned to UTC, bounded in threads and memory."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = '{temp_dir}'")
    return con


def load_dataset(
    source: str | Path,
    overrides: dict | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    settings_file: str | Path | None = None,
) -> Dataset:
    """Open, validate and type a dataset.

    Args:
        source: a directory of table files or a SQLAlchemy URL.
        overrides: dataset settings from the command line; they win over the settings file.
        con: the DuckDB connection to define the views on (a new one by default).
        settings_file: a YAML file of dataset settings for any source; it replaces a
            directory's ``tierwise.yaml``.

    Raises:
        ContractError: any rule of the contract is broken; nothing is defined then.
    """
    con = con or connect()
    report, tables, settings = _check(con, str(source), overrides or {}, settings_file)
    if not report.ok:
        raise ContractError(report)
    profile = _define_typed_views(con, tables, settings)
    resolved = _resolve_settings(con, tables, settings)
    return Dataset(con, str(source), frozenset(tables), resolved, profile)


def validate_dataset(
    source: str | Path, overrides: dict | None = None, settings_file: str | Path | None = None
) -> ValidationReport:
    """Check a dataset against the contract and return the report (never raises on bad data)."""
    report, _, _ = _check(connect(), str(source), overrides or {}, settings_file)
    return report


def fingerprint(ds: Dataset) -> str:
    """A content hash of the typed tables, independent of row order (for run lineage)."""
    parts = []
    for name in sorted(ds.tables):
        columns = ", ".join(ident(c.name) for c in TABLES[name].columns)
        rows, total = ds.con.execute(
            f"SELECT count(*), coalesce(sum(hash({columns})::HUGEINT), 0) FROM {name}"
        ).fetchall()[0]
        parts.append(f"{name}:{rows}:{total}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


# -- opening sources ---------------------------------------------------------------------------


def _is_url(source: str) -> bool:
    return "://" in source


def _open(con: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    """Expose every contract table the source has as a ``raw_<table>`` view; return their names."""
    if _is_url(source):
        return _open_sql(con, source)
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset {source!r} is neither a directory nor a SQLAlchemy URL")
    found = []
    for name, spec in TABLES.items():
        parquet, csv = root / f"{name}.parquet", root / f"{name}.csv"
        if parquet.exists():
            # A directory named <table>.parquet holds a partitioned table.
            path = f"{parquet}/**/*.parquet" if parquet.is_dir() else str(parquet)
            con.execute(f"CREATE VIEW raw_{name} AS SELECT * FROM read_parquet({literal(path)})")
        elif csv.exists():
            # Contract columns are read as text so that bad values are reported, not guessed at.
            header = con.execute(f"DESCRIBE SELECT * FROM read_csv({literal(str(csv))})").fetchall()
            known = {c.name for c in spec.columns} & {row[0] for row in header}
            types = "{" + ", ".join(f"{literal(c)}: 'VARCHAR'" for c in sorted(known)) + "}"
            con.execute(
                f"CREATE VIEW raw_{name} AS SELECT * FROM read_csv({literal(str(csv))}, types = {types})"
            )
        else:
            continue
        found.append(name)
    return found


def _open_sql(con: duckdb.DuckDBPyConnection, url: str) -> list[str]:
    """Copy the contract's tables from a SQL database into DuckDB, in chunks."""
    import pandas as pd
    import sqlalchemy as sa

    engine = create_engine(url)
    try:
        present = set(sa.inspect(engine).get_table_names())
        found = [name for name in TABLES if name in present]
        with engine.connect() as conn:
            for name in found:
                chunks = pd.read_sql_table(name, conn, chunksize=200_000)
                for i, chunk in enumerate(chunks):
                    verb = f"CREATE TABLE raw_{name} AS" if i == 0 else f"INSERT INTO raw_{name}"
                    con.register("_chunk", chunk)
                    con.execute(f"{verb} SELECT * FROM _chunk")
                    con.unregister("_chunk")
    finally:
        engine.dispose()
    return found


def settings_path(source: str | Path, settings_file: str | Path | None = None) -> Path | None:
    """The dataset settings file that applies: ``settings_file`` if given (it must exist),
    else a directory source's ``tierwise.yaml`` if present, else None."""
    if settings_file is not None:
        return Path(settings_file)
    path = Path(source) / SETTINGS_FILE
    return path if not _is_url(str(source)) and path.exists() else None


def _read_settings(
    source: str, overrides: dict, settings_file: str | Path | None
) -> tuple[DatasetSettings | None, list[Problem]]:
    raw: dict = {}
    path = settings_path(source, settings_file)
    name = SETTINGS_FILE if settings_file is None else str(settings_file)
    if path is not None:
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            return None, [Problem(name, "", "settings file does not exist")]
        except yaml.YAMLError as err:
            return None, [Problem(name, "", f"is not valid YAML: {err}")]
        if not isinstance(raw, dict):
            return None, [Problem(name, "", "must be a mapping of setting: value")]
    merged = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return DatasetSettings.model_validate(merged), []
    except ValidationError as err:
        problems = [
            Problem(
                name,
                ".".join(str(p) for p in e["loc"]),
                f"{'unknown setting' if e['type'] == 'extra_forbidden' else e['msg']}"
                f" (got {e['input']!r})",
            )
            for e in err.errors()
        ]
        return None, problems


def _check(
    con, source: str, overrides: dict, settings_file: str | Path | None = None
) -> tuple[ValidationReport, list[str], DatasetSettings]:
    """Read the settings, open the source's raw tables and check every rule on them."""
    report = ValidationReport(source)
    settings, report.problems = _read_settings(source, overrides, settings_file)
    tables = _open(con, source)
    report.rows, problems = check_tables(con, tables, settings)
    report.problems += problems
    return report, tables, settings or DatasetSettings()


# -- typed views -------------------------------------------------------------------------------

_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "BOOLEAN",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
)


def _define_typed_views(con, tables: list[str], settings: DatasetSettings) -> dict:
    """Define ``<table>`` views with contract types; return the customers' usable profile columns."""
    profile: dict[str, Literal["categorical", "numeric"]] = {}
    if "customers" in tables:
        known = {c.name for c in TABLES["customers"].columns} | set(settings.exclude_columns)
        for column, sql_type in raw_columns(con, "customers").items():
            if column not in known:
                numeric = sql_type.startswith(_NUMERIC)
                profile[column] = "numeric" if numeric else "categorical"
    for name in tables:
        con.execute(f"CREATE VIEW {name} AS {typed_view_sql(name, profile)}")
    return profile


def _resolve_settings(con, tables: list[str], settings: DatasetSettings) -> DatasetSettings:
    """Fill the defaults that depend on the data (churn definition, tier order, data end)."""
    any_closed = con.execute("SELECT count(closed_date) > 0 FROM customers").fetchone()[0]
    ends = {
        "customers": "greatest(max(signup_date), max(closed_date))",
        "transactions": "max(ts)::DATE",
        "holdings": "greatest(max(opened), max(closed))",
        "interactions": "max(ts)::DATE",
        "tiers": "max(effective)",
    }
    data_end = settings.data_end or max(
        d
        for t in tables
        if (d := con.execute(f"SELECT {ends[t]} FROM {t}").fetchone()[0]) is not None
    )
    return settings.model_copy(
        update={
            "churn_definition": settings.churn_definition
            or ("closed" if any_closed else "inactive"),
            "tier_order": settings.tier_order or settings.value_scheme().names,
            "data_end": data_end,
        }
    )
