"""Validation: every rule of the data contract, checked on the raw tables in a few queries.

Set-based (one scan per table counts every per-row rule), so fast at tens of millions of
rows. ``features.contract`` opens a source as ``raw_<table>`` views and reads its settings,
then calls ``check_tables``; every broken rule is a ``Problem`` in a ``ValidationReport``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from features.dataset_settings import SETTINGS_FILE, DatasetSettings, InteractionRoles
from features.schema import TABLES, Table, cast_sql
from features.sql import ident, literal
from features.urls import safe_url

EXAMPLES = 5  # customer_ids shown per broken rule


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
        head = f"{safe_url(self.source)}: {sizes or 'no tables read'}"
        if self.ok:
            return f"{head}\nOK: every rule of the data contract holds."
        lines = [f"- {p}" for p in self.problems]
        return "\n".join([head, f"{len(self.problems)} problem(s):", *lines])


def check_tables(
    con, tables: list[str], settings: DatasetSettings | None
) -> tuple[dict[str, int], list[Problem]]:
    """Every rule over the ``raw_<table>`` views of ``tables``: rows per table and problems.

    Args:
        con: the DuckDB connection the raw views are defined on.
        tables: the contract tables the source has.
        settings: the dataset settings, or None when they could not be read (then the
            rules that tie settings to the data are skipped and tiers are checked against
            the default value tiers).
    """
    problems = [
        Problem(name, "", "required table is missing (expected <table>.parquet or .csv)")
        for name, spec in TABLES.items()
        if spec.required and name not in tables
    ]
    columns = {t: raw_columns(con, t) for t in tables}
    tier_order = (settings.tier_order if settings else None) or (
        (settings or DatasetSettings()).value_scheme().names
    )
    rows = {}
    for name in tables:
        rows[name] = con.execute(f"SELECT count(*) FROM raw_{name}").fetchone()[0]
        problems += _check_table(con, TABLES[name], columns[name], tier_order)
    if "customers" in tables and "customer_id" in columns["customers"]:
        problems += _check_keys(con, tables, columns)
    if settings is not None:
        problems += _check_settings(con, settings, tables, columns)
    return rows, problems


def raw_columns(con, table: str) -> dict[str, str]:
    """Column name -> DuckDB type of the raw view ``raw_<table>``."""
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE raw_{table}").fetchall()}


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
                    f"{ident(c.name)} IS NOT NULL AND {cast_sql(c.name, c.kind)} IS NULL",
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
        sat = cast_sql("satisfaction", "number")
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
    return f"{cast_sql(later, 'date')} < {cast_sql(earlier, 'date')}"


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
            f"SELECT count(*) FROM raw_customers WHERE {cast_sql('closed_date', 'date')} IS NOT NULL"
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
