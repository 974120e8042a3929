"""What the service's worker processes share: the reload generation and the reload lease.

Each worker loads its own champions, so a reload on one must reach the others. The table
``tierwise_service_state`` in the decision store's database (the one store every worker
already writes) holds a generation number, raised by each successful reload, which every
worker compares with its own once a second and reloads when it is behind; and a lease, so
that one reload runs at a time across all workers. ``probe`` is the write every worker
makes once a second to know the decision store takes writes (``/readyz``).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from serving.store import limit_waits, open_engine

_META = sa.MetaData()
state_table = sa.Table(
    "tierwise_service_state",
    _META,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
    sa.Column("holder", sa.String(100)),
    sa.Column("until", sa.DateTime),  # UTC, naive
)
GENERATION, RELOAD = "generation", "reload"
_ROW = state_table.c.name
_GENERATION = sa.select(state_table.c.value).where(_ROW == GENERATION)


class WorkerBoard:
    """The shared state at a SQLAlchemy URL (the decision store's); statements wait at most
    ``wait_s`` for a lock."""

    def __init__(self, url: str, wait_s: float = 1.0) -> None:
        self._engine = limit_waits(open_engine(url, begin="BEGIN IMMEDIATE"), wait_s)
        with self._engine.begin() as conn:
            _META.create_all(conn)
        for name in (GENERATION, RELOAD):
            try:
                with self._engine.begin() as conn:
                    conn.execute(sa.insert(state_table).values(name=name, value=0))
            except IntegrityError:  # another worker (or an earlier run) made it
                pass

    def generation(self) -> int:
        """The number of reloads so far."""
        with self._engine.connect() as conn:
            return int(conn.execute(_GENERATION).scalar_one())

    def bump(self) -> int:
        """Count one more reload; the new generation."""
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(state_table)
                .where(_ROW == GENERATION)
                .values(value=state_table.c.value + 1)
            )
            return int(conn.execute(_GENERATION).scalar_one())

    def take_lease(self, holder: str, seconds: float) -> bool:
        """Whether ``holder`` now holds the reload lease (for ``seconds`` at most)."""
        now = _now()
        with self._engine.begin() as conn:
            taken = conn.execute(
                sa.update(state_table)
                .where(
                    _ROW == RELOAD,
                    sa.or_(state_table.c.until.is_(None), state_table.c.until < now),
                )
                .values(holder=holder, until=now + dt.timedelta(seconds=seconds))
            )
            return taken.rowcount == 1

    def release(self, holder: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(state_table)
                .where(_ROW == RELOAD, state_table.c.holder == holder)
                .values(holder=None, until=None)
            )

    def probe(self) -> None:
        """A write that changes nothing: raises when the store does not take writes."""
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(state_table).where(_ROW == RELOAD).values(value=state_table.c.value)
            )

    def close(self) -> None:
        self._engine.dispose()


def ping(engine: sa.Engine) -> None:
    """One trivial read: raises when the database cannot be reached."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
