"""Synthetic retail-bank customer base in the data contract, for demos, tests and benchmarks.

Each customer gets a few latent traits (wealth, activity growth, dissatisfaction, digital
affinity, churn risk) and every table is derived from them, so the tables relate the way a
real base does: value is heavily skewed, closures are preceded by falling activity, more
complaints, lower satisfaction and a closed product, upgrades follow growing activity, and
product openings follow life stage and spend. Customers are generated in fixed-size chunks,
fully vectorized, and appended to the parquet files as row groups, so memory stays bounded
at any size and the output depends only on ``(customers, seed)``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TIER_ORDER = ("standard", "silver", "gold", "platinum")
PRODUCTS = (
    "checking",
    "savings",
    "credit_card",
    "personal_loan",
    "mortgage",
    "investment",
    "insurance",
)
CHANNELS = ("branch", "web", "app", "phone", "atm")
KINDS = ("complaint", "inquiry", "service_request", "login", "campaign_response")
DATA_START = dt.date(2023, 7, 1)
DATA_END = dt.date(2026, 6, 30)
CHUNK_CUSTOMERS = 25000  # a constant, so that the output depends only on (customers, seed)

SETTINGS_YAML = f"""\
churn_definition: closed
horizon_days: 90
tier_order: [{", ".join(TIER_ORDER)}]
exclude_columns: [full_name, phone]
allow_protected: [age]
interaction_roles:
  complaint: [complaint]
  engagement: [login, campaign_response]
