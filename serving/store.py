"""The online feature store: the latest feature row, tier and history of every customer.

One row per customer, keyed by ``customer_id``, read by the service with a primary-key
lookup. ``tierwise score`` and ``tierwise materialize`` refresh it for one as-of date:
the rows go into a new table, which replaces the current one in a single transaction
together with the store's metadata (as-of date, model versions and feature specs it was
built for), so a reader sees either the old run or the new one, never a mix.

SQLite under ``TIERWISE_HOME`` by default (WAL, so readers never wait for a refresh);
PostgreSQL, or any database SQLAlchemy speaks, by URL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from features.catalogue import FeatureSpec
from features.contract import Dataset
from features.history import COLUMNS as HISTORY_COLUMNS
from features.spine import as_of_dates, register_spine
from serving.inputs import (
    HELD,
    Population,
    as_float,
    as_text,
    feature_columns,
    held_of,
    inputs_sql,
    merged_spec,
    read_chunks,
    tier_context,
)

if TYPE_CHECKING:
    from serving.scoring import ModelSet

TABLE = "tierwise_online"
META_TABLE = "tierwise_online_meta"
CHUNK_ROWS = 20_000  # rows converted and inserted at a time: bounds memory on large bases
Synchronous = Literal["FULL", "NORMAL"]
Begin = Literal["BEGIN", "BEGIN IMMEDIATE"] | None


class StoreMissingError(LookupError):
    """The online store has never been refreshed (or its file does not exist)."""


@dataclass(frozen=True)
class StoreInfo:
    """What a refresh was built from."""

    as_of: dt.date
    rows: int
    built_at: dt.datetime
    model_versions: dict[str, str] = field(default_factory=dict)
    specs: list[dict] = field(default_factory=list)  # feature specs of the models, as dicts
    run: str = ""  # the batch run the rows came from (``tierwise score``), if any

    def to_json(self) -> str:
        return json.dumps(
            {
                "as_of": self.as_of.isoformat(),
                "rows": self.rows,
                "built_at": self.built_at.isoformat(),
                "model_versions": self.model_versions,
                "specs": self.specs,
                "run": self.run,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> StoreInfo:
        data = json.loads(text)
        return cls(
            as_of=dt.date.fromisoformat(data["as_of"]),
            rows=int(data["rows"]),
            built_at=dt.datetime.fromisoformat(data["built_at"]),
            model_versions=dict(data.get("model_versions") or {}),
            specs=list(data.get("specs") or []),
            run=str(data.get("run") or ""),
        )


@dataclass(frozen=True)
class StoredCustomer:
    """One customer's row of the online store, as the inference path reads it."""

    customer_id: str
    as_of: dt.date
    tier: str | None
    tier_rank: int | None
    value: float
    value_tier: str | None
    tier_reason: str | None
    next_tier: str | None
    gap_to_next_tier: float | None
    held: tuple[str, ...]
    history: Mapping[str, Any]  # features.history columns (dates as ISO strings)
    features: Mapping[str, Any]  # feature name -> raw value (None when missing)


