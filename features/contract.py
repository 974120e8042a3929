"""The input data contract (shared/DATA_CONTRACT.md): tables, dataset settings, loading, validation.

A dataset is a directory of ``<table>.parquet`` / ``<table>.csv`` files or a SQLAlchemy URL.
Loading exposes the raw tables to DuckDB as ``raw_<table>`` views, checks every rule in a
few set-based queries (fast at tens of millions of rows), and only then defines the typed
views ``customers``, ``transactions``, ... that every other module reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from features.sql import ident, literal

Kind = Literal["string", "date", "timestamp", "number"]
SETTINGS_FILE = "tierwise.yaml"
EXAMPLES = 5


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    required: bool
    columns: tuple[Column, ...]


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "customers",
            True,
            (
                Column("customer_id", "string"),
                Column("signup_date", "date"),
                Column("closed_date", "date", nullable=True),
            ),
        ),
        Table(
            "transactions",
            True,
            (
                Column("customer_id", "string"),
                Column("ts", "timestamp"),
                Column("amount", "number"),
                Column("product", "string", nullable=True),
                Column("channel", "string", nullable=True),
            ),
        ),
        Table(
            "holdings",
            False,
            (
                Column("customer_id", "string"),
                Column("product", "string"),
                Column("opened", "date"),
                Column("closed", "date", nullable=True),
                Column("monthly_fee", "number", nullable=True),
            ),
        ),
        Table(
            "interactions",
            False,
            (
                Column("customer_id", "string"),
                Column("ts", "timestamp"),
                Column("kind", "string"),
                Column("channel", "string", nullable=True),
                Column("satisfaction", "number", nullable=True),
            ),
        ),
        Table(
            "tiers",
            False,
            (
                Column("customer_id", "string"),
                Column("tier", "string"),
                Column("effective", "date"),
            ),
        ),
    )
}

# The project's own value tiers (the customer pyramid), lowest first.
VALUE_TIERS = ("small", "ordinary", "major", "VIP")


class ValueTiers(BaseModel):
    """How customers are cut into value tiers: names lowest first, one share each.

    ``quantile`` shares are of customers, ``cumulative_value`` shares of total value;
    the best customers fill the highest tier first.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    names: list[str] = Field(min_length=1, description="tier names, lowest first")
    shares: list[float] = Field(min_length=1, description="share of each tier, same order")
    method: Literal["quantile", "cumulative_value"] = "quantile"

    @model_validator(mode="after")
    def _consistent(self) -> ValueTiers:
        if len(self.shares) != len(self.names):
            raise ValueError(f"{len(self.names)} names but {len(self.shares)} shares")
        if len(set(self.names)) != len(self.names) or not all(self.names):
            raise ValueError(f"names must be unique and non-empty: {self.names}")
        if any(not 0 < s <= 1 for s in self.shares) or abs(sum(self.shares) - 1) > 1e-9:
            raise ValueError(f"shares must be positive and sum to 1: {self.shares}")
        return self


# Named schemes: the customer pyramid (50/30/15/5% of customers) and ABC 80/20 (A: the
# customers who bring the top 80% of value, B the next 15%, C the rest).
VALUE_TIER_PRESETS = {
    "pyramid": ValueTiers(names=list(VALUE_TIERS), shares=[0.50, 0.30, 0.15, 0.05]),
    "abc": ValueTiers(names=["C", "B", "A"], shares=[0.05, 0.15, 0.80], method="cumulative_value"),
}


class InteractionRoles(BaseModel):
    """Named meanings of interaction kinds: a dataset's own words, never the code's.

    Every kind gets features of its own whatever its role; roles add the named families
    (complaints, service contacts, satisfaction) and the reasons that speak of them.
    """

    model_config = ConfigDict(extra="forbid")

    complaint: list[str] = Field(default_factory=list, description="kinds that are complaints")
    engagement: list[str] = Field(
        default_factory=list,
        description="kinds that are use of the product, not service contacts (logins, events)",
    )
    satisfaction: list[str] | None = Field(
        None, description="kinds whose satisfaction scores count; default every kind"
    )


