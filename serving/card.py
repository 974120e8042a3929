"""The customer card: what an agent sees of a customer, built from the online store's row.

The tiered-service method asks a core-customer card to show basic information, behaviour
traits, business performance, transaction history and satisfaction. Everything here comes
from the customer's own stored features and history as of the store's date; nothing is
computed that the store does not hold, so the card costs no model call. Profile columns
are shown only where they are features and not protected attributes; identifying columns
(names, e-mails) never reach the store at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from features.history import MONTHS, RECENT, TIER_CHANGES
from features.spec import FeatureSpec, slugs
from features.values import as_date, as_number

TOP_TRAITS = 3  # channels and products shown, by share of last year's transactions


class Share(BaseModel):
    name: str = Field(description="A channel or product, as the data names it.")
    share: float = Field(description="Share of the last 365 days' transactions (0-1).")


class Transaction(BaseModel):
    date: dt.date
    product: str | None
    channel: str | None
    amount: float = Field(description="Net amount; refunds are negative.")


class TierChange(BaseModel):
    date: dt.date = Field(description="The day the tier took effect.")
    tier: str


class Holding(BaseModel):
    product: str
    held_days: float | None = Field(description="Days the oldest open holding has been held.")
    monthly_fee: float | None


class Basics(BaseModel):
    signup_date: dt.date | None
    tenure_days: float | None
    profile: dict[str, Any] = Field(
        description="Profile attributes that are features and not protected, by column name."
    )


class Traits(BaseModel):
    channels: list[Share] = Field(description="Most used channels over the last year.")
    products: list[Share] = Field(description="Most bought products over the last year.")
    active_months_12m: float | None = Field(description="Months with a transaction, of 12.")
    engagement_30d: float | None = Field(
        None, description="Engagement events in the last 30 days (where the data names them)."
    )


class Performance(BaseModel):
    value: float = Field(description="12-month net revenue plus recurring fees.")
    value_trend: list[float] = Field(
        description=f"Net amount of each of the last {MONTHS} months, oldest first."
    )
    value_tier: str | None
    tier: str | None = Field(description="Service tier.")
    tier_reason: str | None = Field(description="Why, in words the customer can be told.")
    next_tier: str | None
    gap_to_next_tier: float | None
    tier_history: list[TierChange] = Field(description="Latest tier changes, latest first.")


class Satisfaction(BaseModel):
    last_score: float | None = Field(description="Last score (1-5) of the last year.")
    mean_score: float | None = Field(description="Mean score (1-5) over the last year.")
    complaints_90d: float | None = Field(None, description="Complaints in the last 90 days.")
    last_complaint_date: dt.date | None = None


class Card(BaseModel):
    """One customer's card, as of the online store's date."""

    status: Literal["open", "closed"] = Field(description="closed: the relationship has ended.")
    closed_date: dt.date | None = None
    basics: Basics
    traits: Traits
    performance: Performance
    transactions: list[Transaction] = Field(description=f"Last {RECENT}, latest first.")
    satisfaction: Satisfaction
    holdings: list[Holding]


def customer_card(
    features: Mapping[str, Any],
    history: Mapping[str, Any],
    held: tuple[str, ...],
    context: Mapping[str, Any],
    spec: FeatureSpec,
) -> Card:
    """The card of one customer from the store's row.

    Args:
        features: the stored feature row (feature name -> value).
        history: the stored history (``features.history.COLUMNS``, dates as ISO strings).
        held: the products held at the store's date.
        context: tier context: ``value``, ``value_tier``, ``tier``, ``tier_reason``,
            ``next_tier``, ``gap_to_next_tier``.
        spec: the feature spec the row was built with (which profile columns are shown).
    """
    closed = as_date(history.get("closed_date"))
    profile_names = slugs(list(spec.profile))
    profile = {
        column: features.get(f"profile_{profile_names[column]}")
        for column in spec.profile
        if column not in spec.protected
    }
    return Card(
        status="closed" if closed is not None else "open",
        closed_date=closed,
        basics=Basics(
            signup_date=as_date(history.get("signup_date")),
            tenure_days=as_number(features.get("tenure_days")),
            profile=profile,
        ),
        traits=Traits(
            channels=_top(features, "mix_channel", spec.channels),
            products=_top(features, "mix_product", spec.products),
            active_months_12m=as_number(features.get("active_months_12m")),
            engagement_30d=as_number(features.get("engagement_30d")),
        ),
        performance=_performance(history, context),
        transactions=_transactions(history),
        satisfaction=Satisfaction(
            last_score=as_number(features.get("satisfaction_last_365d")),
            mean_score=as_number(features.get("satisfaction_mean_365d")),
            complaints_90d=as_number(features.get("complaints_90d")),
            last_complaint_date=as_date(history.get("last_complaint_date")),
        ),
        holdings=[
            Holding(
                product=product,
                held_days=as_number(features.get(f"held_{slug}_days")),
                monthly_fee=as_number(features.get(f"fee_{slug}")),
            )
            for product, slug in slugs(sorted(held)).items()
        ],
    )


def _performance(history: Mapping[str, Any], context: Mapping[str, Any]) -> Performance:
    return Performance(
        value=as_number(context.get("value")) or 0.0,
        value_trend=[
            as_number(history.get(f"spend_month_{m}")) or 0.0 for m in range(MONTHS, 0, -1)
        ],
        value_tier=context.get("value_tier"),
        tier=context.get("tier"),
        tier_reason=context.get("tier_reason"),
        next_tier=context.get("next_tier"),
        gap_to_next_tier=as_number(context.get("gap_to_next_tier")),
        tier_history=[
            TierChange(date=day, tier=str(history[f"tier_change_{i}_tier"]))
            for i in range(1, TIER_CHANGES + 1)
            if (day := as_date(history.get(f"tier_change_{i}_date"))) is not None
        ],
    )


def _top(features: Mapping[str, Any], prefix: str, names: list[str]) -> list[Share]:
    shares = [
        (share, name)
        for name, slug in slugs(names).items()
        if (share := as_number(features.get(f"{prefix}_{slug}_365d"))) is not None and share > 0
    ]
    return [Share(name=n, share=s) for s, n in sorted(shares, key=lambda t: (-t[0], t[1]))][
        :TOP_TRAITS
    ]


def _transactions(history: Mapping[str, Any]) -> list[Transaction]:
    rows = [
        (
            history.get("last_transaction_date"),
            history.get("last_transaction_product"),
            history.get("last_transaction_channel"),
            history.get("last_transaction_amount"),
        )
    ]
    rows += [
        tuple(history.get(f"txn_{i}_{f}") for f in ("date", "product", "channel", "amount"))
        for i in range(2, RECENT + 1)
    ]
    return [
        Transaction(date=day, product=product, channel=channel, amount=as_number(amount) or 0.0)
        for date, product, channel, amount in rows
        if (day := as_date(date)) is not None
    ]
