"""One model input column, ``Feature``: its meaning, its wording, and its value as a reason.

``render_reason`` turns a feature's value into the short phrase an agent can say; the
catalogue (``features.catalogue``) declares every feature with ``numeric`` and
``categorical``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from features.values import present


@dataclass(frozen=True)
class Feature:
    """One model input column.

    ``template`` is ``str.format``-ed with ``value`` and the derived fields of
    ``render_reason`` (``s``, ``pct``, ``abs_pct``, ``abs``, ``num``, ``abs_num``,
    ``direction``, ``moved``, ``duration``); ``zero`` (when the value is 0), ``missing``
    (when null) and ``negative`` (below 0) replace it where the general wording would read
    badly. An empty ``missing`` means a null value is no reason at all.
    """

    name: str
    description: str
    template: str
    kind: Literal["numeric", "categorical"]
    family: str
    zero: str = ""
    missing: str = ""
    negative: str = ""  # replaces the template below zero; else a money sum below zero is no reason
    reason: bool = True  # False: context (profile, ranks), never given to an agent as a reason


def numeric(
    name: str,
    description: str,
    template: str,
    family: str,
    zero: str = "",
    missing: str = "",
    negative: str = "",
    reason: bool = True,
) -> Feature:
    """A numeric feature (the catalogue's shorthand for ``Feature(..., "numeric", ...)``)."""
    return Feature(name, description, template, "numeric", family, zero, missing, negative, reason)


def categorical(
    name: str, description: str, template: str, family: str, missing: str = "", reason: bool = True
) -> Feature:
    """A categorical feature: no zero or negative wording, only ``missing``."""
    return Feature(name, description, template, "categorical", family, "", missing, "", reason)


# -- reasons -----------------------------------------------------------------------------------


def _duration(days: float) -> str:
    days = abs(days)
    if days < 120:
        n, unit = round(days), "day"
    elif days < 730:
        n, unit = math.floor(days / 30.44), "month"
    else:
        n, unit = math.floor(days / 365.25), "year"
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _num(value: float) -> str:
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def render_reason(feature: Feature, value: Any) -> str:
    """A feature's value as a short phrase an agent can read ("3 complaints in the last 90 days").

    Never raises, and never shows a raw field dump: a value with no fitting wording (null
    without ``missing``, infinite, a money sum below zero without ``negative``, or one the
    template cannot format) gives "", which callers leave out.
    """
    if not present(value):
        return feature.missing
    try:
        if feature.kind == "categorical":
            return feature.template.format(value=value)
        v = float(value)
        if math.isinf(v):
            return ""
        if v == 0 and feature.zero:
            return feature.zero
        template = feature.template
        if v < 0 and feature.negative:
            template = feature.negative
        elif v < 0 and "{num}" in template:
            return ""
        fields = {
            "value": v,
            "abs": abs(v),
            "num": _num(v),
            "abs_num": _num(abs(v)),
            "pct": 100 * v,
            "abs_pct": abs(100 * v),
            "direction": "up" if v >= 0 else "down",
            "moved": "rose" if v >= 0 else "fell",
            "duration": _duration(v),
            "s": "" if round(v) == 1 else "s",
        }
        return template.format(**fields)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        return ""
