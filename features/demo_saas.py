"""Synthetic SaaS subscription base in the data contract, for demos, tests and benchmarks.

The second demo flavour beside the retail bank (``features.demo``): companies subscribe to a
plan (the service tier), billed monthly or once a year per seat, buy add-ons (the holdings)
and use the product (the interactions: in-app events, support contacts, surveys). Each
account gets latent traits (seats wanted and their growth, engagement, API and reporting
appetite, friction with the product, churn risk) and every table is derived from them, so
the tables relate the way a real subscription base does: usage fades and seats are removed
in the months before a cancellation, tickets and bug reports rise and scores fall; demand
near the plan's seat cap shows as limit warnings, added seats and heavy API use before an
upgrade; add-ons follow the events they serve (API calls before ``api_access``, exports
before ``analytics_pack``, many seats before ``sso`` and ``audit_log``). Accounts are
generated in fixed-size chunks, fully vectorized (the latent draws and the product's words:
``features.demo_saas_accounts``; the tables: here), and appended to the parquet files as row
groups, so memory stays bounded at any size and the output depends only on
``(customers, seed)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from features.demo import (
    _MONTH_START,
    _NEVER,
    _START,
    _TS,
    DATA_END,
    _dates,
    _labels,
    holdings_table,
    write_chunked,
)
from features.demo_saas_accounts import (
    _M,
    _MONTH_DAYS,
    _MONTH_OF_YEAR,
    _NEAR_DAYS,
    ADDONS,
    COMPLAINT,
    ENGAGEMENT,
    KINDS,
    SATISFACTION,
    TIER_ORDER,
    _Base,
    _draw_addons,
    _draw_base,
    _event_counts,
    _Holdings,
    _Months,
    _months,
    _Plans,
    _plans,
)

__all__ = ["generate_saas_data"]

CHANNELS = ("web", "desktop", "mobile", "email", "chat", "api")
PAYMENT_CHANNELS = ("card", "invoice", "marketplace")
BILLING = ("monthly", "annual")
CHUNK_CUSTOMERS = 25000  # a constant, so that the output depends only on (customers, seed)


def _yaml_list(names: tuple[str, ...]) -> str:
    return f"[{', '.join(names)}]"


SETTINGS_YAML = f"""\
churn_definition: closed
horizon_days: 90
tier_order: {_yaml_list(TIER_ORDER)}
interaction_roles:
  complaint: {_yaml_list(COMPLAINT)}
  engagement: {_yaml_list(ENGAGEMENT)}
  satisfaction: {_yaml_list(SATISFACTION)}
