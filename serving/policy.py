"""The next-best-action policy: which actions an agent sees for a customer, and in what order.

Pure and deterministic, so the service and batch scoring share it (one inference path); the
stores, the decision log and HTTP live around it. Every action the models know is
considered (retention, upgrade, cross-sell of each known product) and either shown or
listed as not shown with the first rule that held it back, in this order (DESIGN.md, "Next
best action"; the business view with numbers is ``docs/policy.md``):

1. ``no_model``: no champion model scores the action (say, a product of the holdings whose
   model the promotion gate left unpromoted);
2. ``already_held``: the customer holds the product;
3. ``not_eligible``: a rule says no (retention only at medium or high churn risk, an upgrade
   only below the top tier, the product rules, a lever or context weight of 0, no value);
4. ``below_min_probability``: a sales offer less likely than the queue pressure's minimum
   (not the upgrade of a customer who already qualifies by value: it needs only the offer);
5. ``churn_gate``: at high risk, sales offers (upgrade, cross-sell) yield to retention;
6. ``paused_by_declines``: ``decline_limit`` customer declines within the contact-policy
   window (``decline_window``) pause an action until the window has moved past enough of
   them. Agent discretion is data, not refusal: skips never count (Decision 8);
7. priority = calibrated probability x action value (``action_value``) x context weight
   (channel and call reason, by action kind) x business lever (x ``qualified_weight`` for
   the upgrade of a customer who already qualifies by value); a control decision
   (``control_share`` of decision ids) gets the eligible actions in a random order seeded
   by its id instead, so the lift of the ranking can be measured;
8. ``queue_pressure``: each pressure level (``PressureEffect``) sets the list's length, the
   minimum probability and the expected value a suggestion needs; under high pressure an
   agent gets at most one suggestion, and only one worth the time;
9. ``cut_by_limit``: ranked below the list's length.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from features.values import as_number

if TYPE_CHECKING:
    from serving.reasons import Reason

Kind = Literal["retention", "upgrade", "cross_sell"]
KINDS: tuple[str, ...] = ("retention", "upgrade", "cross_sell")
Band = Literal["low", "medium", "high"]
Pressure = Literal["low", "normal", "high"]
PRESSURES = ("low", "normal", "high")
NotShownReason = Literal[
    "no_model",
    "already_held",
    "not_eligible",
    "below_min_probability",
    "churn_gate",
    "paused_by_declines",
    "queue_pressure",
    "cut_by_limit",
    "closed",
]
NOT_SHOWN_REASONS: tuple[str, ...] = NotShownReason.__args__  # type: ignore[attr-defined]
MAX_SUGGESTIONS = 10
Weight = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=1, le=MAX_SUGGESTIONS)]


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
    """Value of moving a customer up one service tier: the extra yearly value it brings.

    ``value = min(cap, max(floor, gap_to_next_tier, qualified_share x customer value))``

    The gap is what a typical (median) customer of the next tier brings beyond this customer
    (``batch.inputs.tier_context``; without a tiers table, the distance to the next value
    tier's threshold). A customer at or near it already brings next-tier value on a lower
    tier's service: moving them up secures ``qualified_share`` of that value (as retention
    keeps ``retention_save_rate`` of it), whichever is more. ``cap`` keeps a customer far
    below the next tier from outranking everything on a small chance; ``floor`` gives every
    upgrade some worth (the tier's fees and loyalty). A customer who already qualifies by
    value (gap 0) needs only the offer: their upgrade is offered however unlikely the model
    finds a move on its own (no ``min_probability``), and ``qualified_weight`` multiplies its
    priority, so they are the strongest upgrade cases, not excluded ones.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    floor: float = Field(50.0, ge=0, description="least value of an upgrade, per year")
    cap: float = Field(1500.0, gt=0, description="most value of an upgrade, per year")
    qualified_share: float = Field(
        0.3,
        ge=0,
        le=1,
        description="share of the customer's own yearly value moving up secures",
    )
    qualified_weight: float = Field(
        2.0,
        ge=0,
        description="priority weight of an upgrade for a customer who already qualifies by "
        "value (gap 0)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> UpgradeValue:
        if self.floor > self.cap:
            raise ValueError(f"floor ({self.floor}) must not exceed cap ({self.cap})")
        return self


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


class PressureEffect(BaseModel):
    """What one queue pressure level does to the list an agent sees."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suggestions: Count = Field(description="list length when the request asks for none")
    max_suggestions: Count | None = Field(
        None, description="most suggestions whatever the request asks (null: as asked)"
    )
    min_probability_multiple: float = Field(
        1.0, gt=0, description="multiple of min_probability a sales offer needs at this pressure"
    )
    min_expected_value: float = Field(
        0.0, ge=0, description="expected value every suggestion needs at this pressure"
    )

    def length(self, requested: int | None) -> int:
        """The list's length for a request (``requested`` None: this level's default)."""
        n = self.suggestions if requested is None else requested
        return n if self.max_suggestions is None else min(n, self.max_suggestions)


def _default_pressure() -> dict[str, PressureEffect]:
    return {
        # The agent has time: a longer list, offers down to half the minimum probability.
        "low": PressureEffect(suggestions=5, min_probability_multiple=0.5),
        "normal": PressureEffect(suggestions=3),
        # A busy agent is trusted to skip: one suggestion, and only one worth the time.
        "high": PressureEffect(suggestions=1, max_suggestions=1, min_expected_value=25.0),
    }


def _default_channels() -> dict[str, dict[str, float]]:
    return {
        # A call is where a problem is heard and fixed; a sale often needs papers signed.
        "phone": {"retention": 1.2, "upgrade": 1.0, "cross_sell": 0.9},
        # Face to face: papers are signed on the spot, tier benefits can be shown.
        "branch": {"retention": 1.0, "upgrade": 1.2, "cross_sell": 1.2},
        # Short and written: a link to an online application works, a save conversation less.
        "chat": {"retention": 0.9, "upgrade": 0.8, "cross_sell": 1.1},
        "email": {"retention": 0.8, "upgrade": 0.9, "cross_sell": 1.0},
        # The nightly file: campaigns choose their own channel, so no channel preference.
        "batch": {"retention": 1.0, "upgrade": 1.0, "cross_sell": 1.0},
    }


class PolicyConfig(BaseModel):
    """Every business setting of the policy; validated once at service start-up.

    Money amounts are in the currency of the transactions, per year, like customer value.
    An action's value (``action_value``): retention ``customer value x retention_save_rate``;
    upgrade ``UpgradeValue``; cross-sell ``product_margin[product]`` (else
    ``default_margin``). Its expected value is probability x value.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    risk_bands: RiskBands = Field(default_factory=RiskBands, description="churn risk bands")
    retention_save_rate: float = Field(
        0.3,
        gt=0,
        le=1,
        description="share of an at-risk customer's yearly value a successful retention action "
        "keeps: retention value = customer value x this",
    )
    upgrade_value: UpgradeValue = Field(
        default_factory=UpgradeValue,
        description="upgrade value = min(cap, max(floor, gap to the next tier's median "
        "customer, qualified_share x customer value)); qualified_weight on the priority of "
        "customers who already qualify by value",
    )
    product_margin: dict[str, Weight] = Field(
        default_factory=dict,
        description="cross-sell value: the yearly margin of a sale, by product",
    )
    default_margin: float = Field(
        100.0, ge=0, description="cross-sell value of products not in product_margin"
    )
    min_probability: float = Field(
        0.02,
        ge=0,
        lt=1,
        description="a sales offer less likely than this is not worth the time (times the "
        "queue pressure's min_probability_multiple)",
    )
    product_rules: dict[str, ProductRule] = Field(
        default_factory=dict, description="eligibility rules by product"
    )
    decline_limit: int = Field(
        2, ge=1, description="customer declines within the window that pause an action"
    )
    decline_window_days: int = Field(
        30,
        ge=1,
        description="days a decline counts for, back from the decision time (the request for "
        "the service, the run for the nightly batch)",
    )
    queue_pressure: dict[Pressure, PressureEffect] = Field(
        default_factory=_default_pressure,
        description="effect of each queue pressure level: list length, minimum probability "
        "and expected value",
    )
    channel_weights: dict[str, Weight | dict[Kind, Weight]] = Field(
        default_factory=_default_channels,
        description="priority weight by channel, then action kind (a number: every kind; "
        "unlisted: 1)",
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
    contact_cost: float = Field(
        25.0,
        ge=0,
        description="cost of making one offer (agent time, incentive): training's profit "
        "curve of every model subtracts it per customer reached",
    )
    winback_days: int = Field(
        365,
        ge=0,
        le=3650,
        description="customers who closed within this many days keep their card in the online "
        "store, so a win-back call finds them (0: none)",
    )
    winback_rate: float | None = Field(
        None,
        gt=0,
        le=1,
        description="offer a closed customer a win_back action (kind retention) with this "
        "chance of success, worth their last value x retention_save_rate; none: no offer",
    )

    @model_validator(mode="before")
    @classmethod
    def _pressure_levels(cls, data: Any) -> Any:
        """Levels of ``queue_pressure`` given in part keep the defaults of the rest.

        ``high_pressure_min_expected_value`` (earlier policy files) sets the high level's bar.
        """
        if not isinstance(data, dict):
            return data
        data = dict(data)
        given = {k: _as_dict(v) for k, v in (data.get("queue_pressure") or {}).items()}
        if "high_pressure_min_expected_value" in data:
            bar = data.pop("high_pressure_min_expected_value")
            given["high"] = {**given.get("high", {}), "min_expected_value": bar}
        levels = {k: v.model_dump() for k, v in _default_pressure().items()}
        for level, effect in given.items():
            levels[level] = {**levels.get(level, {}), **effect}
        data["queue_pressure"] = levels
        return data

    @model_validator(mode="after")
    def _every_pressure(self) -> PolicyConfig:
        missing = [p for p in PRESSURES if p not in self.queue_pressure]
        if missing:
            raise ValueError(f"queue_pressure needs every level; missing {missing}")
        return self


class PolicyError(ValueError):
    """A policy file that is missing or not a valid policy; the message says which and why."""


def read_policy(path: Path | None) -> PolicyConfig:
    """The policy settings of a YAML file (the defaults without one).

    Raises:
        PolicyError: the file is missing, not YAML, or not a valid policy.
    """
    if path is None:
        return PolicyConfig()
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return PolicyConfig.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as err:
        raise PolicyError(f"policy file {path}: {err}") from None


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
    closed_date: date | None = None  # set: the relationship has ended (a win-back call)


@dataclass(frozen=True)
class Context:
    """The contact the decision is for."""

    channel: str
    call_reason: str | None = None
    queue_pressure: Pressure = "normal"
    agent_id: str | None = None


@dataclass(frozen=True)
class Suggestion:
    """An action worth showing: ``action`` is its key (``retention``, ``upgrade`` or the product).

    The one type of a suggestion from eligibility to the response: ``candidates`` gives its
    value and expected value (priority = expected value), ``rank_actions`` its weighed
    priority and rank, ``serving.suggest`` its id, reasons and talking points.
    """

    kind: Kind
    action: str
    target: str
    product: str | None
    probability: float
    value: float
    expected_value: float
    priority: float
    rank: int = 0
    suggestion_id: str = ""
    reasons: tuple[Reason, ...] = ()
    talking_points: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotShown:
    """An action considered and not shown, with the first rule that held it back.

    ``detail`` says it in words with the numbers; ``until`` is when a pause by declines ends.
    """

    kind: Kind
    action: str
    product: str | None
    reason: NotShownReason
    detail: str
    probability: float | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Ranking:
    """A decision: suggestions in order, what was not shown and why, and its inputs."""

    suggestions: tuple[Suggestion, ...]
    control: bool
    risk_band: Band
    eligible: tuple[str, ...]  # action keys after eligibility, churn gate and contact policy
    not_shown: tuple[NotShown, ...] = ()


def risk_band(p: float | None, config: PolicyConfig) -> Band:
    """The churn risk band of a probability (None or NaN: low, as without a churn model)."""
    p = _probability(p)
    if p is None or p < config.risk_bands.medium:
        return "low"
    return "high" if p >= config.risk_bands.high else "medium"


def upgrade_value(customer: Customer, config: PolicyConfig) -> float:
    """Yearly value of moving the customer up a tier (see ``UpgradeValue``)."""
    rule = config.upgrade_value
    gap = max(as_number(customer.gap_to_next_tier) or 0.0, 0.0)
    secured = rule.qualified_share * max(customer.value, 0.0)
    return min(rule.cap, max(rule.floor, gap, secured))


def qualifies_by_value(customer: Customer) -> bool:
    """Whether the customer's value already meets the next tier's (a known gap of 0)."""
    gap = as_number(customer.gap_to_next_tier)
    return customer.next_tier is not None and gap is not None and gap <= 0


def action_value(kind: Kind, action: str, customer: Customer, config: PolicyConfig) -> float:
    """Yearly value of an action's success (see ``PolicyConfig``)."""
    if kind == "retention":
        return customer.value * config.retention_save_rate
    if kind == "upgrade":
        return upgrade_value(customer, config)
    return config.product_margin.get(action, config.default_margin)


def product_rule_failure(product: str, customer: Customer, config: PolicyConfig) -> str | None:
    """The product rule that withholds ``product`` from the customer, in words; None if none."""
    rule = config.product_rules.get(product)
    if rule is None:
        return None
    if rule.excluded:
        return f"product rule {product}.excluded: never offered"
    missing = sorted(set(rule.requires_products) - customer.held)
    if missing:
        return f"product rule {product}.requires_products: does not hold {', '.join(missing)}"
    if rule.min_tier_rank is not None and (
        customer.tier_rank is None or customer.tier_rank < rule.min_tier_rank
    ):
        return (
            f"product rule {product}.min_tier_rank {rule.min_tier_rank}: "
            f"tier rank {customer.tier_rank}"
        )
    if rule.min_age is None and rule.max_age is None:
        return None
    age = as_number(customer.profile.get(rule.age_field))
    if age is None:
        return f"product rule {product}: {rule.age_field} unknown"
    if rule.min_age is not None and age < rule.min_age:
        return f"product rule {product}.min_age {rule.min_age:g}: {rule.age_field} {age:g}"
    if rule.max_age is not None and age > rule.max_age:
        return f"product rule {product}.max_age {rule.max_age:g}: {rule.age_field} {age:g}"
    return None


def product_eligible(product: str, customer: Customer, config: PolicyConfig) -> bool:
    """Whether a product may be offered: not held, and its rule (if any) allows it."""
    return product not in customer.held and product_rule_failure(product, customer, config) is None


def candidates(
    customer: Customer, config: PolicyConfig, product_by_target: Mapping[str, str]
) -> list[Suggestion]:
    """The eligible actions for a customer at normal pressure, before the churn gate and contacts.

    Args:
        product_by_target: cross-sell target key -> product (a predictor's ``meta["product"]``).
    """
    return _screen(customer, config, product_by_target, (), config.min_probability)[0]


def decline_window(now: datetime, config: PolicyConfig) -> tuple[datetime, datetime]:
    """The contact policy's window at the decision time ``now``: declines in [start, now] count.

    The one window of the service (``now``: the request) and the nightly batch (``now``: the
    run, ``batch.run.decision_time``), so both pause the same offers.
    """
    return now - timedelta(days=config.decline_window_days), now


def paused_until(
    declines: Iterable[datetime], now: datetime, config: PolicyConfig
) -> datetime | None:
    """Until when an action is paused by the contact policy at ``now``; None if it is not.

    Paused while ``decline_limit`` declines fall in ``decline_window(now)``: until the
    ``decline_limit``-th most recent of them is ``decline_window_days`` old (no new decline
    assumed).

    Args:
        declines: when the customer declined this action. Pass only ``declined`` feedback:
            ``skipped`` (the agent's choice), ``not_shown`` and ``accepted`` never count.
            Declines after ``now`` are ignored so replays see what was known then. Use one
            time zone convention (UTC) for both arguments.
    """
    start, end = decline_window(now, config)
    recent = sorted((d for d in declines if start <= d <= end), reverse=True)
    if len(recent) < config.decline_limit:
        return None
    return recent[config.decline_limit - 1] + timedelta(days=config.decline_window_days)


def paused(declines: Sequence[datetime], now: datetime, config: PolicyConfig) -> bool:
    """Whether an action is paused by the contact policy at ``now`` (see ``paused_until``)."""
    return paused_until(declines, now, config) is not None


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
    channel = config.channel_weights.get(context.channel, 1.0)
    if isinstance(channel, dict):
        channel = channel.get(kind, 1.0)
    reason = config.call_reason_weights.get(context.call_reason or "", {})
    return channel * reason.get(kind, 1.0)


def is_control(decision_id: str, share: float) -> bool:
    """Whether a decision is in the control group: a uniform draw from sha256 of its id."""
    return _uniform("control", decision_id) < share


def _closed(
    customer: Customer,
    config: PolicyConfig,
    pool: list[Suggestion],
    out: list[NotShown],
    band: Band,
    decision_id: str,
) -> Ranking:
    """A closed customer: no sales offer; a win-back action where the policy sets a rate."""
    detail = f"the customer closed on {customer.closed_date:%Y-%m-%d}"
    # What holds whatever the customer's state (no model, held) stays; the rest is closed.
    out = [
        n
        if n.reason in ("no_model", "already_held")
        else replace(n, reason="closed", detail=detail)
        for n in out
    ]
    out += [_not_shown(c, "closed", detail) for c in pool]
    chosen: tuple[Suggestion, ...] = ()
    if config.winback_rate is not None:
        worth = max(customer.value, 0.0) * config.retention_save_rate
        value = max(worth, config.upgrade_value.floor)  # the floor of any offer's value
        win_back = Suggestion(
            "retention",
            "win_back",
            "churn",
            None,
            config.winback_rate,
            value,
            value * config.winback_rate,
            value * config.winback_rate,
            rank=1,
        )
        chosen = (win_back,)
    control = is_control(decision_id, config.control_share)
    return Ranking(chosen, control, band, tuple(c.action for c in chosen), tuple(out))


def rank_actions(
    customer: Customer,
    context: Context,
    config: PolicyConfig,
    declines_by_action: Mapping[str, Sequence[datetime]],
    now: datetime,
    max_suggestions: int | None,
    decision_id: str,
    product_by_target: Mapping[str, str],
    known_products: Iterable[str] = (),
) -> Ranking:
    """The suggestions for one contact, and every action not shown with its reason.

    Args:
        declines_by_action: action key -> times of customer declines (see ``paused_until``).
        now: the decision time (UTC): the contact policy's window ends here.
        max_suggestions: 1..10, or None for the queue pressure's list length; a pressure
            level with ``max_suggestions`` (high: one) allows no more than that.
        decision_id: the logged decision's id; decides the control group and its order.
        known_products: products the models know of (the holdings' products of their feature
            specs); those without a cross-sell model are listed as ``no_model``.

    Raises:
        ValueError: ``max_suggestions`` out of range or an unknown queue pressure.
    """
    if max_suggestions is not None and not 1 <= max_suggestions <= MAX_SUGGESTIONS:
        raise ValueError(f"max_suggestions must be 1..{MAX_SUGGESTIONS}, got {max_suggestions}")
    if context.queue_pressure not in PRESSURES:
        raise ValueError(
            f"queue_pressure must be one of {PRESSURES}, got {context.queue_pressure!r}"
        )
    pressure = context.queue_pressure
    effect = config.queue_pressure[pressure]
    min_p = config.min_probability * effect.min_probability_multiple
    band = risk_band(customer.probabilities.get("churn"), config)
    pool, out = _screen(customer, config, product_by_target, known_products, min_p, pressure)
    if customer.closed_date is not None:
        return _closed(customer, config, pool, out, band, decision_id)
    kept: list[Suggestion] = []
    for c in pool:
        if band == "high" and c.kind != "retention":  # keeping the customer comes first
            out.append(_not_shown(c, "churn_gate", "high churn risk: sales offers yield"))
            continue
        until = paused_until(declines_by_action.get(c.action, ()), now, config)
        if until is not None:
            detail = (
                f"declined {config.decline_limit} times in {config.decline_window_days} days; "
                f"paused until {until:%Y-%m-%d %H:%M} UTC"
            )
            out.append(_not_shown(c, "paused_by_declines", detail, until))
            continue
        weight = _weight(c, context, config)
        if c.kind == "upgrade" and qualifies_by_value(customer):
            weight *= config.upgrade_value.qualified_weight
        if weight <= 0:  # a context weight of 0 rules an action out
            out.append(_not_shown(c, "not_eligible", _zero_weight(c, context, config)))
            continue
        kept.append(replace(c, priority=c.expected_value * weight))
    control = is_control(decision_id, config.control_share)
    if control:
        order = sorted(kept, key=lambda c: _uniform(f"order:{decision_id}", c.action))
    else:
        order = sorted(kept, key=lambda c: (-c.priority, c.action))
    bar = effect.min_expected_value
    worth = []
    for c in order:
        if c.expected_value < bar:
            detail = f"expected value {c.expected_value:,.2f} below {bar:,.2f} at {pressure} queue pressure"
            out.append(_not_shown(c, "queue_pressure", detail))
        else:
            worth.append(c)
    length = effect.length(max_suggestions)
    asked = effect.suggestions if max_suggestions is None else max_suggestions
    for i, c in enumerate(worth[length:], start=length + 1):
        if length < asked:
            detail = f"{pressure} queue pressure: {length} suggestion(s) at most"
            out.append(_not_shown(c, "queue_pressure", detail))
        else:
            out.append(_not_shown(c, "cut_by_limit", f"ranked {i}; the list holds {length}"))
    chosen = tuple(replace(c, rank=i) for i, c in enumerate(worth[:length], start=1))
    return Ranking(chosen, control, band, tuple(sorted(c.action for c in kept)), tuple(out))


def _screen(
    customer: Customer,
    config: PolicyConfig,
    product_by_target: Mapping[str, str],
    known_products: Iterable[str],
    min_p: float,
    pressure: str = "normal",
) -> tuple[list[Suggestion], list[NotShown]]:
    """Eligible actions and the not-shown ones (rules 1-4 of the module), in one pass."""
    p = customer.probabilities
    pool: list[Suggestion] = []
    out: list[NotShown] = []

    def consider(kind: Kind, action: str, target: str, product: str | None, q: float) -> None:
        lever = config.levers.get(action, 1.0)
        if lever <= 0:
            out.append(NotShown(kind, action, product, "not_eligible", f"lever {action} is 0", q))
            return
        value = action_value(kind, action, customer, config)
        if value <= 0 or q <= 0:
            detail = f"worth nothing: value {value:,.2f}, probability {q:.4f}"
            out.append(NotShown(kind, action, product, "not_eligible", detail, q))
            return
        ev = q * value
        pool.append(Suggestion(kind, action, target, product, q, value, ev, ev))

    def too_unlikely(kind: Kind, action: str, product: str | None, q: float) -> bool:
        if q >= min_p:
            return False
        detail = f"probability {q:.4f} below the minimum {min_p:.4f} at {pressure} queue pressure"
        out.append(NotShown(kind, action, product, "below_min_probability", detail, q))
        return True

    churn = _probability(p.get("churn"))
    if churn is None:
        out.append(NotShown("retention", "retention", None, "no_model", "no churn model"))
    elif risk_band(churn, config) == "low":
        detail = (
            f"retention needs medium or high churn risk: probability {churn:.4f} "
            f"below {config.risk_bands.medium:g}"
        )
        out.append(NotShown("retention", "retention", None, "not_eligible", detail, churn))
    else:
        consider("retention", "retention", "churn", None, churn)
    up = _probability(p.get("upgrade"))
    if up is None:
        out.append(NotShown("upgrade", "upgrade", None, "no_model", "no upgrade model"))
    elif customer.next_tier is None:
        out.append(
            NotShown("upgrade", "upgrade", None, "not_eligible", "top tier: no tier above", up)
        )
    elif qualifies_by_value(customer) or not too_unlikely("upgrade", "upgrade", None, up):
        consider("upgrade", "upgrade", "upgrade", None, up)  # qualifying: worth asking anyway
    modelled = {product: target for target, product in product_by_target.items()}
    for product in sorted(set(modelled) | set(known_products)):
        if product in customer.held:
            out.append(NotShown("cross_sell", product, product, "already_held", "already held"))
            continue
        target = modelled.get(product)
        q = None if target is None else _probability(p.get(target))
        if q is None:
            detail = f"no cross-sell model for {product}" if target is None else "no probability"
            out.append(NotShown("cross_sell", product, product, "no_model", detail))
            continue
        failure = product_rule_failure(product, customer, config)
        if failure is not None:
            out.append(NotShown("cross_sell", product, product, "not_eligible", failure, q))
        elif not too_unlikely("cross_sell", product, product, q):
            consider("cross_sell", product, target, product, q)
    return pool, out


def _not_shown(
    c: Suggestion, reason: NotShownReason, detail: str, until: datetime | None = None
) -> NotShown:
    return NotShown(c.kind, c.action, c.product, reason, detail, c.probability, until)


def _weight(c: Suggestion, context: Context, config: PolicyConfig) -> float:
    return context_weight(c.kind, context, config) * config.levers.get(c.action, 1.0)


def _zero_weight(c: Suggestion, context: Context, config: PolicyConfig) -> str:
    reason = config.call_reason_weights.get(context.call_reason or "", {})
    if reason.get(c.kind, 1.0) <= 0:
        return f"call_reason_weights {context.call_reason}.{c.kind} is 0"
    if context_weight(c.kind, context, config) <= 0:
        return f"channel_weights {context.channel}.{c.kind} is 0"
    return "upgrade_value.qualified_weight is 0"


def _as_dict(value: Any) -> dict:
    return value.model_dump() if isinstance(value, BaseModel) else dict(value)


def _uniform(salt: str, key: str) -> float:
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _probability(value: Any) -> float | None:
    v = as_number(value)
    return None if v is None else min(max(v, 0.0), 1.0)