data_end: {DATA_END.isoformat()}
"""

_START = (DATA_START - dt.date(1970, 1, 1)).days  # dates are handled as days since the epoch
_END = (DATA_END - dt.date(1970, 1, 1)).days
_NEVER = 10**7  # a day far beyond the data: "not held", "still open", "never closed"
_YEAR, _MONTH = 365.25, 30.44
_MONTH_START = np.arange("2023-07", "2026-07", dtype="datetime64[M]").astype("datetime64[D]")
_MONTH_START = _MONTH_START.astype(np.int64)
_MONTH_END = np.append(_MONTH_START[1:], _END + 1) - 1
_MONTH_MID = (_MONTH_START + _MONTH_END) / 2
_SEASON = np.array([1.15 if m == 11 else 0.9 if m == 0 else 1.0 for m in (np.arange(36) + 6) % 12])
# Monthly tier reviews, 2023-08-01 .. 2026-06-01: any 90-day horizon sees some.
_REVIEWS = _MONTH_START[1:]
# Wealth score entering silver, gold and platinum: 55/25/14/6 % of customers at the start.
_TIER_CUTS = np.array([0.13, 0.84, 1.55])
_TIER_GROWTH = 1.2  # weight of activity growth in the tier score: what drives upgrades

# Mean monthly closure hazard; those who stay are less risky, so the realized rate is lower.
_CHURN_HAZARD = 0.024
_FADE_DAYS = 150  # activity starts fading this long before a closure
_NEAR_DAYS = 120  # complaints rise and satisfaction falls over this window before a closure

_CHECKING, _CREDIT_CARD = PRODUCTS.index("checking"), PRODUCTS.index("credit_card")
_BRANCH, _WEB, _APP, _PHONE, _ATM = (
    CHANNELS.index(c) for c in ("branch", "web", "app", "phone", "atm")
)
# Per product, in PRODUCTS order: checking, savings, card, loan, mortgage, investment, insurance.
_INIT_P = np.array([0.93, 0.50, 0.35, 0.10, 0.30, 0.16, 0.22])  # held from signup (by age then)
_OPEN_P = np.array([0.03, 0.006, 0.008, 0.005, 0.004, 0.004, 0.004])  # monthly opening hazard
_CLOSE_P = np.array([0.0, 0.004, 0.004, 0.0, 0.002, 0.003, 0.004])  # monthly closure hazard
_WEALTH_P = np.array([0.0, 0.2, 0.2, -0.1, 0.3, 0.6, 0.3])  # wealth raises ownership of most
_FEE = np.array([6.0, 0.0, 3.0, 35.0, 140.0, 45.0, 22.0])  # median monthly fee (or margin)
_FEE_WEALTH = np.array([0.8, 0.0, 0.5, 0.4, 0.6, 1.0, 0.4])
_TXN_WEIGHT = np.array([6.0, 1.0, 5.0, 0.5, 0.5, 0.6, 0.3])  # how often a held product is used
_TXN_SCALE = np.array([1.0, 2.5, 0.9, 3.0, 6.0, 5.0, 0.8])  # its typical amount vs card spend

_REGIONS = ("London", "South East", "North West", "Midlands", "Scotland", "Wales", "South West")
_REGION_P = np.array([0.22, 0.17, 0.15, 0.18, 0.1, 0.06, 0.12])
_SEGMENTS = ("private", "affluent", "mass", "student", "small_business")
_INCOME = ("<25k", "25-50k", "50-100k", "100-200k", "200k+")
_FIRST = np.array(["Alex", "Sam", "Jordan", "Taylor", "Morgan", "Priya", "Omar", "Lena", "Marta"])
_LAST = np.array(["Smith", "Jones", "Patel", "Brown", "Khan", "Nowak", "Garcia", "Chen", "Okafor"])

_DATE, _TS = pa.date32(), pa.timestamp("us", tz="UTC")  # Spark rejects nanosecond tz timestamps


@dataclass(frozen=True)
class _Base:
    """Latent traits and lifecycle days (since the epoch) of one chunk of customers."""

    age: np.ndarray  # at DATA_END
    wealth: np.ndarray  # standard normal: spend size, fees, tier
    growth: np.ndarray  # yearly log-growth of activity: upgrades, openings
    dissat: np.ndarray  # standard normal: complaints, satisfaction, churn
    digital: np.ndarray  # probability of using app/web rather than branch/phone
    rate: np.ndarray  # transactions a month at DATA_START
    signup: np.ndarray
    closed: np.ndarray  # _NEVER if open at DATA_END
    signalled: np.ndarray  # closure day announced by behaviour beforehand; _NEVER if open or abrupt
    first: np.ndarray  # first day in the data: max(signup, DATA_START)
    last: np.ndarray  # last active day: the day before closure, or DATA_END


class _Months(NamedTuple):
    """Per customer-month arrays, shape (customers, months)."""

    start: np.ndarray  # first active day in the month
    days: np.ndarray  # active days in the month
    level: np.ndarray  # activity relative to the customer's usual, per full month


@dataclass(frozen=True)
class _Holdings:
    """One possible span per (customer, product): opened/closed days, _NEVER when absent."""

    opened: np.ndarray
    closed: np.ndarray
    fee: np.ndarray


def generate_demo_data(out: Path, customers: int = 20_000, seed: int = 0) -> Path:
    """Write a synthetic retail-bank customer base in the data contract to `out`; return `out`.

    Writes ``customers``, ``transactions``, ``holdings``, ``interactions`` and ``tiers`` as
    parquet plus ``tierwise.yaml``, creating `out`. The same ``(customers, seed)`` gives
    byte-identical files. Raises ValueError if `customers` is not positive.
    """
    return write_chunked(out, customers, seed, _generate_chunk, SETTINGS_YAML)


def write_chunked(
    out: Path,
    customers: int,
    seed: int,
    generate: Callable[[int, int, np.random.Generator], dict[str, pa.Table]],
    settings_yaml: str,
) -> Path:
    """Write a demo base chunk by chunk: ``generate(first, n, rng)`` gives each chunk's
    tables, appended as parquet row groups, then ``tierwise.yaml``. Shared by the flavours.

    Raises:
        ValueError: ``customers`` is not positive.
    """
    if customers < 1:
        raise ValueError(f"customers must be positive, got {customers}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_chunks = -(-customers // CHUNK_CUSTOMERS)
    writers: dict[str, pq.ParquetWriter] = {}
    try:
        # One independent stream per chunk: chunk i gets the same numbers whatever follows it.
        for i, chunk_seed in enumerate(np.random.SeedSequence(seed).spawn(n_chunks)):
            first = i * CHUNK_CUSTOMERS
            n = min(CHUNK_CUSTOMERS, customers - first)
            for name, table in generate(first, n, np.random.default_rng(chunk_seed)).items():
                # Column types are fixed where each array is built, so every chunk's schema is equal.
                if name not in writers:
                    writers[name] = pq.ParquetWriter(out / f"{name}.parquet", table.schema)
                writers[name].write_table(table)
    finally:
        for writer in writers.values():
            writer.close()
    (out / "tierwise.yaml").write_text(settings_yaml)
    return out


def _generate_chunk(first: int, n: int, rng: np.random.Generator) -> dict[str, pa.Table]:
    """All five tables for customers number `first` .. `first + n - 1`."""
    ids = pa.array(
        np.char.add("C", np.char.zfill(np.arange(first + 1, first + n + 1).astype(str), 7))
    )
    base = _draw_base(n, rng)
    holdings = _draw_holdings(base, rng)
    months = _months(base, rng)
    return {
        "customers": _customers(ids, base, rng),
        "transactions": _transactions(ids, base, holdings, months, rng),
        "holdings": holdings_table(ids, holdings, rng),
        "interactions": _interactions(ids, base, months, rng),
        "tiers": _tiers(ids, base, rng),
    }


def _draw_base(n: int, rng: np.random.Generator) -> _Base:
    """Draw latent traits, signup and closure days."""
    age = np.clip(rng.normal(46, 16, n), 18, 92).round().astype(np.int64)
    wealth, dissat = rng.standard_normal(n), rng.standard_normal(n)
    growth = rng.normal(0.0, 0.25, n)
    digital = 1 / (1 + np.exp(-(3.0 - 0.065 * age + rng.normal(0, 0.8, n))))  # the young go digital
    rate = 1.6 * np.exp(0.3 * wealth + rng.normal(0, 0.4, n))
    # A quarter join during the period; the rest joined earlier, no younger than about 18.
    joins = rng.random(n) < 0.25
    tenure = np.minimum(rng.exponential(9 * _YEAR, n), np.maximum(age - 21, 0.1) * _YEAR)
    signup = np.where(
        joins,
        _START + (rng.random(n) * (_END - 30 - _START)).astype(np.int64),
        _START - 1 - tenure.astype(np.int64),
    )
    first = np.maximum(signup, _START)
    # Dissatisfied, poorer and shrinking customers leave more often; normalized to mean 1.
    risk = np.exp(0.6 * dissat - 0.35 * wealth - 2.0 * growth - (0.6**2 + 0.35**2 + 0.5**2) / 2)
    closed = first + 1 + rng.exponential(_MONTH / (_CHURN_HAZARD * risk)).astype(np.int64)
    closed = np.where(closed <= _END, closed, _NEVER)
    # Most leavers show it in the months before; some leave abruptly (a move, a better offer).
    signalled = np.where(rng.random(n) < 0.7, closed, _NEVER)
    last = np.minimum(closed - 1, _END)
    return _Base(age, wealth, growth, dissat, digital, rate, signup, closed, signalled, first, last)


def _life_stage(age: np.ndarray) -> np.ndarray:
    """Relative appetite for each product by age, shape (n, products).

    Young adults take cards and loans, 30-45 year-olds mortgages, older customers
    investments and insurance; checking and savings suit everyone.
    """
    a = np.broadcast_to(age, (age.shape[0], len(PRODUCTS))).astype(float)

    def bump(col: int, centre: float, width: float) -> np.ndarray:
        return np.exp(-(((a[:, col] - centre) / width) ** 2))

    def rise(col: int, centre: float, width: float) -> np.ndarray:
        return 1 / (1 + np.exp(-(a[:, col] - centre) / width))

    return np.column_stack(
        [
            np.ones(len(a)),
            np.ones(len(a)),
            0.2 + 1.8 * bump(2, 25, 7),
            0.1 + 2.0 * bump(3, 27, 6),
            0.03 + 2.0 * bump(4, 37, 5),
            0.1 + 1.8 * rise(5, 55, 5),
            0.2 + 1.4 * rise(6, 50, 6),
        ]
    )


def _draw_holdings(b: _Base, rng: np.random.Generator) -> _Holdings:
    """Draw product spans: those held from signup, openings in the period and closures."""
    n, p = b.age.size, len(PRODUCTS)
    shape = (n, p)
    # Held from signup: opened on a day between signup and the start (or soon after a new
    # signup), with the life stage at that day deciding what was taken.
    back = np.where(
        b.signup[:, None] < _START,
        rng.random(shape) * (_START - b.signup[:, None]),
        np.where(np.arange(p) == _CHECKING, 0, rng.random(shape) * 60),
    )
    opened0 = np.minimum(b.signup[:, None] + back.astype(np.int64), b.last[:, None])
    age_then = b.age[:, None] - (_END - opened0) / _YEAR
    p_init = np.clip(
        _INIT_P * _life_stage(age_then) * np.exp(_WEALTH_P * b.wealth[:, None]), 0, 0.97
    )
    opened = np.where(rng.random(shape) < p_init, opened0, _NEVER)
    # Openings in the period follow life stage and behaviour: spenders and growers open more.
    hazard = (
        _OPEN_P
        * _life_stage(b.age[:, None])
        * np.exp(_WEALTH_P * b.wealth[:, None])
        * np.exp(0.5 * np.log(b.rate / 1.6) + 2.0 * b.growth)[:, None]
    )
    later = b.first[:, None] + 30 + rng.exponential(_MONTH / hazard).astype(np.int64)
    opened = np.where((opened == _NEVER) & (later <= b.last[:, None]), later, opened)
    held = opened < _NEVER
    # Loans run a 2-5 year term; other products close now and then.
    since = np.maximum(opened, _START)
    closed = since + rng.exponential(_MONTH / np.maximum(_CLOSE_P, 1e-9), shape).astype(np.int64)
    loan = PRODUCTS.index("personal_loan")
    closed[:, loan] = opened[:, loan] + rng.integers(730, 1826, n)
    closed = np.where(held & (closed <= b.last[:, None]) & (closed > opened), closed, _NEVER)
    # A leaver often drops one product 10-75 days before leaving; then everything closes.
    early = b.signalled - rng.integers(10, 76, n)
    candidate = (
        held & (opened < early[:, None]) & (closed > early[:, None]) & (np.arange(p) != _CHECKING)
    )
    pick = np.argmax(np.where(candidate, rng.random(shape), -1.0), axis=1)
    drop = (b.signalled < _NEVER) & candidate[np.arange(n), pick]
    closed[drop, pick[drop]] = early[drop]
    closed = np.where(held, np.minimum(closed, b.closed[:, None]), closed)
    fee = _FEE * np.exp(_FEE_WEALTH * b.wealth[:, None] + rng.normal(0, 0.2, shape))
    fee[:, _CHECKING] *= b.wealth > 0.3  # only premium current accounts carry a fee
    return _Holdings(opened, closed, np.round(fee, 2))


def _months(b: _Base, rng: np.random.Generator) -> _Months:
    """Active days and activity level of each customer-month: growth, noise, season, fading."""
    start = np.maximum(b.first[:, None], _MONTH_START)
    days = np.clip(np.minimum(b.last[:, None], _MONTH_END) - start + 1, 0, None)
    trend = b.growth[:, None] * (_MONTH_MID - _START) / _YEAR + rng.normal(0, 0.15, days.shape)
    # Activity fades over the months before a closure: the main signal of coming churn.
    fade = np.clip(0.3 + 0.7 * (b.signalled[:, None] - _MONTH_MID) / _FADE_DAYS, 0.3, 1.0)
    return _Months(start, days, np.exp(trend) * fade * _SEASON)


def _events(
    m: _Months, monthly: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson events per customer-month at `monthly` rate: (customer index, day, timestamp in us)."""
    start, days = m.start, m.days
    lam = monthly * days / (_MONTH_END - _MONTH_START + 1)
    cell = np.repeat(np.arange(lam.size), rng.poisson(lam).ravel())
    day = start.ravel()[cell] + (rng.random(cell.size) * days.ravel()[cell]).astype(np.int64)
    seconds = rng.integers(6 * 3600, 23 * 3600, cell.size)  # banking happens by day
    return cell // len(_MONTH_START), day, (day * 86_400 + seconds) * 1_000_000


