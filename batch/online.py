"""Filling the online store from the data: the rows of a population at a date, in chunks.

The batch (``batch.run``) and ``tierwise materialize`` build rows here; ``serving.store``
holds them and answers the service's reads.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from batch.inputs import (
    HELD,
    Population,
    feature_columns,
    held_of,
    inputs_sql,
    read_chunks,
    tier_context,
)
from features.contract import Dataset
from features.history import COLUMNS as HISTORY_COLUMNS
from features.spec import FeatureSpec, merged_spec
from features.spine import as_of_dates, register_spine
from features.values import as_date, as_int, as_number, as_text, json_default
from serving.store import CHUNK_ROWS, OnlineStore, StoreInfo

if TYPE_CHECKING:
    from models.scoring import ModelSet

# -- building the rows -------------------------------------------------------------------------

INPUTS_TABLE = "serving_inputs"


def build_rows(
    ds: Dataset,
    as_of: dt.date | str,
    models: ModelSet,
    chunk_rows: int = CHUNK_ROWS,
    closed_within_days: int = 0,
) -> tuple[StoreInfo, Iterator[list[dict[str, Any]]]]:
    """The store rows of the population at ``as_of`` (and of the customers who closed in
    the ``closed_within_days`` before it), for the features the models need.

    Computes the serving inputs (``batch.inputs``: features, history, products held) into
    a DuckDB temporary table, then yields rows in chunks. Nothing else may run on
    ``ds.con`` while the chunks are read.

    Returns:
        The refresh's ``StoreInfo`` (``rows`` set) and an iterator of row chunks.

    Raises:
        ValueError: ``as_of`` is not an ISO date.
    """
    dates = as_of_dates([as_of])
    spec = merged_spec([s for s, _ in models.by_spec()])
    register_spine(ds, dates, closed_within_days=closed_within_days)
    ds.con.execute(f"CREATE OR REPLACE TEMP TABLE {INPUTS_TABLE} AS {inputs_sql(ds, spec)}")
    rows = ds.con.execute(f"SELECT count(*) FROM {INPUTS_TABLE}").fetchall()[0][0]
    info = store_info(models, dates[0], rows)
    return info, store_chunks(ds, INPUTS_TABLE, spec, chunk_rows)


def store_info(models: ModelSet, as_of: dt.date, rows: int = 0, run: str = "") -> StoreInfo:
    """The metadata of a refresh for ``models`` at ``as_of`` (built now)."""
    return StoreInfo(
        as_of=as_of,
        rows=rows,
        built_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        model_versions=dict(sorted(models.versions.items())),
        specs=[spec.to_dict() for spec, _ in models.by_spec()],
        run=run,
    )


def store_chunks(
    ds: Dataset,
    table: str,
    spec: FeatureSpec,
    chunk_rows: int = CHUNK_ROWS,
    also: Sequence[str] = (),
) -> Iterator[list[dict[str, Any]]]:
    """Store rows from the serving inputs in ``table`` (a DuckDB table expression), then in
    each of ``also`` (recently closed customers), in chunks; tier figures are the ones of
    ``table``'s population."""
    population = Population.of(ds, table)
    for source in (table, *also):
        for chunk in read_chunks(ds, source, chunk_rows):
            yield store_rows(chunk, tier_context(chunk, population, spec))


def materialize(
    ds: Dataset,
    as_of: dt.date | str,
    models: ModelSet,
    store: OnlineStore,
    closed_within_days: int = 0,
) -> StoreInfo:
    """Build the rows of ``as_of`` and refresh the store with them (see ``OnlineStore.refresh``)."""
    info, chunks = build_rows(ds, as_of, models, closed_within_days=closed_within_days)
    return store.refresh(chunks, info)


def store_rows(chunk: pd.DataFrame, context: pd.DataFrame) -> list[dict[str, Any]]:
    """The store rows of a chunk of serving inputs and its ``inputs.tier_context``."""
    features = _records(chunk[feature_columns(chunk)])
    history = chunk[list(HISTORY_COLUMNS)].copy()
    for column in history.columns:  # dates as dates (ISO strings in JSON), not timestamps
        if pd.api.types.is_datetime64_any_dtype(history[column]):
            history[column] = history[column].dt.date
    histories = _records(history)
    rows = []
    for i, customer_id in enumerate(chunk["customer_id"]):
        values = features[i]
        rows.append(
            {
                "customer_id": customer_id,
                "as_of": as_date(chunk["as_of"].iat[i]),
                "tier": values.get("tier"),
                "tier_rank": as_int(values.get("tier_rank")),
                "value": _value(values, histories[i]),
                "value_tier": as_text(context["value_tier"].iat[i]),
                "tier_reason": as_text(context["tier_reason"].iat[i]),
                "next_tier": as_text(context["next_tier"].iat[i]),
                "gap_to_next_tier": as_number(context["gap_to_next_tier"].iat[i]),
                "held": json.dumps(held_of(chunk[HELD].iat[i])),
                "history": _json(histories[i]),
                "features": _json(values),
            }
        )
    return rows


def _value(features: Mapping[str, Any], history: Mapping[str, Any]) -> float:
    """The customer value; for one who closed (no tier, so no value feature), the net amount
    of their last 12 months from the history, which a win-back is weighed by."""
    value = as_number(features.get("value"))
    if value is None and history.get("closed_date"):
        value = sum(as_number(history.get(f"spend_month_{m}")) or 0.0 for m in range(1, 13))
    return value or 0.0


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, nulls as None."""
    plain = frame.astype(object).where(frame.notna(), None)
    return plain.to_dict("records")


def _json(values: Mapping[str, Any]) -> str:
    return json.dumps(values, separators=(",", ":"), default=json_default)