def open_engine(
    url: str,
    *,
    synchronous: Synchronous = "NORMAL",
    create: bool = True,
    begin: Begin = "BEGIN",
):
    """A SQLAlchemy engine; for SQLite: WAL, real transactions (DDL included), busy timeout.

    Args:
        synchronous: durability of a commit. ``FULL`` waits for the disk (SQLite
            ``synchronous=FULL``, PostgreSQL ``synchronous_commit=on``); ``NORMAL`` survives
            a crash of the process but not of the machine (``synchronous=NORMAL`` in WAL,
            ``synchronous_commit=off``).
        create: for a SQLite file, create its folder; otherwise a missing file is an error.
        begin: how a SQLite transaction starts. ``BEGIN IMMEDIATE`` takes the write lock
            at once, for writers that read first (a deferred one would fail, not wait, when
            another connection wrote in between: the WAL snapshot rule); None for readers
            of one statement at a time, which need no transaction (autocommit).

    Raises:
        StoreMissingError: ``create`` is false and the SQLite file does not exist.
    """
    parsed = sa.engine.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = parsed.database
        if path and path != ":memory:":
            if create:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            elif not Path(path).exists():
                raise StoreMissingError(f"no database file at {path}")
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record) -> None:
            # sqlite3's own transaction handling skips BEGIN before DDL, which would make the
            # table swap non-atomic: SQLAlchemy emits BEGIN itself (see "begin" below).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        if begin is not None:

            @sa.event.listens_for(engine, "begin")
            def _sqlite_begin(connection) -> None:
                connection.exec_driver_sql(begin)

        return engine
    options = {"isolation_level": "AUTOCOMMIT"} if begin is None else {}
    engine = sa.create_engine(url, pool_pre_ping=True, **options)
    if backend == "postgresql":
        setting = "on" if synchronous == "FULL" else "off"

        @sa.event.listens_for(engine, "connect")
        def _pg_connect(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SET synchronous_commit TO {setting}")
            cursor.close()
            dbapi_connection.commit()

    return engine


def _table(name: str, metadata: sa.MetaData) -> sa.Table:
    # The primary key is named after the table: PostgreSQL needs constraint names unique
    # per schema, and a renamed table keeps its constraint's name.
    return sa.Table(
        name,
        metadata,
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("tier", sa.String(200)),
        sa.Column("tier_rank", sa.Integer),
        sa.Column("value", sa.Float),
        sa.Column("value_tier", sa.String(200)),
        sa.Column("tier_reason", sa.Text),
        sa.Column("next_tier", sa.String(200)),
        sa.Column("gap_to_next_tier", sa.Float),
        sa.Column("held", sa.Text, nullable=False),  # JSON list
        sa.Column("history", sa.Text, nullable=False),  # JSON object
        sa.Column("features", sa.Text, nullable=False),  # JSON object
        sa.PrimaryKeyConstraint("customer_id", name=f"pk_{name}"),
    )


_META = sa.MetaData()
_meta_table = sa.Table(
    META_TABLE,
    _META,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
_current = _table(TABLE, sa.MetaData())
_GET = sa.select(*_current.c).where(_current.c.customer_id == sa.bindparam("customer_id"))


class OnlineStore:
    """Reads and refreshes the online store at a SQLAlchemy URL."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        """Open the store (nothing is read yet).

        Args:
            create: make the SQLite folder if missing; False for readers, which then fail
                early on a store that was never built.

        Raises:
            StoreMissingError: ``create`` is false and the SQLite file does not exist.
        """
        self.url = url
        self._reader: sa.Engine | None = None
        try:
            self.engine = open_engine(url, create=create)
        except StoreMissingError as err:
            raise StoreMissingError(
                f"the online store was never built ({err}): run `tierwise materialize` or "
                "`tierwise score`"
            ) from None

    def info(self) -> StoreInfo:
        """The metadata of the current refresh.

        Raises:
            StoreMissingError: the store was never refreshed.
        """
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(META_TABLE):
                raise StoreMissingError(
                    f"the online store at {_safe(self.url)} was never built: run "
                    "`tierwise materialize` or `tierwise score`"
                )
            value = conn.execute(
                sa.select(_meta_table.c.value).where(_meta_table.c.name == "info")
            ).scalar()
        if value is None:
            raise StoreMissingError(f"the online store at {_safe(self.url)} has no refresh yet")
        return StoreInfo.from_json(value)

    def get(self, customer_id: str) -> StoredCustomer | None:
        """The customer's row, or None for a customer the store does not hold."""
        if self._reader is None:  # one statement per read: no transaction to begin and end
            self._reader = open_engine(self.url, begin=None)
        with self._reader.connect() as conn:
            row = conn.execute(_GET, {"customer_id": customer_id}).first()
        if row is None:
            return None
        return StoredCustomer(
            customer_id=row.customer_id,
            as_of=row.as_of,
            tier=row.tier,
            tier_rank=row.tier_rank,
            value=float(row.value) if row.value is not None else 0.0,
            value_tier=row.value_tier,
            tier_reason=row.tier_reason,
            next_tier=row.next_tier,
            gap_to_next_tier=row.gap_to_next_tier,
            held=tuple(json.loads(row.held)),
            history=json.loads(row.history),
            features=json.loads(row.features),
        )

    def customer_ids(self, limit: int = 100, offset: int = 0) -> list[str]:
        """Customer ids held, in order (for warm-up, tests and benchmarks)."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(_current.c.customer_id)
                    .order_by(_current.c.customer_id)
                    .limit(limit)
                    .offset(offset)
                ).scalars()
            )

    def refresh(self, chunks: Iterable[Sequence[Mapping[str, Any]]], info: StoreInfo) -> StoreInfo:
        """Replace every row with ``chunks`` (rows as ``build_rows`` makes them), atomically.

        The rows go into a new table first; the swap with the current table and the new
        metadata are one transaction. A failure before the swap leaves the store as it was.
        Staging tables a killed refresh left behind are dropped first: one refresh at a
        time per store (a second at once fails; the current rows are never touched).

        Returns:
            ``info`` with ``rows`` set to the number of rows written.
        """
        token = uuid.uuid4().hex[:12]
        staging = _table(f"{TABLE}_new_{token}", sa.MetaData())
        rows = 0
        try:
            with self.engine.begin() as conn:
                for name in sa.inspect(conn).get_table_names():
                    if name.startswith((f"{TABLE}_new_", f"{TABLE}_old_")):
                        conn.execute(sa.text(f"DROP TABLE {name}"))
                staging.create(conn)
            for chunk in chunks:
                if chunk:
                    with self.engine.begin() as conn:
                        conn.execute(staging.insert(), list(chunk))
                    rows += len(chunk)
            info = dataclasses.replace(info, rows=rows)
            retired = f"{TABLE}_old_{token}"
            with self.engine.begin() as conn:
                _META.create_all(conn)
                if sa.inspect(conn).has_table(TABLE):
                    conn.execute(sa.text(f"ALTER TABLE {TABLE} RENAME TO {retired}"))
                else:
                    retired = ""
                conn.execute(sa.text(f"ALTER TABLE {staging.name} RENAME TO {TABLE}"))
                conn.execute(sa.delete(_meta_table).where(_meta_table.c.name == "info"))
                conn.execute(sa.insert(_meta_table).values(name="info", value=info.to_json()))
        except BaseException:
            with self.engine.begin() as conn:
                staging.drop(conn, checkfirst=True)
            raise
        if retired:  # outside the swap: dropping a large table takes a while
            with self.engine.begin() as conn:
                conn.execute(sa.text(f"DROP TABLE {retired}"))
        return info

    def close(self) -> None:
        if self._reader is not None:
            self._reader.dispose()
        self.engine.dispose()


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

    Computes the serving inputs (``serving.inputs``: features, history, products held) into
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
                "as_of": _day(chunk["as_of"].iat[i]),
                "tier": values.get("tier"),
                "tier_rank": _int(values.get("tier_rank")),
                "value": _value(values, histories[i]),
                "value_tier": as_text(context["value_tier"].iat[i]),
                "tier_reason": as_text(context["tier_reason"].iat[i]),
                "next_tier": as_text(context["next_tier"].iat[i]),
                "gap_to_next_tier": as_float(context["gap_to_next_tier"].iat[i]),
                "held": json.dumps(held_of(chunk[HELD].iat[i])),
                "history": _json(histories[i]),
                "features": _json(values),
            }
        )
    return rows


def _value(features: Mapping[str, Any], history: Mapping[str, Any]) -> float:
    """The customer value; for one who closed (no tier, so no value feature), the net amount
    of their last 12 months from the history, which a win-back is weighed by."""
    value = as_float(features.get("value"))
    if value is None and history.get("closed_date"):
        value = sum(as_float(history.get(f"spend_month_{m}")) or 0.0 for m in range(1, 13))
    return value or 0.0


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, nulls as None."""
    plain = frame.astype(object).where(frame.notna(), None)
    return plain.to_dict("records")


def _json(values: Mapping[str, Any]) -> str:
    return json.dumps(values, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date):  # dates and timestamps as ISO strings
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in the online store")


def _int(value: Any) -> int | None:
    v = as_float(value)
    return None if v is None else int(v)


def _day(value: Any) -> dt.date:
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    return value


def _safe(url: str) -> str:
    """A URL without its password, for messages."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)