def _transactions(
    ids: pa.Array, b: _Base, h: _Holdings, m: _Months, rng: np.random.Generator
) -> pa.Table:
    """Value events on held products, spend scaled by wealth, with refunds and gaps."""
    cust, day, ts = _events(m, b.rate[:, None] * m.level, rng)
    size = cust.size
    # Pick a product held that day, the everyday ones more often; none held leaves it null.
    held = [(h.opened[cust, j] <= day) & (day < h.closed[cust, j]) for j in range(len(PRODUCTS))]
    total = sum(w * k for w, k in zip(_TXN_WEIGHT, held, strict=True))
    u, acc, product = rng.random(size) * total, np.zeros(size), np.full(size, -1)
    for j, k in enumerate(held):
        acc += _TXN_WEIGHT[j] * k
        product = np.where((product < 0) & (u < acc), j, product)
    scale = np.where(product >= 0, _TXN_SCALE[product], 1.0)
    amount = np.maximum(
        30 * np.exp(1.25 * b.wealth[cust]) * scale * rng.lognormal(-0.4, 0.9, size), 0.01
    )
    refund = (rng.random(size) < 0.03) & ((product == _CHECKING) | (product == _CREDIT_CARD))
    amount = np.round(np.where(refund, -0.7 * amount, amount), 2)
    r = rng.random(size)
    digital = rng.random(size) < b.digital[cust]
    channel = np.where(digital, np.where(r < 0.6, _APP, _WEB), np.where(r < 0.55, _BRANCH, _PHONE))
    channel = np.where((product == _CHECKING) & (rng.random(size) < 0.15), _ATM, channel)
    order = np.lexsort((ts, cust))
    return pa.table(
        {
            "customer_id": ids.take(cust[order]),
            "ts": pa.array(ts[order], _TS),
            "amount": amount[order],
            "product": _labels(
                product[order], PRODUCTS, (product[order] < 0) | (rng.random(size) < 0.03)
            ),
            "channel": _labels(channel[order], CHANNELS, rng.random(size) < 0.02),
        }
    )


