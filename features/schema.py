"""The data contract's tables (docs/data-contract.md): columns, types and their SQL.

Every other module reads a table through the typed view that ``typed_view_sql`` defines
over the raw table: contract columns cast to their types, bad values to NULL (validation,
``features.validation``, reports them first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from features.sql import ident

Kind = Literal["string", "date", "timestamp", "number"]


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


def cast_sql(column: str, kind: Kind) -> str:
    """The SQL that turns a raw column into its contract type (NULL where it cannot)."""
    col = ident(column)
    return {
        "string": f"CAST({col} AS VARCHAR)",
        "date": f"TRY_CAST({col} AS DATE)",
        # Naive timestamps are taken as UTC (the connection's zone); aware ones are converted.
        "timestamp": f"TRY_CAST(TRY_CAST({col} AS TIMESTAMPTZ) AS TIMESTAMP)",
        "number": f"TRY_CAST({col} AS DOUBLE)",
    }[kind]


def typed_view_sql(name: str, profile: Mapping[str, str] | None = None) -> str:
    """The SELECT over ``raw_<name>`` that defines the typed view ``name`` (portable SQL).

    Args:
        name: a contract table.
        profile: the customers' usable extra columns (``Dataset.profile``), cast to DOUBLE
            when numeric and VARCHAR otherwise; only read for ``customers``.

    The Spark engine (``features.spark``) transpiles the same text, so both engines type
    the raw tables alike.
    """
    exprs = [f"{cast_sql(c.name, c.kind)} AS {ident(c.name)}" for c in TABLES[name].columns]
    if name == "customers":
        for column, kind in (profile or {}).items():
            cast = "DOUBLE" if kind == "numeric" else "VARCHAR"
            exprs.append(f"CAST({ident(column)} AS {cast}) AS {ident(column)}")
    return f"SELECT {', '.join(exprs)} FROM raw_{name}"
