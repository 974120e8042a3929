"""Null, number and date helpers shared by every package: one answer to "is it there?".

A value is missing when it is None, NaN, NaT or pd.NA; a number is also missing when it
is infinite (no figure an agent or a model should see); a date may come as a date, a
datetime, a pandas Timestamp or an ISO string.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any


def as_number(value: Any) -> float | None:
    """A finite float, or None for a missing, infinite or unreadable value."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def as_date(value: Any) -> dt.date | None:
    """A date from a date, datetime, Timestamp or ISO string; None when missing or unreadable."""
    if value is None or value != value:  # NaN, NaT
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