class DatasetSettings(BaseModel):
    """Business settings of a dataset (``tierwise.yaml``); command-line flags override them."""

    model_config = ConfigDict(extra="forbid")

    churn_definition: Literal["closed", "inactive"] | None = Field(
        None, description="closed, or inactive; default closed when any customer has a closed_date"
    )
    horizon_days: int = Field(90, ge=1, le=3650, description="prediction window H in days")
    tier_order: list[str] | None = Field(None, min_length=1, description="tier names, lowest first")
    cross_sell_products: list[str] | None = Field(None, description="products to model")
    exclude_columns: list[str] = Field(default_factory=list, description="never used as features")
    allow_protected: list[str] = Field(
        default_factory=list,
        description="protected customer columns (age, gender, ...) that may be features; "
        "never shown as reasons",
    )
    interaction_roles: InteractionRoles = Field(default_factory=InteractionRoles)
    value_tiers: Literal["pyramid", "abc"] | ValueTiers = Field(
        "pyramid", description="the value pyramid: pyramid, abc, or {names, shares, method}"
    )

    def value_scheme(self) -> ValueTiers:
        """The value tiers these settings name, a preset resolved."""
        if isinstance(self.value_tiers, str):
            return VALUE_TIER_PRESETS[self.value_tiers]
        return self.value_tiers

    data_end: dt.date | None = Field(None, description="last day the data covers")


@dataclass(frozen=True)
class Problem:
    """One broken rule: where, what, how many rows, and a few customer_ids to look at."""

    table: str
    column: str
    rule: str
    rows: int = 0
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        rows = f" ({self.rows:,} rows)" if self.rows else ""
        shown = f"; e.g. customer_id {', '.join(self.examples)}" if self.examples else ""
        return f"{where}: {self.rule}{rows}{shown}"


@dataclass
class ValidationReport:
    source: str
    problems: list[Problem] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        """A plain-text report: table sizes, then every problem on its own line."""
        sizes = ", ".join(f"{t} {n:,}" for t, n in self.rows.items())
        head = f"{self.source}: {sizes or 'no tables read'}"
        if self.ok:
            return f"{head}\nOK: every rule of the data contract holds."
        lines = [f"- {p}" for p in self.problems]
        return "\n".join([head, f"{len(self.problems)} problem(s):", *lines])


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

    engine = sa.create_engine(url)
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


# -- checking ----------------------------------------------------------------------------------


def _cast(column: str, kind: Kind) -> str:
    """The SQL that turns a raw column into its contract type (NULL where it cannot)."""
    col = ident(column)
    return {
        "string": f"CAST({col} AS VARCHAR)",
        "date": f"TRY_CAST({col} AS DATE)",
        # Naive timestamps are taken as UTC (the connection's zone); aware ones are converted.
        "timestamp": f"TRY_CAST(TRY_CAST({col} AS TIMESTAMPTZ) AS TIMESTAMP)",
        "number": f"TRY_CAST({col} AS DOUBLE)",
    }[kind]


def _check(
    con, source: str, overrides: dict, settings_file: str | Path | None = None
) -> tuple[ValidationReport, list[str], DatasetSettings]:
    report = ValidationReport(source)
    settings, report.problems = _read_settings(source, overrides, settings_file)
    tables = _open(con, source)
    for name, spec in TABLES.items():
        if spec.required and name not in tables:
            report.problems.append(
                Problem(name, "", "required table is missing (expected <table>.parquet or .csv)")
            )
    columns = {t: _columns(con, f"raw_{t}") for t in tables}
    tier_order = (settings.tier_order if settings else None) or (
        (settings or DatasetSettings()).value_scheme().names
    )
    for name in tables:
        report.rows[name] = con.execute(f"SELECT count(*) FROM raw_{name}").fetchone()[0]
        report.problems += _check_table(con, TABLES[name], columns[name], tier_order)
    if "customers" in tables and "customer_id" in columns["customers"]:
        report.problems += _check_keys(con, tables, columns)
    if settings is not None:
        report.problems += _check_settings(con, settings, tables, columns)
    return report, tables, settings or DatasetSettings()