def _interactions(ids: pa.Array, b: _Base, m: _Months, rng: np.random.Generator) -> pa.Table:
    """Service contacts: complaints and inquiries rise and satisfaction falls before closure."""
    near = 1 - np.clip((b.signalled[:, None] - _MONTH_MID) / _NEAR_DAYS, 0, 1)
    monthly = {  # monthly rate of each kind, in KINDS order
        "complaint": 0.012 * np.exp(0.6 * b.dissat[:, None]) * (1 + 4 * near),
        "inquiry": 0.05 * (1 + 1.5 * near),
        "service_request": 0.035 * (1 + near),
        "login": 0.7 * b.digital[:, None] * m.level,
        "campaign_response": 0.02 * np.exp(2.0 * b.growth[:, None]) * m.level,
    }
    parts = [
        (*_events(m, np.broadcast_to(rate, m.days.shape), rng), KINDS.index(kind))
        for kind, rate in monthly.items()
    ]
    cust, day, ts = (np.concatenate([part[i] for part in parts]) for i in range(3))
    kind = np.concatenate([np.full(part[0].size, part[3]) for part in parts])
    size = cust.size
    complaint, service = kind == KINDS.index("complaint"), kind < KINDS.index("login")
    near_day = 1 - np.clip((b.signalled[cust] - day) / _NEAR_DAYS, 0, 1)
    score = (
        4.1 - 0.45 * b.dissat[cust] - 1.5 * near_day - 1.2 * complaint + rng.normal(0, 0.7, size)
    )
    satisfaction = np.clip(np.round(score), 1, 5).astype(np.int8)
    # Surveys follow service contacts and are often unanswered; logins and campaigns have none.
    answered = rng.random(size) < np.array([0.5, 0.4, 0.4, 0.0, 0.05])[kind]
    digital = rng.random(size) < np.where(service, b.digital[cust] * 0.7, 0.9)
    channel = np.where(
        digital,
        np.where(rng.random(size) < b.digital[cust], _APP, _WEB),
        np.where(rng.random(size) < 0.6, _PHONE, _BRANCH),
    )
    order = np.lexsort((ts, cust))
    return pa.table(
        {
            "customer_id": ids.take(cust[order]),
            "ts": pa.array(ts[order], _TS),
            "kind": _labels(kind[order], KINDS),
            "channel": _labels(channel[order], CHANNELS, rng.random(size) < 0.03),
            "satisfaction": pa.array(satisfaction[order], mask=~answered[order]),
        }
    )


