"""Value tier schemes: how customers are cut into tiers, and what that means for one customer.

A ``TierScheme`` (the customer pyramid, ABC 80/20, or a dataset's own ``value_tiers``) is
cut from the top, by customer counts (``quantile``) or by cumulative share of value
(``cumulative_value``); ``features.tiers`` turns it into SQL. For one customer,
``next_value_tier`` names the tier above and ``tier_reason`` says in words where they stand;
the batch uses both with its own population figures.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import pandas as pd

from features.contract import Dataset
from features.dataset_settings import VALUE_TIER_PRESETS, ValueTiers

SHARE_TOLERANCE = 1e-9
# Cut points are exact fractions with a bounded denominator, so that cuts compare integers
# (counts) or decimals (money) and no float rounding decides a customer's tier.
_MAX_DENOMINATOR = 10**6


@dataclass(frozen=True)
class TierScheme:
    """How customers are cut into value tiers. names lowest first; shares top-down.

    ``shares[i]`` is the share of tier ``names[i]``: of customers (``quantile``) or of total
    value (``cumulative_value``). Cuts are taken from the top: the best customers fill the
    highest tier first.

    Raises:
        ValueError: names empty or repeated, shares not one per name, not positive, or not
            summing to 1 (within 1e-9), or an unknown method.
    """

    names: tuple[str, ...]  # lowest first, e.g. ("small", "ordinary", "major", "VIP")
    shares: tuple[float, ...]  # same order as names; sum to 1
    method: Literal["quantile", "cumulative_value"]

    def __post_init__(self) -> None:
        if not self.names:
            raise ValueError("a tier scheme needs at least one tier name")
        if any(not isinstance(n, str) or not n for n in self.names):
            raise ValueError(f"tier names must be non-empty strings, got {self.names!r}")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"tier names must be unique, got {self.names!r}")
        if len(self.shares) != len(self.names):
            raise ValueError(
                f"one share per tier name is needed: {len(self.names)} names, "
                f"{len(self.shares)} shares"
            )
        if any(not math.isfinite(s) or s <= 0 for s in self.shares):
            raise ValueError(f"tier shares must be positive, got {self.shares!r}")
        total = math.fsum(self.shares)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"tier shares must sum to 1, got {self.shares!r} (sum {total!r})")
        if self.method not in ("quantile", "cumulative_value"):
            raise ValueError(
                f"tier method must be 'quantile' or 'cumulative_value', got {self.method!r}"
            )

    def upper_bounds(self) -> list[Fraction]:
        """Cumulative share from the top through each tier, highest tier first, lowest excluded."""
        exact = [Fraction(repr(s)) for s in reversed(self.shares)]
        bounds, running = [], Fraction(0)
        for share in exact[:-1]:
            running += share
            bounds.append(running.limit_denominator(_MAX_DENOMINATOR))
        return bounds


def scheme_from(tiers: ValueTiers) -> TierScheme:
    """The TierScheme of dataset settings' value tiers."""
    return TierScheme(tuple(tiers.names), tuple(tiers.shares), tiers.method)


PYRAMID = scheme_from(VALUE_TIER_PRESETS["pyramid"])
ABC = scheme_from(VALUE_TIER_PRESETS["abc"])


def scheme_of(ds: Dataset) -> TierScheme:
    """The value tiers a dataset's settings ask for (the pyramid by default)."""
    return scheme_from(ds.settings.value_scheme())


# -- the tier above and the reason -------------------------------------------------------------


def next_value_tier(scheme: TierScheme, ranks: Collection[int], rank: int) -> str | None:
    """The ``next_tier`` of ``tier_sql`` for a value-tier rank, given the ranks with customers.

    The nearest higher tier that has customers; the one above when none has; None at the top.
    """
    if rank >= len(scheme.names) - 1:
        return None
    higher = [r for r in ranks if r > rank]
    return scheme.names[min(higher) if higher else rank + 1]


# tier_sql's columns a tier reason is made of, in tier_reason's order
_REASON_OF = (
    "value_tier",
    "value_tier_rank",
    "value",
    "tier_threshold",
    "next_tier",
    "gap_to_next_tier",
)


def tier_reasons(scheme: TierScheme, frame: pd.DataFrame) -> list[str | None]:
    """``tier_reason`` of each row of a frame with ``tier_sql``'s value-tier columns."""
    return [tier_reason(scheme, *row) for row in zip(*(frame[c] for c in _REASON_OF), strict=True)]


def tier_reason(
    scheme: TierScheme,
    tier: str | None,
    rank: int | float | None,
    value: float | None,
    threshold: float | None,
    next_tier: str | None,
    gap: float | None,
) -> str | None:
    """A sentence a customer could be told about their value tier, in their own terms.

    For example "your 12-month value of 2,140 puts you in the top 20% of customers, in our
    major tier; major starts at 1,800; 660 more would reach VIP". A threshold is stated
    only where it is a positive amount (the lowest tier has none to state), and a value
    below zero is said in words, never as a negative sum.
    """
    if tier is None or pd.isna(tier) or pd.isna(value) or pd.isna(rank):
        return None
    rank, top = int(rank), len(scheme.names) - 1
    if value > 0:
        standing = f"your 12-month value of {_money(value)}"
    elif value == 0:
        standing = "no spend over the last 12 months"
    else:
        standing = "more refunded than spent over the last 12 months"
    if rank == 0 or top == 0:
        where = f"our {tier} tier"
    elif scheme.method == "quantile":
        where = f"the top {_pct(math.fsum(scheme.shares[rank:]))} of customers, in our {tier} tier"
    else:
        share = _pct(math.fsum(scheme.shares[rank:]))
        where = f"our {tier} tier, the customers who bring the top {share} of our business"
    text = f"{standing} puts you in {where}"
    if rank > 0 and threshold is not None and not pd.isna(threshold) and threshold > 0:
        text += f"; {tier} starts at {_money(threshold)}"
    if next_tier is not None and gap is not None and not pd.isna(gap) and gap > 0:
        text += f"; {_money(gap)} more would reach {next_tier}"
    return text


def _money(amount: float | None) -> str:
    return "unknown" if amount is None or pd.isna(amount) else f"{amount:,.0f}"


def _pct(share: float) -> str:
    return f"{round(share * 100, 1):g}%"