data_end: {DATA_END.isoformat()}
"""

# List price per seat and month of each plan, lowest first (annual: ten months' worth).
_PRICE = np.array([9.0, 16.0, 29.0, 49.0])
_ANNUAL_MONTHS = 10

_INDUSTRIES = (
    "software",
    "retail",
    "healthcare",
    "finance",
    "education",
    "manufacturing",
    "media",
    "nonprofit",
    "consulting",
)
_INDUSTRY_P = np.array([0.24, 0.1, 0.09, 0.1, 0.08, 0.1, 0.09, 0.06, 0.14])
_SIZES = ("1-10", "11-50", "51-200", "201-1000", "1000+")
_COUNTRIES = ("US", "GB", "DE", "FR", "NL", "CA", "AU", "IN", "BR", "ES", "SE")
_COUNTRY_P = np.array([0.38, 0.12, 0.1, 0.07, 0.04, 0.06, 0.05, 0.06, 0.05, 0.04, 0.03])
_FIRST = np.array(["alex", "sam", "jordan", "taylor", "morgan", "priya", "omar", "lena", "kenji"])
_LAST = np.array(["smith", "jones", "patel", "brown", "khan", "nowak", "garcia", "chen", "okafor"])
_DOMAINS = np.array(["northwind", "acme", "globex", "initech", "umbrella", "hooli", "vandelay"])

_K = {kind: i for i, kind in enumerate(KINDS)}
# How each kind reaches us: 0 the product (web/desktop/mobile), 1 the API, 2 a support desk,
# 3 e-mail or the web app, 4 the web app alone, 5 e-mail alone.
_ROUTE = np.array(
    [
        {
            "api_call": 1,
            "support_ticket": 2,
            "ticket_escalated": 2,
            "billing_question": 2,
            "bug_report": 3,
            "feature_request": 3,
            "nps_survey": 3,
            "limit_warning": 3,
            "integration_connected": 4,
            "pricing_page_view": 4,
            "webinar_attended": 4,
            "newsletter_click": 5,
        }.get(kind, 0)
        for kind in KINDS
    ]
)


def generate_saas_data(out: Path, customers: int = 20_000, seed: int = 0) -> Path:
    """Write a synthetic SaaS subscription base in the data contract to `out`; return `out`.

    Writes ``customers``, ``transactions``, ``holdings``, ``interactions`` and ``tiers`` as
    parquet plus ``tierwise.yaml``, creating `out`. Plans are the tiers, add-ons the
    holdings, subscription payments the transactions and in-app events the interactions.
    The same ``(customers, seed)`` gives byte-identical files. Raises ValueError if
    `customers` is not positive.
    """
    return write_chunked(out, customers, seed, _generate_chunk, SETTINGS_YAML)


def _generate_chunk(first: int, n: int, rng: np.random.Generator) -> dict[str, pa.Table]:
    """All five tables for accounts number `first` .. `first + n - 1`."""
    number = np.arange(first + 1, first + n + 1).astype(str)
    ids = pa.array(np.char.add("S", np.char.zfill(number, 7)))
    base = _draw_base(n, rng)
    months = _months(base, rng)
    plans = _plans(base, months, rng)
    counts = _event_counts(base, months, plans, rng)
    holdings = _draw_addons(base, months, plans, counts, rng)
    return {
        "customers": _customers(ids, number, base, rng),
        "transactions": _transactions(ids, base, months, plans, holdings, rng),
        "holdings": holdings_table(ids, holdings, rng, ADDONS),
        "interactions": _interactions(ids, base, months, counts, rng),
        "tiers": _tiers(ids, plans),
    }


def _place(
    m: _Months, counts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spread each account-month's events over its subscribed days: (account, day, ts in us)."""
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    day = m.start.ravel()[cell] + (rng.random(cell.size) * m.days.ravel()[cell]).astype(np.int64)
    seconds = rng.integers(0, 86_400, cell.size)  # accounts around the world: any hour
    return cell // _M, day, (day * 86_400 + seconds) * 1_000_000


def _interactions(
    ids: pa.Array, b: _Base, m: _Months, counts: dict[str, np.ndarray], rng: np.random.Generator
) -> pa.Table:
    """In-app events, support contacts and surveys; scores only on surveys and tickets."""
    parts = [(*_place(m, counts[kind], rng), _K[kind]) for kind in KINDS]
    cust, day, ts = (np.concatenate([part[i] for part in parts]) for i in range(3))
    kind = np.concatenate([np.full(part[0].size, part[3]) for part in parts])
    size = cust.size
    near_day = 1 - np.clip((b.signalled[cust] - day) / _NEAR_DAYS, 0, 1)
    ticket = kind == _K["support_ticket"]
    score = (
        3.9
        - 0.5 * b.friction[cust]
        + 0.25 * b.engage[cust]
        - 1.6 * near_day
        - 0.3 * ticket
        + rng.normal(0, 0.8, size)
    )
    satisfaction = np.clip(np.round(score), 1, 5).astype(np.int8)
    # Surveys are often unanswered, and the CSAT after a ticket more so; no other kind is scored.
    answered = rng.random(size) < np.where(
        kind == _K["nps_survey"], 0.55, np.where(ticket, 0.4, 0.0)
    )
    web, desktop, mobile, email, chat, api = range(len(CHANNELS))
    r = rng.random(size)
    route = _ROUTE[kind]
    product = np.where(r < b.mobile[cust], mobile, np.where(rng.random(size) < 0.35, desktop, web))
    channel = np.select(
        [route == 0, route == 1, route == 2, route == 3, route == 4],
        [
            product,
            api,
            np.where(r < 0.5, email, np.where(r < 0.85, chat, web)),
            np.where(r < 0.55, email, web),
            web,
        ],
        email,
    )
    order = _order(cust, ts)
    return pa.table(
        {
            "customer_id": ids.take(cust[order]),
            "ts": pa.array(ts[order], _TS),
            "kind": _labels(kind[order], KINDS),
            "channel": _labels(channel[order], CHANNELS, rng.random(size) < 0.01),
            "satisfaction": pa.array(satisfaction[order], mask=~answered[order]),
        }
    )


