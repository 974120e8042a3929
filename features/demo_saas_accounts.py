"""The SaaS demo's accounts before any table is written: who they are and what they do.

The product's words (plans, add-ons, event kinds), then per chunk of accounts the latent
draws every table of ``features.demo_saas`` is derived from: traits and lifecycle days
(``_Base``), monthly usage, seats wanted and closeness of a cancellation (``_Months``), the
plan history (``_Plans``), events of each kind per account-month and the add-on spans
(``_Holdings``). Fully vectorized; the draws' order on the generator is part of the output,
so the same ``(customers, seed)`` gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from features.demo import (
    _END,
    _MONTH,
    _MONTH_END,
    _MONTH_MID,
    _MONTH_START,
    _NEVER,
    _START,
    _YEAR,
    DATA_START,
)

TIER_ORDER = ("starter", "team", "business", "enterprise")
ADDONS = ("sso", "extra_storage", "analytics_pack", "api_access", "priority_support", "audit_log")
ENGAGEMENT = (
    "dashboard_view",
    "search_query",
    "comment_posted",
    "file_upload",
    "report_export",
    "report_scheduled",
    "automation_run",
    "api_call",
    "integration_connected",
    "invite_sent",
    "seat_added",
    "workspace_created",
    "onboarding_step",
)
COMPLAINT = ("bug_report", "ticket_escalated")
SATISFACTION = ("nps_survey", "support_ticket")
KINDS = (
    *ENGAGEMENT,
    "seat_removed",
    "limit_warning",
    "pricing_page_view",
    "support_ticket",
    "ticket_escalated",
    "bug_report",
    "billing_question",
    "feature_request",
    "nps_survey",
    "webinar_attended",
    "newsletter_click",
)

_M = len(_MONTH_START)
_MONTH_DAYS = _MONTH_END - _MONTH_START + 1
_MONTH_OF_YEAR = (np.arange(_M) + DATA_START.month - 1) % 12  # 0 = January
# B2B use dips over the December holidays and in August.
_SEASON = np.where(_MONTH_OF_YEAR == 11, 0.85, np.where(_MONTH_OF_YEAR == 7, 0.92, 1.0))

# Plans, lowest first: the seat cap (list prices: ``features.demo_saas``).
_CAP = np.array([5.0, 20.0, 100.0, np.inf])

# Mean monthly cancellation hazard; those who stay are less risky, so the realized rate is lower.
_CHURN_HAZARD = 0.024
_FADE_DAYS = 150  # usage starts fading this long before a cancellation
_NEAR_DAYS = 120  # tickets rise and scores fall over this window before a cancellation

# Add-ons, in ADDONS order: flat and per-seat monthly fee, share held before the data.
_FLAT_FEE = np.array([0.0, 20.0, 49.0, 79.0, 99.0, 30.0])
_SEAT_FEE = np.array([3.0, 0.0, 0.0, 0.0, 1.0, 1.5])
_ADDON_CLOSE_P = 0.012  # monthly hazard of dropping an add-on
# Discounts off the list price, percent; larger and annual accounts draw higher ones.
_DISCOUNTS = np.array([0.0, 5.0, 10.0, 15.0, 20.0, 30.0])


@dataclass(frozen=True)
class _Base:
    """Latent traits and lifecycle days (since the epoch) of one chunk of accounts."""

    demand0: np.ndarray  # seats wanted on the first day in the data
    seats: np.ndarray  # seats bought at signup
    growth: np.ndarray  # yearly log-growth of seats wanted: upgrades, seat events
    engage: np.ndarray  # standard normal: how much the product is used
    dev: np.ndarray  # 0..1: API and integration appetite
    reporting: np.ndarray  # 0..1: exports and scheduled reports
    storage: np.ndarray  # lognormal: file volume
    friction: np.ndarray  # standard normal: tickets, bugs, low scores, churn
    mobile: np.ndarray  # 0..1: share of use on the mobile app
    annual: np.ndarray  # billed once a year
    discount: np.ndarray  # percent off the list price
    signup: np.ndarray
    closed: np.ndarray  # _NEVER if subscribed at DATA_END
    signalled: np.ndarray  # cancellation announced by behaviour beforehand; _NEVER otherwise
    first: np.ndarray  # first day in the data: max(signup, DATA_START)
    last: np.ndarray  # last subscribed day: the day before cancellation, or DATA_END


class _Months(NamedTuple):
    """Per account-month arrays, shape (accounts, months)."""

    start: np.ndarray  # first subscribed day in the month
    days: np.ndarray  # subscribed days in the month
    level: np.ndarray  # usage relative to the account's usual
    demand: np.ndarray  # seats wanted
    near: np.ndarray  # 0..1: closeness of a signalled cancellation


class _Plans(NamedTuple):
    """Plan history: the plan of each account-month and the changes at the monthly reviews."""

    plan: np.ndarray  # (accounts, months), plan index in the month (after its review)
    used: np.ndarray  # (accounts, months), seats in use: demand capped by the plan
    pressure: np.ndarray  # (accounts, months), seats wanted over the plan's cap
    rows: tuple[np.ndarray, np.ndarray, np.ndarray]  # tiers rows: account, plan, effective day
    changes: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # account, month, old, new


@dataclass(frozen=True)
class _Holdings:
    """One possible span per (account, add-on): opened/closed days, _NEVER when absent."""

    opened: np.ndarray
    closed: np.ndarray
    fee: np.ndarray


def _draw_base(n: int, rng: np.random.Generator) -> _Base:
    """Draw latent traits, signup and cancellation days."""
    log_demand = rng.normal(1.5, 1.1, n)
    growth = rng.normal(0.12, 0.3, n)
    engage, friction = rng.standard_normal(n), rng.standard_normal(n)
    dev, reporting = rng.beta(1.0, 3.0, n), rng.beta(1.5, 3.0, n)
    storage, mobile = rng.lognormal(0.0, 0.6, n), rng.beta(1.5, 5.0, n)
    # Larger accounts prepay yearly and negotiate bigger discounts.
    annual = rng.random(n) < 1 / (1 + np.exp(-(-0.9 + 0.6 * (log_demand - 1.5))))
    discount = _discount(log_demand, annual, rng)
    # Four in ten join during the period; the rest subscribed in the years before.
    joins = rng.random(n) < 0.4
    signup = np.where(
        joins,
        _START + (rng.random(n) * (_END - 30 - _START)).astype(np.int64),
        _START - 1 - rng.exponential(2.5 * _YEAR, n).astype(np.int64),
    )
    first = np.maximum(signup, _START)
    demand0 = np.exp(log_demand)
    before = (first - signup) / _YEAR
    seats = np.maximum(1, np.round(demand0 * np.exp(-growth * before + rng.normal(0, 0.1, n))))
    risk = _churn_risk(friction, engage, log_demand, growth, discount)
    closed = _closed(signup, first, joins, annual, risk, rng)
    # Most leavers show it in the months before; some leave abruptly (budget cut, acquisition).
    signalled = np.where(rng.random(n) < 0.65, closed, _NEVER)
    last = np.minimum(closed - 1, _END)
    return _Base(
        demand0,
        seats.astype(np.int64),
        growth,
        engage,
        dev,
        reporting,
        storage,
        friction,
        mobile,
        annual,
        discount,
        signup,
        closed,
        signalled,
        first,
        last,
    )


def _discount(log_demand: np.ndarray, annual: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Percent off the list price of each account."""
    n = log_demand.size
    # A draw from the upper part of the discount scale, the further up the bigger the tilt.
    tilt = np.clip(0.15 * (log_demand - 1.5) + 0.1 * annual, -0.2, 0.3)
    discount_p = np.array([0.45, 0.12, 0.18, 0.1, 0.1, 0.05])
    return _DISCOUNTS[
        np.minimum(np.searchsorted(np.cumsum(discount_p), rng.random(n) * (1 - tilt) + tilt), 5)
    ]


