"""The spine ``(customer_id, as_of)``: the population at each as-of date, shared by features and labels."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from features.contract import Dataset

SPINE = "spine"


def as_of_dates(values: Sequence[dt.date | str]) -> list[dt.date]:
    """Sorted distinct as-of dates from dates or ISO strings.

    Raises:
        ValueError: no dates, or a string that is not an ISO date.
    """
    dates = sorted({v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)) for v in values})
    if not dates:
        raise ValueError("at least one as-of date is needed")
    return dates


def register_spine(
    ds: Dataset,
    as_of: Sequence[dt.date | str],
    name: str = SPINE,
    closed_within_days: int = 0,
    only_closed: bool = False,
) -> list[dt.date]:
    """Define table ``name`` with one row per customer in the population at each as-of date.

    The population at t: signup_date <= t and (closed_date is null or closed_date > t),
    as in the data contract; with ``closed_within_days``, also the customers who closed in
    the days before t (for the card a win-back call needs), or, with ``only_closed``, only
    those. Returns the as-of dates used.
    """
    dates = as_of_dates(as_of)
    sql = spine_sql(dates, closed_within_days, only_closed)
    ds.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
    return dates


def spine_sql(
    dates: Sequence[dt.date], closed_within_days: int = 0, only_closed: bool = False
) -> str:
    """The SELECT of the population at each date over the typed ``customers`` (portable SQL).

    Shared by ``register_spine`` and the Spark engine (``features.spark``), so that both
    define the population with the same text.
    """
    values = ", ".join(f"(DATE '{d.isoformat()}')" for d in dates)
    since = f"CAST(d.as_of - INTERVAL {int(closed_within_days)} DAY AS DATE)"
    recently = f"(c.closed_date <= d.as_of AND c.closed_date > {since})"
    still_open = "(c.closed_date IS NULL OR c.closed_date > d.as_of)"
    if only_closed:
        who = recently
    elif closed_within_days > 0:
        who = f"({still_open} OR {recently})"
    else:
        who = still_open
    return f"""SELECT c.customer_id, d.as_of
            FROM customers c CROSS JOIN (VALUES {values}) d(as_of)
            WHERE c.signup_date <= d.as_of AND {who}"""
