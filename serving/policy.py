"""The next-best-action policy: which actions an agent sees for a customer, and in what order.

Pure and deterministic, so the service and batch scoring share it (one inference path); the
stores, the decision log and HTTP live around it. The rules apply in this order
(DESIGN.md, "Next best action"):

1. eligibility (``candidates``): retention only at medium or high churn risk, an upgrade only
   below the top tier, cross-sell only of products not held and allowed by the product rules;
   sales offers need ``min_probability``; an action worth nothing (expected value or lever 0)
   is not an action;
2. churn gate: at high risk, sales offers (upgrade, cross-sell) yield to retention;
3. contact policy: ``decline_limit`` customer declines within ``decline_window_days`` pause an
   action. Agent discretion is data, not refusal: skips never count (Decision 8);
4. priority = calibrated probability x action value x context weight x business lever; a
   control decision (``control_share`` of decision ids) gets the eligible actions in a random
   order seeded by its id instead, so the lift of the ranking can be measured;
5. queue pressure, last: under high pressure an agent gets at most one suggestion, and only
   one whose expected value clears ``high_pressure_min_expected_value``: a busy agent is
   trusted to skip, and is not handed a list of small offers to wade through.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Kind = Literal["retention", "upgrade", "cross_sell"]
Band = Literal["low", "medium", "high"]
Pressure = Literal["low", "normal", "high"]
PRESSURES = ("low", "normal", "high")
MAX_SUGGESTIONS = 10
Weight = Annotated[float, Field(ge=0)]


class RiskBands(BaseModel):
    """Churn-probability thresholds: at or above ``medium`` is medium risk, at or above ``high`` high."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    medium: float = Field(0.10, gt=0, lt=1, description="lowest churn probability of medium risk")
    high: float = Field(0.30, gt=0, lt=1, description="lowest churn probability of high risk")

    @model_validator(mode="after")
    def _ordered(self) -> RiskBands:
        if self.medium >= self.high:
            raise ValueError(f"medium ({self.medium}) must be below high ({self.high})")
        return self


class UpgradeValue(BaseModel):
    """Value of a tier upgrade: ``fixed + gap_multiple x gap to the next tier`` (no gap counts 0).

    The gap is the least extra yearly value a customer of the next tier brings, so the default
    (multiple 1, fixed 0) values an upgrade conservatively; set ``gap_multiple`` 0 and
    ``fixed`` N for a flat amount.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    gap_multiple: float = Field(1.0, ge=0, description="multiple of the customer's value gap")
    fixed: float = Field(0.0, ge=0, description="amount added to every upgrade's value")


class ProductRule(BaseModel):
    """When a product may be offered (every condition set must hold)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    excluded: bool = Field(False, description="never offer the product")
    min_tier_rank: int | None = Field(None, description="lowest service tier rank offered it")
    requires_products: list[str] = Field(
        default_factory=list, description="products the customer must already hold"
    )
    age_field: str = Field("age", description="profile value the age limits apply to")
    min_age: float | None = Field(None, description="lowest age; a missing age is not eligible")
    max_age: float | None = Field(None, description="highest age; a missing age is not eligible")