def _transactions(
    ids: pa.Array, b: _Base, m: _Months, p: _Plans, h: _Holdings, rng: np.random.Generator
) -> pa.Table:
    """Subscription payments: the plan monthly or yearly, add-ons monthly, prorations, credits."""
    n = b.signup.size
    cust, day, amount, product = _payment_lines(b, p, h, rng)
    size = cust.size
    seconds = rng.integers(0, 6 * 3600, size)  # the billing run works at night
    ts = (day * 86_400 + seconds) * 1_000_000
    # Each account pays one way: large annual accounts by invoice, most by card.
    card, invoice, marketplace = range(len(PAYMENT_CHANNELS))
    r = rng.random(n)
    invoiced = b.annual & (b.demand0 > 15)
    payer = np.where(invoiced, invoice, np.where(r < 0.88, card, marketplace))
    order = _order(cust, ts)
    return pa.table(
        {
            "customer_id": ids.take(cust[order]),
            "ts": pa.array(ts[order], _TS),
            "amount": np.round(amount[order], 2),
            "product": _labels(product[order], TIER_ORDER + ADDONS),
            "channel": _labels(payer[cust[order]], PAYMENT_CHANNELS, rng.random(size) < 0.01),
        }
    )


def _payment_lines(
    b: _Base, p: _Plans, h: _Holdings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every payment as (account, day, amount, product code): plans, add-ons, credits, prorations.

    Product codes index ``TIER_ORDER + ADDONS``.
    """
    bill, billed, month_of_year = _billing_days(b)
    renewal = month_of_year[:, None] == _MONTH_OF_YEAR
    price = _PRICE[p.plan] * np.ceil(p.used) * (1 - b.discount[:, None] / 100)
    plan_due = billed & np.where(b.annual[:, None], renewal, True)
    plan_amount = price * np.where(b.annual, _ANNUAL_MONTHS, 1)[:, None]
    # A service credit now and then, more for accounts with trouble: a negative line days later.
    credit = plan_due & (rng.random(plan_due.shape) < 0.01 * np.exp(0.6 * b.friction)[:, None])
    plan_cust, plan_month = np.nonzero(plan_due)
    credit_cust, credit_month = np.nonzero(credit)
    addon_due = billed[:, :, None] & (h.opened[:, None, :] <= bill[:, :, None])
    addon_due &= bill[:, :, None] < h.closed[:, None, :]
    addon_cust, addon_month, addon = np.nonzero(addon_due)
    credit_day = np.minimum(
        bill[credit_cust, credit_month] + rng.integers(1, 15, credit_cust.size),
        b.last[credit_cust],
    )
    credit_amount = (
        -rng.uniform(0.1, 0.5, credit_cust.size) * plan_amount[credit_cust, credit_month]
    )
    pro_cust, pro_day, pro_amount, pro_product = _prorations(b, p, month_of_year)
    cust = np.concatenate([plan_cust, addon_cust, credit_cust, pro_cust])
    day = np.concatenate(
        [bill[plan_cust, plan_month], bill[addon_cust, addon_month], credit_day, pro_day]
    )
    amount = np.concatenate(
        [plan_amount[plan_cust, plan_month], h.fee[addon_cust, addon], credit_amount, pro_amount]
    )
    product = np.concatenate(
        [
            p.plan[plan_cust, plan_month],
            len(TIER_ORDER) + addon,
            p.plan[credit_cust, credit_month],
            pro_product,
        ]
    )
    return cust, day, amount, product


def _billing_days(b: _Base) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each account-month's invoice day, whether it is billed, and each signup's month of year."""
    signup = b.signup.astype("datetime64[D]")
    day_of_month = (signup - signup.astype("datetime64[M]")).astype(np.int64)
    month_of_year = signup.astype("datetime64[M]").astype(np.int64) % 12
    # Invoices fall on the signup's day of the month (the month's last day when it is shorter).
    bill = _MONTH_START + np.minimum(day_of_month[:, None], _MONTH_DAYS - 1)
    billed = (bill >= b.signup[:, None]) & (bill <= b.last[:, None])
    return bill, billed, month_of_year


def _prorations(
    b: _Base, p: _Plans, month_of_year: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Proration lines as (account, day, amount, product code)."""
    # Annual accounts pay the difference for the months left when they change plan mid-term.
    who, month, old, new = p.changes
    left = (month_of_year[who] - _MONTH_OF_YEAR[month]) % 12
    prorate = b.annual[who] & (left > 0)
    diff = _PRICE[new] - _PRICE[old]
    amount = diff * np.ceil(p.used[who, month]) * (1 - b.discount[who] / 100) * left
    amount = np.where(diff < 0, 0.5 * amount, amount)  # half the unused term back
    return who[prorate], _MONTH_START[month[prorate]], amount[prorate], new[prorate]


def _order(cust: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The permutation that sorts rows by account, then time (ties kept in place)."""
    # One int64 key sorts several times faster than np.lexsort: the period spans < 2**47 us.
    key = cust.astype(np.int64) << 47 | (ts - _START * 86_400_000_000)
    return np.argsort(key, kind="stable")


def _tiers(ids: pa.Array, p: _Plans) -> pa.Table:
    """Plan history: the plan at signup, then every change at a monthly review."""
    cust, plan, effective = p.rows
    order = np.lexsort((effective, cust))
    return pa.table(
        {
            "customer_id": ids.take(cust[order]),
            "tier": _labels(plan[order], TIER_ORDER),
            "effective": _dates(effective[order]),
        }
    )


def _customers(ids: pa.Array, number: np.ndarray, b: _Base, rng: np.random.Generator) -> pa.Table:
    """Account rows: lifecycle dates, profile attributes with a few gaps, the admin's e-mail."""
    n = b.signup.size
    employees = b.seats * np.exp(rng.normal(1.0, 0.7, n))
    size = np.searchsorted([10.5, 50.5, 200.5, 1000.5], employees)
    first, last = _FIRST[rng.integers(0, len(_FIRST), n)], _LAST[rng.integers(0, len(_LAST), n)]
    domain = _DOMAINS[rng.integers(0, len(_DOMAINS), n)]
    # The account number in the domain keeps every address unique.
    local = np.char.add(np.char.add(first, "."), last)
    email = np.char.add(
        np.char.add(np.char.add(local, "@"), domain), np.char.add(number, ".example")
    )
    return pa.table(
        {
            "customer_id": ids,
            "signup_date": _dates(b.signup),
            "closed_date": _dates(b.closed, b.closed == _NEVER),
            "seats": pa.array(b.seats.astype(np.int32)),
            "discount_pct": pa.array(b.discount, mask=rng.random(n) < 0.01),
            "industry": _labels(
                rng.choice(len(_INDUSTRIES), n, p=_INDUSTRY_P), _INDUSTRIES, rng.random(n) < 0.02
            ),
            "company_size": _labels(size, _SIZES, rng.random(n) < 0.01),
            "country": _labels(rng.choice(len(_COUNTRIES), n, p=_COUNTRY_P), _COUNTRIES),
            "billing": _labels(b.annual.astype(np.int64), BILLING),
            "admin_email": pa.array(email),
        }
    )