def _tiers(ids: pa.Array, b: _Base, rng: np.random.Generator) -> pa.Table:
    """Tier history: a tier from signup by wealth, then monthly reviews that follow growth."""
    n = b.age.size

    def score(day: np.ndarray | int) -> np.ndarray:
        return b.wealth + _TIER_GROWTH * b.growth * (np.maximum(day, _START) - _START) / _YEAR

    tier = np.searchsorted(_TIER_CUTS, score(b.signup), side="right")
    rows = [(np.arange(n), tier, b.signup)]
    for review in _REVIEWS:
        active = (b.signup < review) & (review <= b.last)
        now = score(review) + rng.normal(0, 0.03, n)
        # One step at a time; stepping down needs a clear fall (hysteresis), as banks do.
        up = active & (tier < 3) & (now > _TIER_CUTS[np.minimum(tier, 2)] + 0.05)
        down = active & (tier > 0) & (now < _TIER_CUTS[np.maximum(tier - 1, 0)] - 0.3)
        tier = tier + up - down
        moved = np.flatnonzero(up | down)
        rows.append((moved, tier[moved], np.full(moved.size, review)))
    cust, level, effective = (np.concatenate(col) for col in zip(*rows, strict=True))
    order = np.lexsort((effective, cust))
    return pa.table(
        {
            "customer_id": ids.take(cust[order]),
            "tier": _labels(level[order], TIER_ORDER),
            "effective": _dates(effective[order]),
        }
    )


def holdings_table(
    ids: pa.Array, h: _Holdings, rng: np.random.Generator, products: tuple[str, ...] = PRODUCTS
) -> pa.Table:
    """One row per held (customer, product) span, customer-major (shared by the flavours:
    ``h`` has per (customer, product) ``opened``, ``closed`` and ``fee`` arrays)."""
    cust, product = np.nonzero(h.opened < _NEVER)
    closed = h.closed[cust, product]
    return pa.table(
        {
            "customer_id": ids.take(cust),
            "product": _labels(product, products),
            "opened": _dates(h.opened[cust, product]),
            "closed": _dates(closed, closed == _NEVER),
            "monthly_fee": pa.array(h.fee[cust, product], mask=rng.random(cust.size) < 0.02),
        }
    )


