"""What serving needs of every customer at one as-of date, computed once per run.

One row per customer of the population at the date: every feature of the models (one
merged feature spec), the recent history of ``features.history`` and the products held.
``stage_inputs`` writes these rows to parquet with DuckDB; the Spark engine writes the same
rows from the same SQL (transpiled). The online store's rows (``serving.store``) and the
batch output (``batch.run``) are then both made from the staged file, chunk by chunk:
the expensive part, reading the transactions, happens once.

Tier context needs two figures over the whole population (value-tier thresholds, and the
median value of each service tier); ``Population`` holds them so that any chunk can be
finished on its own.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.catalogue import feature_index
from features.contract import Dataset
from features.feature import render_reason
from features.history import COLUMNS as HISTORY_COLUMNS
from features.history import held_products_sql, history_sql
from features.pipeline import feature_sql
from features.spec import FeatureSpec
from features.spine import register_spine
from features.sql import literal
from features.tier_schemes import TierScheme, next_value_tier, scheme_of, tier_reasons
from features.values import present

HELD = "products_held"


def inputs_sql(ds: Dataset, spec: FeatureSpec, spine: str = "spine") -> str:
    """One SELECT of the serving inputs of every row of ``spine`` (portable SQL).

    Returns:
        SQL with the columns of ``feature_sql`` then ``HISTORY_COLUMNS`` and
        ``products_held`` (a sorted list; null without a holdings table).

    Raises:
        ValueError: a history column shares a feature's name.
    """
    names = {f.name for f in feature_index(spec).values()}
    clash = sorted(names & set(HISTORY_COLUMNS))
    if clash:
        raise ValueError(f"history columns named like features: {clash}")
    history = ", ".join(f"hx.{c}" for c in HISTORY_COLUMNS)
    held = held_products_sql(ds, spine)
    if held is None:
        held_column, held_join = f"CAST(NULL AS VARCHAR) AS {HELD}", ""
    else:
        held_column = f"hp.{HELD}"
        held_join = f"""LEFT JOIN (SELECT customer_id, as_of, list_sort(list(product)) AS {HELD}
                   FROM ({held}) h GROUP BY customer_id, as_of) hp
              ON hp.customer_id = f.customer_id AND hp.as_of = f.as_of"""
    return f"""SELECT f.*, {history}, {held_column}
