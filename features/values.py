"""Null, number and date helpers shared by every package: one answer to "is it there?".

The rule, everywhere:

- A value is **missing** when it is None, NaN, NaT or pd.NA (``present`` is False).
- **Infinity is not missing, but it is no number**: ``present(inf)`` is True (something is
  there), while every helper that asks for a number (``as_number``, ``number_or``,
  ``as_int``) treats ±inf like a missing value, since no figure an agent, a report or a
  model should see is infinite. Unreadable text counts as no number as well.
- A date may come as a date, a datetime, a pandas Timestamp or an ISO string.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from typing import Any

import numpy as np


def present(value: Any) -> bool:
    """Whether a value is there: not None, NaN, NaT or pd.NA (an infinite number is there)."""
    if value is None:
        return False
    try:
        return not bool(value != value)  # NaN and NaT are the values unequal to themselves
    except (TypeError, ValueError):  # pd.NA (and arrays) cannot say: not a value
        return False


def as_number(value: Any) -> float | None:
    """A finite float, or None for a missing, infinite or unreadable value."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def number_or(value: Any, default: float) -> float:
    """``as_number(value)``, or ``default`` for a missing, infinite or unreadable value."""
    v = as_number(value)
    return default if v is None else v


def as_int(value: Any) -> int | None:
    """``as_number(value)`` truncated to an int, or None (e.g. a rank read back as a float)."""
    v = as_number(value)
    return None if v is None else int(v)


def as_text(value: Any) -> str | None:
    """A present value as text (``str``), else None."""
    return str(value) if present(value) else None


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for our values: numpy scalars as Python, dates as ISO text.

    Raises:
        TypeError: any other type (as ``json.dumps`` itself would).
    """
    if isinstance(value, dt.date):  # dates, datetimes and Timestamps
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def months_back(day: dt.date, months: int) -> dt.date:
    """The same day of month ``months`` calendar months earlier, clamped to the month's end."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def as_date(value: Any) -> dt.date | None:
    """A date from a date, datetime, Timestamp or ISO string; None when missing or unreadable."""
    if not present(value):
        return None
    try:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str) and value:
            return dt.date.fromisoformat(value[:10])
    except (ValueError, TypeError):  # NaT and malformed strings
        return None
    return None