def _customers(ids: pa.Array, b: _Base, rng: np.random.Generator) -> pa.Table:
    """Customer rows: lifecycle dates, profile attributes with a few gaps, fake PII."""
    n = b.age.size
    private, affluent, mass, student, business = range(len(_SEGMENTS))
    segment = np.select([b.wealth > 1.6, b.wealth > 0.8], [private, affluent], mass)
    segment = np.where((b.age < 25) & (rng.random(n) < 0.6), student, segment)
    segment = np.where(rng.random(n) < 0.07, business, segment)
    income = np.searchsorted([-0.9, 0.0, 0.9, 1.7], b.wealth + rng.normal(0, 0.5, n))
    first, last = _FIRST[rng.integers(0, len(_FIRST), n)], _LAST[rng.integers(0, len(_LAST), n)]
    name = np.char.add(np.char.add(first, " "), last)
    phone = np.char.add("+44 7700 900", np.char.zfill(rng.integers(0, 1000, n).astype(str), 3))
    return pa.table(
        {
            "customer_id": ids,
            "signup_date": _dates(b.signup),
            "closed_date": _dates(b.closed, b.closed == _NEVER),
            "age": pa.array(b.age.astype(np.int32), mask=rng.random(n) < 0.01),
            "region": _labels(
                rng.choice(len(_REGIONS), n, p=_REGION_P), _REGIONS, rng.random(n) < 0.005
            ),
            "segment": _labels(segment, _SEGMENTS),
            "income_band": _labels(income, _INCOME, rng.random(n) < 0.02),
            "full_name": pa.array(name),
            "phone": pa.array(phone),
        }
    )


