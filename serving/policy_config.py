"""The policy's business settings (``PolicyConfig``) and reading them from a YAML file.

Every number and switch a business owner sets: risk bands, what each action is worth, the
product rules, the contact policy, queue pressure, channel and call-reason weights, levers,
the control share and win-back. Validated once (``read_policy``) at service start-up and by
the nightly batch; ``serving.policy`` applies them. The business view with numbers is
``docs/policy.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from serving.capacity import CapacityConfig
from serving.vocabulary import KINDS, PRESSURES, HoldoutPeriod, Kind, Pressure

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


class AdaptiveConfig(BaseModel):
    """What the policy learns from customer answers, and how much it explores
    (``serving.adaptive``; docs/policy.md, "Learning from answers")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prior_strength: float = Field(
        50.0,
        gt=0,
        description="pseudo-answers the offline model's probability counts for: the strength "
        "of the prior that a cell's acceptance matches the model (ratio 1)",
    )
    min_answers: int = Field(
        100,
        ge=0,
        description="customer answers (accepted + declined) an (action, tier) cell needs "
        "before its learned ratio multiplies the priority; below it the ratio is 1",
    )
    exploration_share: float = Field(
        0.05,
        ge=0,
        le=0.5,
        description="share of decisions (apart from the control group) ranked by a Thompson "
        "draw of each action's learned ratio, so uncertain and new actions get shown",
    )
    new_actions: tuple[str, ...] = Field(
        (),
        description="products offered without an offline model, by their learned acceptance "
        "alone (Beta(1, 1) prior per tier)",
    )


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
    holdout_shares: dict[str, float] = Field(
        default_factory=lambda: dict.fromkeys(KINDS, 0.05),
        description="share of customers in each action's no-offer holdout, by action kind "
        "(retention, upgrade, cross_sell) or action key (a product, win_back: overrides its "
        "kind); unlisted kinds: 0. The holdout is what an offer's effect is measured against",
    )
    holdout_period: HoldoutPeriod = Field(
        "month", description="how long a customer stays in (or out of) an action's holdout"
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
    adaptive: AdaptiveConfig = Field(
        default_factory=AdaptiveConfig,
        description="learning from customer answers: the prior's strength, the maturity "
        "threshold, the exploration share and new actions",
    )
    winback_rate: float | None = Field(
        None,
        gt=0,
        le=1,
        description="offer a closed customer a win_back action (kind retention) with this "
        "chance of success, worth their last value x retention_save_rate; none: no offer",
    )
    capacity: CapacityConfig = Field(
        default_factory=CapacityConfig,
        description="caps on offers: per action (stock or budget per day or week), per "
        "channel (offers per day), and agent minutes per call; default: none",
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
    def _shares(self) -> PolicyConfig:
        wrong = {k: v for k, v in self.holdout_shares.items() if not 0 <= v <= 0.5}
        if wrong:
            raise ValueError(f"holdout_shares must be 0..0.5; got {wrong}")
        return self

    def holdout_share(self, kind: Kind, action: str) -> float:
        """The share of customers held out of ``action``: its own setting, else its kind's."""
        return self.holdout_shares.get(action, self.holdout_shares.get(kind, 0.0))

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


def _as_dict(value: Any) -> dict:
    return value.model_dump() if isinstance(value, BaseModel) else dict(value)
