"""Reasons and talking points: why a score is high, and what an agent could say.

Pure functions shared by the service and batch scoring. Reasons come from the model's own
per-customer feature contributions, rendered by the feature catalogue's templates; talking
points come only from the customer's own recent history as given, never from anything else.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from features.feature import Feature, render_reason
from features.spec import slug
from features.values import as_date, as_number, as_text
from models.model import Predictor

MAX_POINTS = 3
RECENT_COMPLAINT_DAYS = 90  # older complaints are history, not something to acknowledge first
LOW_SATISFACTION = 2  # a score at or below this (of 5) is worth asking about
MILESTONE_DAYS = 60  # a whole-year anniversary this close to the contact is worth a thank-you
CHANNEL_PHRASES = {
    "app": "on the app",
    "web": "online",
    "branch": "at a branch",
    "phone": "by phone",
    "atm": "at an ATM",
}
BIG_MOVE = 0.25  # a change of spend or use against the customer's own past worth mentioning
# The first point of each kind when nothing in the customer's own history applies; the
# bench counts how often these are used (bench/talking_points.py).
GENERIC_POINTS = frozenset(
    {
        "Ask how things are going with their accounts",
        "Explain the benefits of the next tier",
    }
)


@dataclass(frozen=True)
class Reason:
    """One feature that pushed the score up: its name, its plain words, its log-odds push."""

    feature: str
    text: str
    contribution: float


def top_reasons(
    predictor: Predictor,
    row: np.ndarray,
    values: Mapping[str, Any],
    features: Mapping[str, Feature],
    k: int = 3,
) -> list[Reason]:
    """The features that push this customer's score up most, in words.

    Args:
        row: the customer's encoded 1-row matrix (``predictor.encoding.row(values)``).
        values: feature name -> raw value (what the text shows, e.g. a category name).
        features: feature name -> Feature (``feature_index(spec)``); features not in it, or
            whose text renders empty, are left out.
        k: at most this many reasons.

    Returns:
        Positive contributions only, largest first, ties by feature name.

    Raises:
        ValueError: ``row`` is not exactly one row.
    """
    matrix = np.atleast_2d(np.asarray(row, dtype=np.float64))
    if matrix.shape[0] != 1:
        raise ValueError(f"top_reasons explains one row, got {matrix.shape[0]}")
    contributions = np.asarray(predictor.contributions(matrix))[0, :-1]  # last column: bias
    return reasons_of(contributions, predictor.encoding.features, values, features, k)


def reasons_of(
    contributions: np.ndarray,
    names: Sequence[str],
    values: Mapping[str, Any],
    features: Mapping[str, Feature],
    k: int = 3,
) -> list[Reason]:
    """``top_reasons`` from one row's contributions (``names`` in the same order, no bias).

    For callers that computed the contributions of many rows at once (batch scoring).
    Features marked ``reason=False`` are never reasons, whatever their push: profile
    attributes are context on the customer card (a protected one, age or gender, must never
    be shown as why), and ranks or years in a tier say nothing an agent can act on.
    """
    pushes = sorted(
        (
            (float(c), name)
            for name, c in zip(names, contributions, strict=True)
            if c > 0 and name in features and features[name].reason
        ),
        key=lambda t: (-t[0], t[1]),
    )
    out: list[Reason] = []
    for contribution, name in pushes:
        text = render_reason(features[name], values.get(name))
        if text:
            out.append(Reason(name, text, contribution))
        if len(out) >= k:
            break
    return out


def talking_points(history: Mapping[str, Any], as_of: date, tier: str | None) -> list[str]:
    """Up to three short points from the customer's own recent history, most pressing first.

    Keys read (all optional; missing, null or unreadable ones are skipped, and anything dated
    after ``as_of`` is ignored): ``last_complaint_date``, ``last_satisfaction`` (1-5),
    ``signup_date``, ``last_transaction_date``, ``last_transaction_product``,
    ``last_transaction_channel``, ``last_transaction_amount``. Dates may be dates, datetimes
    or ISO strings. ``tier`` names the customer's tier in the loyalty point.

    Order: a recent complaint (or a low satisfaction score), a tenure milestone, the last
    transaction.
    """
    points = [
        _complaint_point(history, as_of),
        _milestone_point(as_date(history.get("signup_date")), as_of, tier),
        _transaction_point(history, as_of),
    ]
    return [p for p in points if p][:MAX_POINTS]


def suggestion_points(
    kind: str, product: str | None, customer_values: Mapping[str, Any]
) -> list[str]:
    """Up to two talking points for a suggestion of ``kind`` (retention, upgrade, cross_sell),
    from the customer's own history first; a generic opener only when nothing applies.

    Keys read from ``customer_values`` (all optional; the feature row plus
    ``products_held``): retention ``days_since_last_complaint``, ``satisfaction_last_365d``,
    ``spend_change_90d``, ``engagement_trend``, ``holdings_closed_90d``, ``tenure_days``,
    ``tier``; upgrade ``next_tier``, ``gap_to_next_tier``, ``spend_change_90d``,
    ``tier_ups_365d``; cross-sell ``product_<slug>_count_90d`` / ``_spend_90d`` and
    ``held_<slug>_days`` of the products held.
    """
    v = customer_values
    if kind == "retention":
        first = (
            _first(
                _recent_complaint(v),
                _low_satisfaction(v),
                _fell(v.get("spend_change_90d"), "Spend", "ask whether something changed"),
                _fell(v.get("engagement_trend"), "Their use", "ask what is getting in the way"),
                "Closed a product in the last 90 days - ask what they moved to"
                if (as_number(v.get("holdings_closed_90d")) or 0) > 0
                else "",
                _loyalty(v.get("tenure_days")),
            )
            or "Ask how things are going with their accounts"
        )
        tier = v.get("tier")
        review = "Offer a review of their products and fees"
        return [first, f"{review} and what their {tier} tier includes" if tier else review]
    if kind == "upgrade":
        next_tier = v.get("next_tier")
        gap = as_number(v.get("gap_to_next_tier"))
        if next_tier and gap is not None and gap <= 0:
            first = f"Their value already qualifies for {next_tier} - offer to move them up now"
        elif next_tier and gap is not None:
            first = f"They are {gap:,.0f} a year short of {next_tier} - show what gets them there"
        else:
            first = ""
        first = first or _first(
            _rose(v.get("spend_change_90d"), "Spend"),
            "Moved up a tier in the last year - keep the momentum"
            if (as_number(v.get("tier_ups_365d")) or 0) > 0
            else "",
        )
        benefits = f"Explain the benefits of the {next_tier} tier" if next_tier else ""
        points = [p for p in (first, benefits) if p]
        return points or ["Explain the benefits of the next tier"]
    if kind == "cross_sell" and product:
        name = _words(product)
        first = _first(_interest(v, product), _longest_held(v, product)) or (
            f"Does not hold {name} yet - ask whether it would be useful"
        )
        return [first, f"Mention {name} briefly and let them ask for more"]
    return []


def _first(*points: str) -> str:
    return next((p for p in points if p), "")


def _recent_complaint(v: Mapping[str, Any]) -> str:
    days = as_number(v.get("days_since_last_complaint"))
    if days is not None and 0 <= days <= RECENT_COMPLAINT_DAYS:
        return f"Acknowledge the complaint from {_ago(days)} before anything else"
    return ""


def _low_satisfaction(v: Mapping[str, Any]) -> str:
    score = as_number(v.get("satisfaction_last_365d"))
    if score is not None and score <= LOW_SATISFACTION:
        return f"Last satisfaction score was {score:.0f} of 5 - ask what could be better"
    return ""


def _fell(change: Any, what: str, ask: str) -> str:
    change = as_number(change)
    if change is not None and change <= -BIG_MOVE:
        return f"{what} fell {min(abs(change), 1) * 100:.0f}% against their recent months - {ask}"
    return ""


def _rose(change: Any, what: str) -> str:
    change = as_number(change)
    if change is not None and change >= BIG_MOVE:
        return f"{what} rose {change * 100:.0f}% against the previous 90 days - they are growing"
    return ""


def _loyalty(tenure_days: Any) -> str:
    days = as_number(tenure_days)
    if days is None or days < 365.25:
        return ""
    years = int(days // 365.25)
    return f"A customer for {years} year{'' if years == 1 else 's'} - thank them for their loyalty"


def _interest(v: Mapping[str, Any], product: str) -> str:
    """Recent transactions on the product itself: interest the customer has already shown."""
    key = slug(product)
    count = as_number(v.get(f"product_{key}_count_90d")) or 0
    if count <= 0:
        return ""
    times = "once" if count == 1 else f"{count:.0f} times"
    return f"Used {_words(product)} {times} in the last 90 days - they already know what it offers"


def _longest_held(v: Mapping[str, Any], product: str) -> str:
    """The product the customer has held longest: the relationship to build on."""
    held = [p for p in v.get("products_held") or [] if p != product]
    if not held:
        return ""
    days = {p: as_number(v.get(f"held_{slug(p)}_days")) or 0 for p in held}
    best = max(sorted(held), key=lambda p: days[p])
    since = f" for {_ago(days[best]).removesuffix(' ago')}" if days[best] >= 60 else ""
    return f"Has held {_words(best)}{since} - {_words(product)} works well alongside it"


# -- points -----------------------------------------------------------------------------------


def _complaint_point(history: Mapping[str, Any], as_of: date) -> str:
    complained = as_date(history.get("last_complaint_date"))
    satisfaction = as_number(history.get("last_satisfaction"))
    low = satisfaction is not None and satisfaction <= LOW_SATISFACTION
    if complained is not None and 0 <= (days := (as_of - complained).days) <= RECENT_COMPLAINT_DAYS:
        score = f" (last satisfaction {satisfaction:.0f} of 5)" if low else ""
        return f"Complained {_ago(days)}{score} - acknowledge it first"
    if low:
        return f"Last satisfaction score was {satisfaction:.0f} of 5 - ask what could be better"
    return ""


def _milestone_point(signup: date | None, as_of: date, tier: str | None) -> str:
    if signup is None or signup > as_of:
        return ""
    years = round((as_of - signup).days / 365.25)
    if years < 1:
        return ""
    anniversary = _add_years(signup, years)
    if abs((anniversary - as_of).days) > MILESTONE_DAYS:
        return ""
    month = calendar.month_name[anniversary.month]
    if (anniversary.year, anniversary.month) == (as_of.year, as_of.month):
        when = f"this {month}"
    else:
        when = f"in {month}" if anniversary > as_of else f"since {month}"
    who = f"{tier} customer" if tier else "Customer"
    who = who[:1].upper() + who[1:]
    return (
        f"{who} for {years} year{'' if years == 1 else 's'} {when} - thank them for their loyalty"
    )


def _transaction_point(history: Mapping[str, Any], as_of: date) -> str:
    last = as_date(history.get("last_transaction_date"))
    if last is None or last > as_of:
        return ""
    amount = as_number(history.get("last_transaction_amount"))
    what = "Last refund" if amount is not None and amount < 0 else "Last purchase"
    product = history.get("last_transaction_product")
    parts = [_words(product) if _named(product) else "a transaction"]
    if amount is not None:
        parts[0] += f" ({abs(amount):,.2f})"
    channel = history.get("last_transaction_channel")
    if _named(channel):
        parts.append(CHANNEL_PHRASES.get(str(channel).lower(), f"via {_words(channel)}"))
    return f"{what}: {' '.join(parts)}, {_ago((as_of - last).days)}"


# -- helpers ----------------------------------------------------------------------------------


def _ago(days: float) -> str:
    days = int(days)
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days < 60:
        return f"{days} days ago"
    if days < 730:
        return f"{days // 30} months ago"
    return f"{days // 365} years ago"


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February in a non-leap year
        return d.replace(year=d.year + years, day=28)


def _named(value: Any) -> bool:
    """Whether a value is present (``features.values.present``) and not blank text."""
    return bool((as_text(value) or "").strip())


def _words(text: Any) -> str:
    return str(text).replace("_", " ")