def _churn_risk(
    friction: np.ndarray,
    engage: np.ndarray,
    log_demand: np.ndarray,
    growth: np.ndarray,
    discount: np.ndarray,
) -> np.ndarray:
    """Relative cancellation hazard of each account."""
    # Frustrated, disengaged, small and shrinking accounts leave more often; mean 1.
    return np.exp(
        0.55 * friction
        - 0.35 * engage
        - 0.25 * (log_demand - 1.5)
        - 1.5 * (growth - 0.12)
        + 0.02 * (discount - 8)
        - (0.55**2 + 0.35**2 + 0.275**2 + 0.45**2) / 2
    )


def _closed(
    signup: np.ndarray,
    first: np.ndarray,
    joins: np.ndarray,
    annual: np.ndarray,
    risk: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Cancellation day of each account, _NEVER if subscribed at DATA_END."""
    n = signup.size
    hazard = _CHURN_HAZARD * risk * np.where(annual, 0.7, 1.0)
    closed = first + 1 + rng.exponential(_MONTH / hazard).astype(np.int64)
    # Annual plans end at a renewal date; some new monthly accounts leave after the trial.
    renewal = signup + np.round(np.ceil((closed - signup) / _YEAR) * _YEAR).astype(np.int64)
    closed = np.where(annual, renewal, closed)
    trial = joins & ~annual & (rng.random(n) < 0.07)
    closed = np.where(trial, signup + rng.integers(14, 100, n), closed)
    return np.where(closed <= _END, closed, _NEVER)


def _months(b: _Base, rng: np.random.Generator) -> _Months:
    """Subscribed days, usage level, seats wanted and churn closeness of each account-month."""
    start = np.maximum(b.first[:, None], _MONTH_START)
    days = np.clip(np.minimum(b.last[:, None], _MONTH_END) - start + 1, 0, None)
    shape = days.shape
    # Usage and seats fade over the months before a cancellation: the main signal of churn.
    fade = np.clip(0.3 + 0.7 * (b.signalled[:, None] - _MONTH_MID) / _FADE_DAYS, 0.3, 1.0)
    level = np.exp(rng.normal(0, 0.15, shape)) * fade * _SEASON
    years = np.maximum(_MONTH_MID - b.first[:, None], 0) / _YEAR
    walk = np.cumsum(rng.normal(0, 0.06, shape), axis=1)
    demand = b.demand0[:, None] * np.exp(b.growth[:, None] * years + walk) * np.sqrt(fade)
    near = 1 - np.clip((b.signalled[:, None] - _MONTH_MID) / _NEAR_DAYS, 0, 1)
    return _Months(start, days, level, demand, near)


def _fit(seats: np.ndarray) -> np.ndarray:
    """The lowest plan whose seat cap holds `seats`."""
    return np.searchsorted(_CAP[:-1], seats, side="left")


def _plans(b: _Base, m: _Months, rng: np.random.Generator) -> _Plans:
    """Plan at signup by seats, then monthly reviews: upgrades near the cap, some downgrades."""
    n = b.signup.size
    headroom = rng.uniform(1.0, 1.5, n)
    plan = np.minimum(_fit(b.demand0 * headroom) + (rng.random(n) < 0.08), 3)
    # Accounts from before the data started lower, on the plan their seats at signup fitted.
    at_signup = np.where(b.signup < _START, np.minimum(_fit(b.seats * headroom), plan), plan)
    moved_in = (at_signup < plan) & (b.signup < _START)
    between = b.signup + 1 + (rng.random(n) * (_START - 1 - b.signup)).astype(np.int64)
    pre = np.flatnonzero(moved_in)
    rows = [(np.arange(n), at_signup, b.signup), (pre, plan[pre], between[pre])]
    history = np.empty((n, _M), dtype=np.int64)
    history[:, 0] = plan
    changes = []
    for month in range(1, _M):
        review = _MONTH_START[month]
        active = (b.first < review) & (review <= b.last)
        pressure = m.demand[:, month] / _CAP[plan]
        # Accounts at or over the cap upgrade soon; API-heavy ones now and then for the limits.
        p_up = 0.45 / (1 + np.exp(-(pressure - 0.97) / 0.05)) + 0.002 * (1 + 4 * b.dev)
        up = active & (plan < 3) & (rng.random(n) < p_up)
        # Down when the seats fit the plan below with room to spare, or on the way out.
        roomy = m.demand[:, month] < 0.5 * _CAP[np.maximum(plan - 1, 0)]
        leaving = (b.signalled - review >= 15) & (b.signalled - review <= 100)
        p_down = 0.06 * roomy + 0.1 * leaving
        down = active & ~up & (plan > 0) & (rng.random(n) < p_down)
        new = plan + up - down
        moved = np.flatnonzero(up | down)
        rows.append((moved, new[moved], np.full(moved.size, review)))
        changes.append((moved, np.full(moved.size, month), plan[moved], new[moved]))
        plan = new
        history[:, month] = plan
    cap = _CAP[history]
    used = np.minimum(m.demand, cap)
    pressure = m.demand / cap
    cust, level, effective = (np.concatenate(col) for col in zip(*rows, strict=True))
    who, when, old, new = (np.concatenate(col) for col in zip(*changes, strict=True))
    return _Plans(history, used, pressure, (cust, level, effective), (who, when, old, new))


def _event_counts(
    b: _Base, m: _Months, p: _Plans, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Events of each kind per account-month, Poisson around rates set by the traits."""
    usage = np.exp(0.5 * b.engage)[:, None] * m.level * (np.maximum(p.used, 1) / 5) ** 0.3
    near_cap = np.clip((p.pressure - 0.7) / 0.3, 0, 1)  # seats wanted close to the plan's cap
    grown = np.diff(p.used, axis=1, prepend=p.used[:, :1])  # seats in use added (+) or removed (-)
    fresh = (_MONTH_MID - b.signup[:, None] >= -15) & (_MONTH_MID - b.signup[:, None] <= 75)
    friction = b.friction[:, None]
    seats_factor = (np.maximum(p.used, 1) / 5) ** 0.2
    rates = {  # monthly rate of each kind for a full month
        "dashboard_view": 1.6 * usage,
        "search_query": 0.8 * usage,
        "comment_posted": 0.6 * usage,
        "file_upload": 0.5 * usage * b.storage[:, None],
        "report_export": 1.2 * usage * b.reporting[:, None],
        "report_scheduled": 0.3 * usage * b.reporting[:, None],
        "automation_run": 0.4 * usage,
        # API use climbs as an account outgrows its plan: part of the push to upgrade.
        "api_call": 2.0 * usage * b.dev[:, None] * (1 + 1.5 * near_cap),
        "integration_connected": 0.03 * (1 + 4 * b.dev[:, None]) * m.level,
        "invite_sent": 0.1 * usage + 0.8 * np.maximum(grown, 0),
        "seat_added": 0.03 + 0.7 * np.maximum(grown, 0),
        "workspace_created": 0.05 * usage,
        "onboarding_step": 0.02 + 2.5 * fresh,
        "seat_removed": 0.02 + 0.7 * np.maximum(-grown, 0),
        "limit_warning": (p.plan < 3) * 1.5 / (1 + np.exp(-(p.pressure - 0.92) / 0.05)),
        "pricing_page_view": 0.04 + 0.35 * near_cap + 0.3 * m.near,
        "support_ticket": 0.1 * np.exp(0.5 * friction) * (1 + 3 * m.near) * seats_factor,
        "ticket_escalated": 0.012 * np.exp(0.7 * friction) * (1 + 5 * m.near),
        "bug_report": 0.05 * np.exp(0.6 * friction) * (1 + 3 * m.near) * np.sqrt(usage),
        "billing_question": 0.03 * (1 + 2 * m.near) * (1 + b.annual[:, None]),
        "feature_request": 0.04 * np.exp(0.3 * b.engage)[:, None] * m.level,
        "nps_survey": np.full(m.days.shape, 0.3),
        "webinar_attended": 0.03 * np.exp(0.5 * b.engage)[:, None],
        "newsletter_click": 0.12 * np.exp(0.3 * b.engage)[:, None] * m.level,
    }
    share = m.days / _MONTH_DAYS
    return {kind: rng.poisson(rates[kind] * share) for kind in KINDS}


def _draw_addons(
    b: _Base, m: _Months, p: _Plans, counts: dict[str, np.ndarray], rng: np.random.Generator
) -> _Holdings:
    """Add-on spans: some held from before, openings after the events they serve, closures."""
    opened = _opened_before(b, p, rng)
    opened = _opened_later(b, m, p, counts, opened, rng)
    closed = _addons_closed(b, opened, rng)
    # Per-seat add-ons are priced on the seats in use the month they were opened.
    rows = np.arange(b.signup.size)[:, None]
    at = np.clip(np.searchsorted(_MONTH_START, np.minimum(opened, _END), side="right") - 1, 0, None)
    seats = np.ceil(p.used[rows, at])
    fee = (_FLAT_FEE + _SEAT_FEE * seats) * (1 - b.discount[:, None] / 100)
    return _Holdings(opened, closed, np.round(fee, 2))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _opened_before(b: _Base, p: _Plans, rng: np.random.Generator) -> np.ndarray:
    """Opening day of the add-ons held from the start, (accounts, add-ons); _NEVER if not."""
    shape = (b.signup.size, len(ADDONS))
    first_used = p.used[:, 0]
    # Held from the start: by seats and the same appetites that drive later openings.
    p_init = np.column_stack(
        [
            _sigmoid((np.log(first_used) - np.log(30)) * 2),
            0.25 * np.minimum(b.storage, 2),
            0.5 * b.reporting,
            0.7 * b.dev,
            0.08 * np.exp(0.5 * b.friction),
            _sigmoid((np.log(first_used) - np.log(80)) * 2) * (p.plan[:, 0] >= 2),
        ]
    )
    new = b.signup >= _START
    since = np.where(
        new[:, None],
        b.signup[:, None] + (rng.random(shape) * 20).astype(np.int64),
        b.signup[:, None] + (rng.random(shape) * (_START - b.signup[:, None])).astype(np.int64),
    )
    since = np.minimum(since, b.last[:, None])
    held = rng.random(shape) < p_init * np.where(new, 0.5, 1.0)[:, None]
    return np.where(held, since, _NEVER)


def _opened_later(
    b: _Base,
    m: _Months,
    p: _Plans,
    counts: dict[str, np.ndarray],
    opened: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """``opened`` with the add-ons first opened during the period."""
    n, a = b.signup.size, len(ADDONS)

    # Openings in the period follow last month's related events (saturating), or many seats.
    def last_month(kind: str) -> np.ndarray:
        c = counts[kind]
        return np.concatenate([np.zeros((n, 1)), c[:, :-1]], axis=1)

    hazard = np.stack(
        [
            0.002
            + 0.06 * _sigmoid((np.log(np.maximum(p.used, 1)) - np.log(25)) * 3)
            + 0.01 * np.tanh(last_month("invite_sent") / 3),
            0.002 + 0.05 * np.tanh(last_month("file_upload") / 6),
            0.002 + 0.08 * np.tanh(last_month("report_export") / 3),
            0.002
            + 0.08
            * np.tanh((last_month("api_call") + 3 * last_month("integration_connected")) / 6),
            0.001
            + 0.06
            * np.tanh((last_month("support_ticket") + 2 * last_month("ticket_escalated")) / 2),
            0.001
            + 0.05 * _sigmoid((np.log(np.maximum(p.used, 1)) - np.log(60)) * 3) * (p.plan >= 2),
        ],
        axis=2,
    )
    hit = (rng.random((n, _M, a)) < hazard) & (m.days[:, :, None] > 0)
    month = np.argmax(hit, axis=1)
    rows = np.arange(n)[:, None]
    day = m.start[rows, month] + (rng.random((n, a)) * m.days[rows, month]).astype(np.int64)
    return np.where((opened == _NEVER) & hit.any(axis=1), day, opened)


def _addons_closed(b: _Base, opened: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Closing day of each add-on span, _NEVER while open (or never opened)."""
    n = b.signup.size
    shape = opened.shape
    held = opened < _NEVER
    # Add-ons are dropped now and then; a leaver often drops one 10-75 days before leaving.
    start = np.maximum(opened, _START)
    closed = start + 1 + rng.exponential(_MONTH / _ADDON_CLOSE_P, shape).astype(np.int64)
    closed = np.where(held & (closed <= b.last[:, None]), closed, _NEVER)
    early = b.signalled - rng.integers(10, 76, n)
    candidate = held & (opened < early[:, None]) & (closed > early[:, None])
    pick = np.argmax(np.where(candidate, rng.random(shape), -1.0), axis=1)
    drop = (b.signalled < _NEVER) & candidate[np.arange(n), pick] & (rng.random(n) < 0.6)
    closed[drop, pick[drop]] = early[drop]
    return np.where(held, np.minimum(closed, b.closed[:, None]), closed)