def _columns(con, view: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE {view}").fetchall()}


def _check_table(con, spec: Table, present: dict[str, str], tier_order: list[str]) -> list[Problem]:
    """Every per-row rule of one table, counted in a single scan."""
    problems = [
        Problem(spec.name, c.name, "required column is missing")
        for c in spec.columns
        if c.name not in present
    ]
    rules: list[tuple[str, str, str]] = []  # (column, rule, SQL condition that breaks it)
    for c in spec.columns:
        if c.name not in present:
            continue
        if not c.nullable:
            rules.append((c.name, "must not be null", f"{ident(c.name)} IS NULL"))
        if c.kind != "string":
            rules.append(
                (
                    c.name,
                    f"must be a {c.kind}"
                    + (" (ISO-8601)" if c.kind in ("date", "timestamp") else ""),
                    f"{ident(c.name)} IS NOT NULL AND {_cast(c.name, c.kind)} IS NULL",
                )
            )
    has = set(present)
    if spec.name == "customers" and {"signup_date", "closed_date"} <= has:
        rules.append(
            ("closed_date", "must not be before signup_date", _before("closed_date", "signup_date"))
        )
    if spec.name == "holdings" and {"opened", "closed"} <= has:
        rules.append(("closed", "must not be before opened", _before("closed", "opened")))
    if spec.name == "interactions" and "satisfaction" in has:
        sat = _cast("satisfaction", "number")
        rules.append(("satisfaction", "must be between 1 and 5", f"{sat} NOT BETWEEN 1 AND 5"))
    if spec.name == "tiers" and "tier" in has:
        names = ", ".join(literal(t) for t in tier_order)
        rule = f"must be one of tier_order [{', '.join(tier_order)}] (set tier_order in {SETTINGS_FILE})"
        rules.append(("tier", rule, f"CAST(tier AS VARCHAR) NOT IN ({names})"))
    if not rules:
        return problems
    key = "CAST(customer_id AS VARCHAR)" if "customer_id" in has else "NULL::VARCHAR"
    select = ", ".join(
        f"count(*) FILTER (WHERE {cond}), min(DISTINCT {key}, {EXAMPLES}) FILTER (WHERE {cond})"
        for _, _, cond in rules
    )
    counts = con.execute(f"SELECT {select} FROM raw_{spec.name}").fetchone()
    for i, (column, rule, _) in enumerate(rules):
        rows, examples = counts[2 * i], counts[2 * i + 1]
        if rows:
            problems.append(Problem(spec.name, column, rule, rows, tuple(examples or ())))
    return problems


def _before(later: str, earlier: str) -> str:
    return f"{_cast(later, 'date')} < {_cast(earlier, 'date')}"


def _check_keys(con, tables: list[str], columns: dict[str, dict[str, str]]) -> list[Problem]:
    """Unique customer ids, and every other table's customer_id known to customers."""
    problems = []
    rows, examples = con.execute(
        f"""SELECT coalesce(sum(n), 0), min(customer_id, {EXAMPLES}) FROM (
              SELECT CAST(customer_id AS VARCHAR) AS customer_id, count(*) AS n
              FROM raw_customers WHERE customer_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1)"""
    ).fetchone()
    if rows:
        problems.append(
            Problem("customers", "customer_id", "must be unique", rows, tuple(examples))
        )
    for name in tables:
        if name == "customers" or "customer_id" not in columns[name]:
            continue
        rows, examples = con.execute(
            f"""SELECT count(*), min(DISTINCT t.customer_id, {EXAMPLES}) FROM
                  (SELECT CAST(customer_id AS VARCHAR) AS customer_id FROM raw_{name}
                   WHERE customer_id IS NOT NULL) t
                ANTI JOIN (SELECT CAST(customer_id AS VARCHAR) AS customer_id FROM raw_customers) c
                USING (customer_id)"""
        ).fetchone()
        if rows:
            problems.append(
                Problem(name, "customer_id", "must exist in customers", rows, tuple(examples))
            )
    return problems


def _check_settings(con, settings: DatasetSettings, tables, columns) -> list[Problem]:
    """Rules that tie the settings to the data."""
    problems = []
    customer_columns = set(columns.get("customers", {}))
    contract = {c.name for c in TABLES["customers"].columns}
    for name in settings.exclude_columns:
        if name in contract:
            problems.append(
                Problem(
                    SETTINGS_FILE, "exclude_columns", f"cannot exclude contract column {name!r}"
                )
            )
        elif customer_columns and name not in customer_columns:
            problems.append(
                Problem(SETTINGS_FILE, "exclude_columns", f"customers has no column {name!r}")
            )
    for name in settings.allow_protected:
        if customer_columns and name not in customer_columns:
            problems.append(
                Problem(SETTINGS_FILE, "allow_protected", f"customers has no column {name!r}")
            )
    problems += _check_roles(con, settings.interaction_roles, tables, columns)
    order = settings.tier_order or []
    if len(set(order)) != len(order):
        problems.append(Problem(SETTINGS_FILE, "tier_order", f"names a tier twice: {order}"))
    if settings.cross_sell_products:
        if "holdings" not in tables:
            problems.append(Problem(SETTINGS_FILE, "cross_sell_products", "needs a holdings table"))
        elif "product" in columns["holdings"]:
            held = {
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT CAST(product AS VARCHAR) FROM raw_holdings"
                ).fetchall()
            }
            for product in sorted(set(settings.cross_sell_products) - held):
                problems.append(
                    Problem(
                        SETTINGS_FILE, "cross_sell_products", f"no holding has product {product!r}"
                    )
                )
    if settings.churn_definition == "closed" and "closed_date" in customer_columns:
        closed = con.execute(
            f"SELECT count(*) FROM raw_customers WHERE {_cast('closed_date', 'date')} IS NOT NULL"
        ).fetchone()[0]
        if not closed:
            problems.append(
                Problem(
                    SETTINGS_FILE,
                    "churn_definition",
                    "is 'closed' but no customer has a closed_date",
                )
            )
    return problems