def _labels(codes: np.ndarray, names: tuple[str, ...], null: np.ndarray | None = None) -> pa.Array:
    """Decode integer codes into a plain string array, null where `null` is set."""
    codes = np.asarray(codes, dtype=np.int32)
    indices = pa.array(codes if null is None else np.where(null, 0, codes), mask=null)
    return pa.DictionaryArray.from_arrays(indices, pa.array(names)).cast(pa.string())


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Days since the epoch as a date32 array, null where `null` is set."""
    return pa.array(np.asarray(days, dtype=np.int32), mask=null).view(_DATE)


# -- The hidden response model (off unless a simulation builds one) ----------------------------

RESPONSE_TYPES = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")
RESPONSE_COLUMNS = (
    "customer_id",
    "tier",
    "tier_rank",
    "tenure_days",
    "txn_count_90d",
    "txn_count_change_90d",
    "complaints_90d",
    "holdings_open_count",
    "kind_login_90d",
    "profile_age",
    "profile_region",
)
"""What the response model reads of a customer: feature names of ``features.pipeline``, so
a simulator can pass the online store's rows as they are and an uplift model can learn the
types from the same features."""

# Outcome probability (not offered, offered) of each type, by action kind, in RESPONSE_TYPES
# order. Retention's outcome is staying; a sleeping dog is reminded to leave by the call.
_TYPE_P = {
    "retention": ((0.50, 0.90), (0.96, 0.96), (0.20, 0.20), (0.90, 0.50)),
    "upgrade": ((0.05, 0.45), (0.55, 0.55), (0.02, 0.02), (0.35, 0.08)),
    "cross_sell": ((0.04, 0.45), (0.50, 0.50), (0.01, 0.01), (0.30, 0.06)),
}


@dataclass(frozen=True)
class ResponseModel:
    """How demo customers respond to an offer: a latent type per customer and action.

    Off by default: nothing in the generator uses it, so the demo tables are the same with
    or without it; a simulation builds one with a seed and asks it for outcomes. Each
    (customer, action) is persuadable (an offer raises the outcome's chance by 35-40
    points), a sure thing (likely anyway, no effect), a lost cause (unlikely either way) or
    a sleeping dog (an offer lowers it). The type follows observable features
    (``RESPONSE_COLUMNS``) plus noise fixed by ``(seed, action, customer_id)``:

    - sure things (for retention: lost causes) score high on what drives the demo's own
      openings, upgrades and closures (life stage, tier, activity, growth, complaints), so
      the propensity models rank them first and propensity and uplift rankings differ;
    - persuadables are newer, digital customers of the middle tiers in London and the
      South East, with room to grow (few products);
    - sleeping dogs hold many products (cross-sell), are older and quiet (retention), or
      active on the top tiers already (upgrade).

    Actions: ``retention`` (``win_back`` responds as retention), ``upgrade`` or a product.
    """

    seed: int = 0

    def types(self, customers: pd.DataFrame, action: str) -> np.ndarray:
        """Each customer's type for ``action`` (strings of ``RESPONSE_TYPES``)."""
        return np.asarray(RESPONSE_TYPES)[self._codes(customers, action)]

    def probabilities(self, customers: pd.DataFrame, action: str) -> tuple[np.ndarray, np.ndarray]:
        """The outcome's chance per customer if not offered and if offered ``action``."""
        p = np.asarray(_TYPE_P[_kind(action)])[self._codes(customers, action)]
        return p[:, 0], p[:, 1]

    def respond(
        self,
        customers: pd.DataFrame,
        action: str,
        offered: bool | np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Draw each customer's outcome (0/1) of ``action``, offered or not (per row or all)."""
        p0, p1 = self.probabilities(customers, action)
        p = np.where(np.asarray(offered, dtype=bool), p1, p0)
        return (rng.random(len(p)) < p).astype(np.int8)

    def effect_by_tier(self, customers: pd.DataFrame, action: str) -> dict[str, float]:
        """The true effect of offering ``action`` (offered - not offered chance), averaged
        over the given customers of each tier: what a measured effect should recover."""
        p0, p1 = self.probabilities(customers, action)
        tier = customers["tier"].fillna("unknown").to_numpy()
        frame = pd.DataFrame({"tier": tier, "effect": p1 - p0})
        return {str(t): float(e) for t, e in frame.groupby("tier")["effect"].mean().items()}

    def _codes(self, customers: pd.DataFrame, action: str) -> np.ndarray:
        """Type codes (indices of RESPONSE_TYPES): thresholds on scores plus fixed noise."""
        x = _observables(customers)
        noise = _noise(self.seed, action, customers["customer_id"].astype(str))
        kind = _kind(action)
        if kind == "retention":
            churn = -x.activity + 1.5 * x.complaint - 0.4 * x.rank - 0.8 * x.trend + 0.5 * noise[0]
            persuadable = 0.8 * x.rank + 0.7 * (x.tenure > 5) + x.london - 1.0 + 0.7 * noise[1]
            sleeping = 0.04 * (x.age - 45) - 0.6 * x.digital + 0.5 * churn + 0.7 * noise[2]
            return np.select(
                [churn > 1.2, persuadable > 0.9, sleeping > 0.5, churn < -0.4], [2, 0, 3, 1], 1
            )
        if kind == "upgrade":
            signal = 1.5 * x.trend + 0.6 * x.activity + 0.5 * noise[0]
            sleeping = 0.7 * x.rank + 0.8 * x.activity - 2.2 + 0.7 * noise[2]
        else:
            j = PRODUCTS.index(action)
            stage = np.log(_life_stage(x.age[:, None])[:, j])
            signal = stage + _WEALTH_P[j] * x.rank + 0.8 * x.activity + 0.5 * noise[0]
            sleeping = 0.8 * (x.products - 2) + 0.5 * signal - 0.8 + 0.7 * noise[2]
        persuadable = (
            0.9 * (x.tenure < 5)
            + 0.5 * x.digital
            + 0.9 * x.london
            - 0.4 * x.products
            + (x.rank == 1)
            - 0.3
            + 0.7 * noise[1]
        )
        return np.select(
            [signal > 1.0, sleeping > 0.5, persuadable > 0.5, signal < -0.5], [1, 3, 0, 2], 2
        )


class _Observables(NamedTuple):
    """The response model's inputs, scaled: arrays per customer."""

    rank: np.ndarray
    tenure: np.ndarray  # years
    activity: np.ndarray  # log transactions in 90 days, centred
    trend: np.ndarray  # change in 90-day transactions, clipped
    complaint: np.ndarray  # any complaint in 90 days
    products: np.ndarray
    digital: np.ndarray  # log logins in 90 days
    age: np.ndarray
    london: np.ndarray  # London or the South East


def _observables(c: pd.DataFrame) -> _Observables:
    def num(column: str) -> np.ndarray:
        return pd.to_numeric(c[column], errors="coerce").fillna(0.0).to_numpy(np.float64)

    age = pd.to_numeric(c["profile_age"], errors="coerce").to_numpy(np.float64)
    return _Observables(
        rank=num("tier_rank"),
        tenure=num("tenure_days") / _YEAR,
        activity=np.log1p(num("txn_count_90d")) - 2.0,
        trend=np.clip(num("txn_count_change_90d"), -1.0, 3.0),
        complaint=(num("complaints_90d") > 0).astype(np.float64),
        products=num("holdings_open_count"),
        digital=np.log1p(num("kind_login_90d")),
        age=np.where(np.isnan(age), 45.0, age),
        london=c["profile_region"].isin(["London", "South East"]).to_numpy(np.float64),
    )


def _kind(action: str) -> str:
    if action in ("retention", "win_back"):
        return "retention"
    if action == "upgrade":
        return "upgrade"
    if action not in PRODUCTS:
        raise ValueError(f"unknown action {action!r}: retention, win_back, upgrade or a product")
    return "cross_sell"


def _noise(seed: int, action: str, customer_ids: pd.Series) -> np.ndarray:
    """Three standard normals per customer, fixed by (seed, action, customer): shape (3, n)."""
    action = "retention" if action == "win_back" else action
    words = np.array(
        [
            np.frombuffer(hashlib.sha256(f"{seed}:{action}:{c}".encode()).digest(), "<u8")
            for c in customer_ids
        ],
        dtype=np.uint64,
    ).reshape(-1, 4)
    u = (words >> np.uint64(11)).astype(np.float64) / 2.0**53  # uniforms in [0, 1)
    u = np.clip(u, 1e-12, 1.0)
    radius = np.sqrt(-2.0 * np.log(u[:, 0]))
    return np.stack(
        [
            radius * np.cos(2 * np.pi * u[:, 1]),
            radius * np.sin(2 * np.pi * u[:, 1]),
            np.sqrt(-2.0 * np.log(u[:, 2])) * np.cos(2 * np.pi * u[:, 3]),
        ]
    )


# -- Hidden acceptance of shown suggestions (off unless a simulation builds one) ------------

NEW_ACTION = "green_savings"  # a product no offline model knows: added halfway through a run
# Fixed per-tier multipliers of the offline propensity, in TIER_ORDER: what answers reveal
# and the offline model does not know (gold customers take investments at twice its chance).
_TIER_MULTIPLIERS = {
    "investment": (0.5, 1.0, 2.0, 1.6),
    "credit_card": (1.4, 1.0, 0.7, 0.5),
    "upgrade": (0.6, 1.2, 1.5, 1.0),
}
_NEW_ACTION_ACCEPTANCE = (0.12, 0.2, 0.3, 0.25)  # the new action's true rate, in TIER_ORDER
_SKIP_BY_PRESSURE = {"low": 0.05, "normal": 0.1, "high": 0.25}


@dataclass(frozen=True)
class HiddenAcceptance:
    """How customers answer a suggestion an agent shows them, and how often agents skip.

    Off by default, like ``ResponseModel``: nothing in the generator uses it. A customer
    shown action a accepts with chance ``min(q x m(a, tier, period), MAX_ACCEPTANCE)``, where
    q is the offline (calibrated) propensity and m a hidden multiplier per action and tier:
    fixed ones for a few actions (``_TIER_MULTIPLIERS``: investment at 2x for gold, 0.5x for
    standard), a seeded log-normal one (sd ``spread``) for the rest. Every multiplier drifts
    by its own seeded rate per period (normal, sd ``drift``, in log terms), so what was
    learned early goes slowly out of date. ``NEW_ACTION`` has no q: its chance is a rate per
    tier (``_NEW_ACTION_ACCEPTANCE``), drifting the same way. An agent skips a shown
    suggestion with a chance by queue pressure, plus ``skip_per_rank`` per position below
    the first; a skip is no answer.
    """

    seed: int = 0
    spread: float = 0.35
    drift: float = 0.02
    skip_per_rank: float = 0.05

    MAX_ACCEPTANCE = 0.95

    def multiplier(self, action: str, tier: str | None, period: float) -> float:
        """The hidden multiplier of the offline propensity for ``action`` in ``tier`` at
        ``period`` (0 at the start); unknown tiers count as the lowest."""
        i = TIER_ORDER.index(tier) if tier in TIER_ORDER else 0
        fixed = _TIER_MULTIPLIERS.get(action)
        z_base, z_drift = self._normals(action, TIER_ORDER[i])
        base = fixed[i] if fixed is not None else float(np.exp(self.spread * z_base))
        return base * float(np.exp(self.drift * z_drift * period))

    def acceptance(self, action: str, tier: str | None, q: float | None, period: float) -> float:
        """The chance that a customer shown ``action`` accepts it: q x the multiplier, or
        the new action's rate (q is ignored for it)."""
        if action == NEW_ACTION:
            i = TIER_ORDER.index(tier) if tier in TIER_ORDER else 0
            _, z_drift = self._normals(action, TIER_ORDER[i])
            rate = _NEW_ACTION_ACCEPTANCE[i] * float(np.exp(self.drift * z_drift * period))
            return min(rate, self.MAX_ACCEPTANCE)
        if q is None or not np.isfinite(q):
            raise ValueError(f"{action!r} needs its offline propensity q")
        return min(max(q, 0.0) * self.multiplier(action, tier, period), self.MAX_ACCEPTANCE)

    def skip(self, queue_pressure: str, rank: int) -> float:
        """The chance that the agent skips the suggestion shown at ``rank`` (1 = first)."""
        if queue_pressure not in _SKIP_BY_PRESSURE:
            raise ValueError(f"unknown queue pressure {queue_pressure!r}")
        return min(_SKIP_BY_PRESSURE[queue_pressure] + self.skip_per_rank * (rank - 1), 1.0)

    def _normals(self, action: str, tier: str) -> tuple[float, float]:
        """Two standard normals fixed by (seed, action, tier): the base and the drift."""
        digest = hashlib.sha256(f"acceptance:{self.seed}:{action}:{tier}".encode()).digest()
        u = np.frombuffer(digest, "<u8")[:2].astype(np.float64) / 2.0**64
        u = np.clip(u, 1e-12, 1.0)
        radius = np.sqrt(-2.0 * np.log(u[0]))
        return float(radius * np.cos(2 * np.pi * u[1])), float(radius * np.sin(2 * np.pi * u[1]))