class PolicyConfig(BaseModel):
    """Every business setting of the policy; validated once at service start-up.

    Money amounts are in the currency of the transactions, per year, like customer value.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    risk_bands: RiskBands = Field(default_factory=RiskBands, description="churn risk bands")
    retention_save_rate: float = Field(
        0.3, gt=0, le=1, description="share of an at-risk customer's value a retention action keeps"
    )
    upgrade_value: UpgradeValue = Field(
        default_factory=UpgradeValue, description="value of a tier upgrade"
    )
    product_margin: dict[str, Weight] = Field(
        default_factory=dict, description="yearly margin of a sale, by product"
    )
    default_margin: float = Field(100.0, ge=0, description="margin of products not listed")
    min_probability: float = Field(
        0.02, ge=0, lt=1, description="a sales offer less likely than this is not worth the time"
    )
    product_rules: dict[str, ProductRule] = Field(
        default_factory=dict, description="eligibility rules by product"
    )
    decline_limit: int = Field(
        2, ge=1, description="declines within the window that pause an action"
    )
    decline_window_days: int = Field(30, ge=1, description="days a decline counts for")
    high_pressure_min_expected_value: float = Field(
        25.0, ge=0, description="expected value the one suggestion needs under high queue pressure"
    )
    channel_weights: dict[str, Weight] = Field(
        default_factory=dict, description="priority weight by channel (unlisted: 1)"
    )
    call_reason_weights: dict[str, dict[Kind, Weight]] = Field(
        default_factory=lambda: {
            "complaint": {"retention": 1.5, "upgrade": 0.5, "cross_sell": 0.5}
        },
        description="priority weight by call reason, then action kind (unlisted: 1)",
    )
    levers: dict[str, Weight] = Field(
        default_factory=dict,
        description="business lever by action key: retention, upgrade or a product (unlisted: 1; 0 switches the action off)",
    )
    control_share: float = Field(
        0.05, ge=0, le=0.5, description="share of decisions in the control group (no model ranking)"
    )


@dataclass(frozen=True)
class Customer:
    """What the policy knows of a customer (from the online store or the scores table).

    ``probabilities`` maps target keys (``churn``, ``upgrade``, ``cross_sell_<slug>``) to
    calibrated probabilities; a missing or NaN one means no model (churn: treated as low risk).
    """

    customer_id: str
    tier: str | None
    tier_rank: int | None
    next_tier: str | None
    value: float
    probabilities: Mapping[str, float]
    held: frozenset[str] = frozenset()
    profile: Mapping[str, Any] = field(default_factory=dict)
    gap_to_next_tier: float | None = None


@dataclass(frozen=True)
class Context:
    """The contact the decision is for."""

    channel: str
    call_reason: str | None = None
    queue_pressure: Pressure = "normal"
    agent_id: str | None = None


@dataclass(frozen=True)
class Candidate:
    """An action: ``action`` is its key (``retention``, ``upgrade`` or the product).

    From ``candidates`` the priority equals the expected value; ``rank_actions`` weighs it.
    """

    kind: Kind
    action: str
    target: str
    product: str | None
    probability: float
    expected_value: float
    priority: float


Suggestion = Candidate  # a ranked candidate


@dataclass(frozen=True)
class Ranking:
    """A decision: suggestions in order, whether it is a control decision, and its inputs."""

    suggestions: tuple[Suggestion, ...]
    control: bool
    risk_band: Band
    eligible: tuple[str, ...]  # action keys after eligibility, churn gate and contact policy


def risk_band(p: float | None, config: PolicyConfig) -> Band:
    """The churn risk band of a probability (None or NaN: low, as without a churn model)."""
    p = _probability(p)
    if p is None or p < config.risk_bands.medium:
        return "low"
    return "high" if p >= config.risk_bands.high else "medium"


def upgrade_value(customer: Customer, config: PolicyConfig) -> float:
    """Value of moving the customer up a tier (see ``UpgradeValue``)."""
    gap = _number(customer.gap_to_next_tier) or 0.0
    return config.upgrade_value.fixed + config.upgrade_value.gap_multiple * max(gap, 0.0)


def product_eligible(product: str, customer: Customer, config: PolicyConfig) -> bool:
    """Whether a product may be offered: not held, and its rule (if any) allows it."""
    if product in customer.held:
        return False
    rule = config.product_rules.get(product)
    if rule is None:
        return True
    if rule.excluded or not set(rule.requires_products) <= customer.held:
        return False
    if rule.min_tier_rank is not None and (
        customer.tier_rank is None or customer.tier_rank < rule.min_tier_rank
    ):
        return False
    if rule.min_age is None and rule.max_age is None:
        return True
    age = _number(customer.profile.get(rule.age_field))
    return (
        age is not None
        and (rule.min_age is None or age >= rule.min_age)
        and (rule.max_age is None or age <= rule.max_age)
    )


def candidates(
    customer: Customer, config: PolicyConfig, product_by_target: Mapping[str, str]
) -> list[Candidate]:
    """The eligible actions for a customer, before the churn gate, contacts and context.

    Args:
        product_by_target: cross-sell target key -> product (a predictor's ``meta["product"]``).
    """
    p = customer.probabilities
    out = []
    churn = _probability(p.get("churn"))
    if churn is not None and risk_band(churn, config) != "low":
        value = customer.value * config.retention_save_rate
        out.append(_candidate("retention", "retention", "churn", None, churn, value))
    up = _probability(p.get("upgrade"))
    if customer.next_tier is not None and up is not None and up >= config.min_probability:
        out.append(
            _candidate("upgrade", "upgrade", "upgrade", None, up, upgrade_value(customer, config))
        )
    for target, product in sorted(product_by_target.items()):
        q = _probability(p.get(target))
        if (
            q is None
            or q < config.min_probability
            or not product_eligible(product, customer, config)
        ):
            continue
        margin = config.product_margin.get(product, config.default_margin)
        out.append(_candidate("cross_sell", product, target, product, q, margin))
    return [c for c in out if c.expected_value > 0 and config.levers.get(c.action, 1.0) > 0]


def paused(declines: Sequence[datetime], now: datetime, config: PolicyConfig) -> bool:
    """Whether an action is paused by the contact policy.

    Args:
        declines: when the customer declined this action. Pass only ``declined`` feedback:
            ``skipped`` (the agent's choice), ``not_shown`` and ``accepted`` never count.
            Declines after ``now`` are ignored so replays see what was known then. Use one
            time zone convention (UTC) for both arguments.
    """
    start = now - timedelta(days=config.decline_window_days)
    return sum(start <= d <= now for d in declines) >= config.decline_limit


def collect_declines(feedback: Iterable[tuple[str, str, datetime]]) -> dict[str, list[datetime]]:
    """Action key -> decline times from ``(action, response, at)`` feedback, for ``paused``.

    Only ``declined`` (the customer said no) counts; ``skipped`` is the agent's judgement
    (Decision 8), ``not_shown`` never reached the customer and ``accepted`` is a yes.
    """
    out: dict[str, list[datetime]] = {}
    for action, response, at in feedback:
        if response == "declined":
            out.setdefault(action, []).append(at)
    return out


def context_weight(kind: Kind, context: Context, config: PolicyConfig) -> float:
    """Channel weight x call-reason weight for an action kind (1 where not configured)."""
    reason = config.call_reason_weights.get(context.call_reason or "", {})
    return config.channel_weights.get(context.channel, 1.0) * reason.get(kind, 1.0)


def is_control(decision_id: str, share: float) -> bool:
    """Whether a decision is in the control group: a uniform draw from sha256 of its id."""
    return _uniform("control", decision_id) < share


def rank_actions(
    customer: Customer,
    context: Context,
    config: PolicyConfig,
    declines_by_action: Mapping[str, Sequence[datetime]],
    now: datetime,
    max_suggestions: int,
    decision_id: str,
    product_by_target: Mapping[str, str],
) -> Ranking:
    """The suggestions for one contact, applying every rule in the module's order.

    Args:
        declines_by_action: action key -> times of customer declines (see ``paused``).
        max_suggestions: 1..10; high queue pressure allows one at most.
        decision_id: the logged decision's id; decides the control group and its order.

    Raises:
        ValueError: ``max_suggestions`` out of range or an unknown queue pressure.
    """
    if not 1 <= max_suggestions <= MAX_SUGGESTIONS:
        raise ValueError(f"max_suggestions must be 1..{MAX_SUGGESTIONS}, got {max_suggestions}")
    if context.queue_pressure not in PRESSURES:
        raise ValueError(
            f"queue_pressure must be one of {PRESSURES}, got {context.queue_pressure!r}"
        )
    band = risk_band(customer.probabilities.get("churn"), config)
    pool = candidates(customer, config, product_by_target)
    if band == "high":  # churn gate: keeping the customer comes before selling
        pool = [c for c in pool if c.kind == "retention"]
    pool = [c for c in pool if not paused(declines_by_action.get(c.action, ()), now, config)]
    pool = [replace(c, priority=c.expected_value * _weight(c, context, config)) for c in pool]
    pool = [c for c in pool if c.priority > 0]  # a context weight of 0 rules an action out here
    control = is_control(decision_id, config.control_share)
    if control:
        order = sorted(pool, key=lambda c: _uniform(f"order:{decision_id}", c.action))
    else:
        order = sorted(pool, key=lambda c: (-c.priority, c.action))
    if context.queue_pressure == "high":
        bar = config.high_pressure_min_expected_value
        chosen = [c for c in order if c.expected_value >= bar][:1]
    else:
        chosen = order[:max_suggestions]
    return Ranking(tuple(chosen), control, band, tuple(sorted(c.action for c in pool)))


def _candidate(
    kind: Kind, action: str, target: str, product: str | None, p: float, value: float
) -> Candidate:
    ev = p * value
    return Candidate(kind, action, target, product, p, ev, ev)


def _weight(c: Candidate, context: Context, config: PolicyConfig) -> float:
    return context_weight(c.kind, context, config) * config.levers.get(c.action, 1.0)


def _uniform(salt: str, key: str) -> float:
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _probability(value: Any) -> float | None:
    v = _number(value)
    return None if v is None else min(max(v, 0.0), 1.0)