def _check_roles(con, roles: InteractionRoles, tables, columns) -> list[Problem]:
    """Every kind an interaction role names must occur in the interactions table."""
    named = {(role, kind) for role, kinds in roles.model_dump().items() for kind in (kinds or [])}
    if not named:
        return []
    if "interactions" not in tables or "kind" not in columns["interactions"]:
        return [
            Problem(
                SETTINGS_FILE,
                "interaction_roles",
                "names kinds but there is no interactions table with a kind column",
            )
        ]
    kinds = {
        r[0]
        for r in con.execute(
            "SELECT DISTINCT CAST(kind AS VARCHAR) FROM raw_interactions"
        ).fetchall()
    }
    return [
        Problem(
            SETTINGS_FILE,
            f"interaction_roles.{role}",
            f"names kind {kind!r}, which no interaction has",
        )
        for role, kind in sorted(named)
        if kind not in kinds
    ]


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
        for column, sql_type in _columns(con, "raw_customers").items():
            if column not in known:
                numeric = sql_type.startswith(_NUMERIC)
                profile[column] = "numeric" if numeric else "categorical"
    for name in tables:
        con.execute(f"CREATE VIEW {name} AS {typed_view_sql(name, profile)}")
    return profile


def typed_view_sql(name: str, profile: Mapping[str, str] | None = None) -> str:
    """The SELECT over ``raw_<name>`` that defines the typed view ``name`` (portable SQL).

    Args:
        name: a contract table.
        profile: the customers' usable extra columns (``Dataset.profile``), cast to DOUBLE
            when numeric and VARCHAR otherwise; only read for ``customers``.

    The Spark engine (``features.spark``) transpiles the same text, so both engines type
    the raw tables alike.
    """
    exprs = [f"{_cast(c.name, c.kind)} AS {ident(c.name)}" for c in TABLES[name].columns]
    if name == "customers":
        for column, kind in (profile or {}).items():
            cast = "DOUBLE" if kind == "numeric" else "VARCHAR"
            exprs.append(f"CAST({ident(column)} AS {cast}) AS {ident(column)}")
    return f"SELECT {', '.join(exprs)} FROM raw_{name}"


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