FROM ({feature_sql(ds, spec, spine)}) f
LEFT JOIN ({history_sql(ds, spine)}) hx ON hx.customer_id = f.customer_id AND hx.as_of = f.as_of
{held_join}
ORDER BY f.customer_id"""


def stage_inputs(
    ds: Dataset, as_of: dt.date, spec: FeatureSpec, out: Path, closed_within_days: int = 0
) -> int:
    """Write the inputs of the population at ``as_of`` to one parquet file, by customer_id;
    with ``closed_within_days``, of the customers who closed in those days instead.

    Streams through DuckDB COPY (no DataFrame), so memory stays within DuckDB's limit; the
    file appears complete or not at all (written aside, then renamed).

    Returns:
        The number of customers written.
    """
    closed = closed_within_days > 0
    register_spine(ds, [as_of], closed_within_days=closed_within_days, only_closed=closed)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    con = ds.con
    # COPY keeps ORDER BY only while insertion order is preserved; put the setting back after.
    keep = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]
    con.execute("SET preserve_insertion_order = true")
    try:
        rows = con.execute(
            f"COPY ({inputs_sql(ds, spec)}) TO {literal(str(partial))} "
            "(FORMAT parquet, COMPRESSION zstd)"
        ).fetchall()
    finally:
        con.execute(f"SET preserve_insertion_order = {'true' if keep else 'false'}")
    partial.replace(out)
    return int(rows[0][0])


def staged(path: Path) -> str:
    """A DuckDB table expression reading staged inputs: one parquet file or a folder of them."""
    pattern = path / "*.parquet" if path.is_dir() else path
    return f"read_parquet({literal(str(pattern))})"


@dataclass(frozen=True)
class Population:
    """Population-wide figures a chunk of customers needs for its tier context.

    Attributes:
        scheme: the value tiers the reasons are worded for (the dataset's, ``scheme_of``).
        thresholds: value-tier rank -> the lowest value in that tier (its threshold).
        service_tiers: the dataset's ``tier_order`` when it has a ``tiers`` table, else ().
        medians: service-tier rank -> median customer value in that tier.
    """

    scheme: TierScheme
    thresholds: Mapping[int, float]
    service_tiers: tuple[str, ...]
    medians: Mapping[int, float]

    SQL = (
        "SELECT value_tier_rank, min(value) FROM {t} WHERE value_tier_rank IS NOT NULL "
        "GROUP BY value_tier_rank ORDER BY value_tier_rank",
        "SELECT tier_rank, median(value) FROM {t} WHERE tier_rank IS NOT NULL "
        "GROUP BY tier_rank ORDER BY tier_rank",
    )

    @classmethod
    def from_rows(
        cls, ds: Dataset, thresholds: Sequence[Sequence], medians: Sequence[Sequence]
    ) -> Population:
        """From the rows of the two ``SQL`` queries (run by either engine)."""
        service = "tiers" in ds.tables
        return cls(
            scheme=scheme_of(ds),  # the dataset's own value tiers, as the SQL uses
            thresholds={int(r): float(v) for r, v in thresholds},
            service_tiers=tuple(ds.tier_order) if service else (),
            medians={int(r): float(v) for r, v in medians} if service else {},
        )

    @classmethod
    def of(cls, ds: Dataset, table: str) -> Population:
        """Computed with DuckDB over a table expression of inputs (e.g. ``staged(path)``)."""
        rows = [ds.con.execute(q.format(t=table)).fetchall() for q in cls.SQL]
        return cls.from_rows(ds, *rows)


def tier_context(chunk: pd.DataFrame, population: Population, spec: FeatureSpec) -> pd.DataFrame:
    """Per customer of a chunk of inputs: value tier and its reason, next tier and gap.

    The value tier's next tier, threshold and reason follow ``features.tiers``' rules, from
    the population's figures (the inputs carry no threshold or next value tier). Without a
    tiers table the service tier is the value tier and so are its next tier and gap. With
    one, the next tier is the next in ``tier_order`` and the gap the value missing to the
    median value of that tier's customers (a bank's tier rules are not in the data, so this
    is what a customer of the next tier typically brings).

    Returns:
        Columns ``value_tier, tier_reason, next_tier, gap_to_next_tier``, on the chunk's index.
    """
    value = _value_tiers(chunk, population)
    out = pd.DataFrame(index=chunk.index)
    out["value_tier"] = chunk["value_tier"]
    if not population.service_tiers:
        out["tier_reason"] = value["tier_reason"]
        out["next_tier"] = value["next_tier"]
        out["gap_to_next_tier"] = chunk["gap_to_next_tier"]
        return out
    order = population.service_tiers
    next_rank = chunk["tier_rank"] + 1
    out["next_tier"] = [
        order[int(r)] if present(r) and int(r) < len(order) else None for r in next_rank
    ]
    target = next_rank.map(population.medians)
    out["gap_to_next_tier"] = np.where(
        target.notna() & out["next_tier"].notna(), np.maximum(target - chunk["value"], 0.0), np.nan
    )
    days_feature = feature_index(spec).get("days_in_tier")
    reasons = []
    for tier, days, value_text in zip(
        chunk["tier"], chunk["days_in_tier"], value["tier_reason"], strict=True
    ):
        parts = []
        if present(tier):
            held = render_reason(days_feature, days) if present(days) and days_feature else ""
            parts.append(f"{tier} tier, {held}" if held else f"{tier} tier")
        if present(value_text):
            parts.append(f"by value, {value_text}")
        reasons.append("; ".join(parts) or None)
    out["tier_reason"] = reasons
    return out


def _value_tiers(chunk: pd.DataFrame, population: Population) -> pd.DataFrame:
    """The value-tier columns of ``tier_sql`` for a chunk, with its ``tier_reason``."""
    ranks = [int(r) if present(r) else None for r in chunk["value_tier_rank"]]
    frame = chunk[["value_tier", "value_tier_rank", "value", "gap_to_next_tier"]].copy()
    frame["tier_threshold"] = [None if r is None else population.thresholds.get(r) for r in ranks]
    frame["next_tier"] = [
        None if r is None else next_value_tier(population.scheme, population.thresholds, r)
        for r in ranks
    ]
    frame["tier_reason"] = tier_reasons(population.scheme, frame)
    return frame


def read_chunks(ds: Dataset, table: str, rows: int, where: str = "") -> Iterator[pd.DataFrame]:
    """The inputs of ``table`` in customer_id order, ``rows`` customers at a time."""
    result = ds.con.execute(f"SELECT * FROM {table} {where} ORDER BY customer_id")
    while True:
        chunk = result.fetch_df_chunk(max(1, math.ceil(rows / 2048)))
        if chunk.empty:
            return
        yield chunk


def held_of(value: Any) -> list[str]:
    """The products held, from an inputs row's ``products_held`` (null or a list/array)."""
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return []  # null: None, NaN or NA
    return [str(p) for p in value]


def feature_columns(chunk: pd.DataFrame) -> list[str]:
    """The feature columns of a chunk of inputs (not the keys, history or products held)."""
    skip = {"customer_id", "as_of", HELD, "_chunk", *HISTORY_COLUMNS}
    return [c for c in chunk.columns if c not in skip]
