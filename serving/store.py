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

import contextlib
import dataclasses
import datetime as dt
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from features.urls import create_engine, safe_url

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

    Made by ``features.urls.create_engine``: ``postgresql://`` uses psycopg 3, and bound
    parameters (customer data) never appear in an error message or a log line. A SQLite
    file it creates is readable by its owner only (0600), and so are its ``-wal`` and
    ``-shm`` files, which SQLite creates with the database file's permissions.

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
        return _sqlite_engine(url, parsed.database, synchronous, create, begin)
    options = {"isolation_level": "AUTOCOMMIT"} if begin is None else {}
    engine = create_engine(url, pool_pre_ping=True, **options)
    if backend == "postgresql":
        setting = "on" if synchronous == "FULL" else "off"

        @sa.event.listens_for(engine, "connect")
        def _pg_connect(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SET synchronous_commit TO {setting}")
            cursor.close()
            dbapi_connection.commit()

    return engine


def _sqlite_engine(
    url: str, path: str | None, synchronous: Synchronous, create: bool, begin: Begin
) -> sa.Engine:
    """``open_engine`` for SQLite: the file's folder, WAL, the pragmas and how to begin."""
    if path and path != ":memory:":
        if create:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Customer data: created for the owner alone before SQLite opens it (SQLite
            # itself would follow the umask, 0644 as a rule); an existing file keeps its mode.
            # Never open and close an existing file: closing any descriptor of a file drops
            # every POSIX lock this process holds on it, the locks SQLite's other connections
            # rely on (another process then took itself for the last one, checkpointed and
            # deleted the WAL under them: SQLITE_IOERR_SHORT_READ, then SQLITE_CORRUPT).
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
        elif not Path(path).exists():
            raise StoreMissingError(f"no database file at {path}")
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

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
                    f"the online store at {safe_url(self.url)} was never built: run "
                    "`tierwise materialize` or `tierwise score`"
                )
            value = conn.execute(
                sa.select(_meta_table.c.value).where(_meta_table.c.name == "info")
            ).scalar()
        if value is None:
            raise StoreMissingError(f"the online store at {safe_url(self.url)} has no refresh yet")
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


def limit_waits(engine: sa.Engine, seconds: float) -> sa.Engine:
    """Make ``engine``'s statements give up after about ``seconds`` instead of waiting.

    SQLite: the busy timeout (a write waiting for another writer's lock); PostgreSQL: the
    lock and statement timeouts. The service uses it so that a locked or slow store gets a
    fast 503 well inside the request timeout, never a request that hangs.
    """
    millis = max(int(seconds * 1000), 1)
    backend = engine.url.get_backend_name()

    @sa.event.listens_for(engine, "connect")
    def _limit(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        if backend == "sqlite":
            cursor.execute(f"PRAGMA busy_timeout = {millis}")
        elif backend == "postgresql":
            cursor.execute(f"SET lock_timeout = {millis}")
            cursor.execute(f"SET statement_timeout = {millis}")
        cursor.close()
        if backend == "postgresql":
            dbapi_connection.commit()

    return engine
