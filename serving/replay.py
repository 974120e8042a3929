"""The policy's inputs of a decision, as the decision log keeps them, and back.

``rank_actions`` reads more of a customer than the decision row holds (the probabilities,
the context and the tier): the tier rank and next tier, the value and the gap to the next
tier, the products held, the profile (product rules read ages from it), a closing date,
the predicted uplifts, and, from the models, which product each cross-sell target is and
which products they know, and the request's list length. ``policy_inputs`` writes exactly
that as a JSON-ready dict (logged with the decision, ``serving.decisions``), and
``replay_of`` rebuilds it, so another policy can rank a past decision as it would have
(``monitoring.evaluation``). Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from features.values import as_int, as_number
from serving.policy import Customer


@dataclass(frozen=True)
class Replay:
    """What ``rank_actions`` needs of a logged decision besides the policy, context and time."""

    customer: Customer
    product_by_target: Mapping[str, str]
    known_products: tuple[str, ...]
    max_suggestions: int | None


def policy_inputs(
    customer: Customer,
    product_by_target: Mapping[str, str],
    known_products: Iterable[str],
    max_suggestions: int | None,
) -> dict[str, Any]:
    """The policy's inputs of a decision beside its probabilities and customer id (logged
    apart), as plain JSON values; ``replay_of`` reads them back."""
    return {
        "tier": customer.tier,
        "tier_rank": as_int(customer.tier_rank),
        "next_tier": customer.next_tier,
        "value": float(customer.value),
        "gap_to_next_tier": as_number(customer.gap_to_next_tier),
        "held": sorted(customer.held),
        "profile": {k: _plain(v) for k, v in sorted(customer.profile.items())},
        "closed_date": None if customer.closed_date is None else customer.closed_date.isoformat(),
        "uplift": {a: float(u) for a, u in sorted(customer.uplift.items())},
        "product_by_target": dict(sorted(product_by_target.items())),
        "known_products": sorted(known_products),
        "max_suggestions": max_suggestions,
    }


def replay_of(
    inputs: Mapping[str, Any], customer_id: str, probabilities: Mapping[str, float | None]
) -> Replay:
    """The logged inputs of a decision (``policy_inputs``) with its customer id and
    probabilities, as ``rank_actions`` takes them (a missing probability: no model)."""
    closed = inputs.get("closed_date")
    customer = Customer(
        customer_id=customer_id,
        tier=inputs.get("tier"),
        tier_rank=inputs.get("tier_rank"),
        next_tier=inputs.get("next_tier"),
        value=float(inputs.get("value") or 0.0),
        probabilities={t: p for t, p in probabilities.items() if p is not None},
        held=frozenset(inputs.get("held") or ()),
        profile=dict(inputs.get("profile") or {}),
        gap_to_next_tier=inputs.get("gap_to_next_tier"),
        closed_date=None if closed is None else dt.date.fromisoformat(closed),
        uplift=dict(inputs.get("uplift") or {}),
    )
    return Replay(
        customer,
        dict(inputs.get("product_by_target") or {}),
        tuple(inputs.get("known_products") or ()),
        inputs.get("max_suggestions"),
    )


def _plain(value: Any) -> Any:
    """A profile value as JSON keeps it: numbers as floats, missing as None, the rest text."""
    if value is None or isinstance(value, bool | str):
        return value
    number = as_number(value)
    if number is not None:
        return number
    try:
        missing = value != value  # NaN and NaT
    except (TypeError, ValueError):
        missing = False
    return None if missing else str(value)
