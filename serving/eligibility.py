"""Which actions may be offered a customer, and what each is worth: rules 1-4 of the policy.

Every action the models know is considered (retention, upgrade, cross-sell of each known
product) and either kept, with its value and expected value, or listed as not shown with
the first rule that held it back: ``no_model``, ``already_held``, ``not_eligible`` and
``below_min_probability`` (``serving.policy`` has every rule in order; the business view
with numbers is ``docs/policy.md``). Pure and deterministic, like the rest of the policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from features.values import as_number
from serving.policy_config import PolicyConfig
from serving.vocabulary import Band, Kind, NotShownReason

if TYPE_CHECKING:
    from serving.reasons import Reason


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
    # action key -> predicted uplift of offering it (its uplift champion's); an action with
    # one is worth uplift x value - contact cost, and harmful below 0 (``_Screening.consider``)
    uplift: Mapping[str, float] = field(default_factory=dict)


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
    uplift: float | None = None  # the predicted change an offer makes, where a model says
    ratio: float = 1.0  # the learned acceptance ratio in the priority (``serving.adaptive``)
    # the chance the policy shows this action at this rank, over its modes (``rank_actions``)
    propensity: float | None = None


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
    uplift: float | None = None


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
    return screen_actions(customer, config, product_by_target, (), config.min_probability)[0]


def screen_actions(
    customer: Customer,
    config: PolicyConfig,
    product_by_target: Mapping[str, str],
    known_products: Iterable[str],
    min_p: float,
    pressure: str = "normal",
) -> tuple[list[Suggestion], list[NotShown]]:
    """Eligible actions and the not-shown ones (rules 1-4), in one pass.

    Retention first, then the upgrade, then each product by name: the order of both lists.

    Args:
        product_by_target: cross-sell target key -> product (a predictor's ``meta["product"]``).
        known_products: products the models know of; those without a model are ``no_model``.
        min_p: the least probability of a sales offer at this queue pressure.
        pressure: the queue pressure, for the words of ``below_min_probability``.
    """
    screening = _Screening(customer, config, min_p, pressure)
    screening.retention()
    screening.upgrade()
    modelled = {product: target for target, product in product_by_target.items()}
    for product in sorted(set(modelled) | set(known_products)):
        screening.cross_sell(product, modelled.get(product))
    return screening.pool, screening.out


@dataclass
class _Screening:
    """One customer's screening in progress: the kept actions and the not-shown ones."""

    customer: Customer
    config: PolicyConfig
    min_p: float
    pressure: str
    pool: list[Suggestion] = field(default_factory=list)
    out: list[NotShown] = field(default_factory=list)

    def retention(self) -> None:
        churn = _probability(self.customer.probabilities.get("churn"))
        if churn is None:
            self.out.append(NotShown("retention", "retention", None, "no_model", "no churn model"))
        elif risk_band(churn, self.config) == "low":
            detail = (
                f"retention needs medium or high churn risk: probability {churn:.4f} "
                f"below {self.config.risk_bands.medium:g}"
            )
            self.out.append(NotShown("retention", "retention", None, "not_eligible", detail, churn))
        else:
            self.consider("retention", "retention", "churn", None, churn)

    def upgrade(self) -> None:
        up = _probability(self.customer.probabilities.get("upgrade"))
        if up is None:
            self.out.append(NotShown("upgrade", "upgrade", None, "no_model", "no upgrade model"))
        elif self.customer.next_tier is None:
            detail = "top tier: no tier above"
            self.out.append(NotShown("upgrade", "upgrade", None, "not_eligible", detail, up))
        elif qualifies_by_value(self.customer) or not self.too_unlikely(
            "upgrade", "upgrade", None, up
        ):
            self.consider("upgrade", "upgrade", "upgrade", None, up)  # qualifying: ask anyway

    def cross_sell(self, product: str, target: str | None) -> None:
        if product in self.customer.held:
            self.out.append(
                NotShown("cross_sell", product, product, "already_held", "already held")
            )
            return
        q = None if target is None else _probability(self.customer.probabilities.get(target))
        if target is None or q is None:
            detail = f"no cross-sell model for {product}" if target is None else "no probability"
            self.out.append(NotShown("cross_sell", product, product, "no_model", detail))
            return
        failure = product_rule_failure(product, self.customer, self.config)
        if failure is not None:
            self.out.append(NotShown("cross_sell", product, product, "not_eligible", failure, q))
        elif not self.too_unlikely("cross_sell", product, product, q):
            self.consider("cross_sell", product, target, product, q)

    def consider(self, kind: Kind, action: str, target: str, product: str | None, q: float) -> None:
        """Keep an action worth something, or list it as not eligible (lever 0, no value)."""
        lever = self.config.levers.get(action, 1.0)
        if lever <= 0:
            detail = f"lever {action} is 0"
            self.out.append(NotShown(kind, action, product, "not_eligible", detail, q))
            return
        value = action_value(kind, action, self.customer, self.config)
        uplift = self.customer.uplift.get(action)
        if uplift is not None:
            self.consider_uplift(kind, action, target, product, q, value, uplift)
            return
        if value <= 0 or q <= 0:
            detail = f"worth nothing: value {value:,.2f}, probability {q:.4f}"
            self.out.append(NotShown(kind, action, product, "not_eligible", detail, q))
            return
        ev = q * value
        self.pool.append(Suggestion(kind, action, target, product, q, value, ev, ev))

    def consider_uplift(
        self,
        kind: Kind,
        action: str,
        target: str,
        product: str | None,
        q: float,
        value: float,
        uplift: float,
    ) -> None:
        """An action with a predicted uplift: worth what the offer adds, uplift x value less
        the contact cost; not offered where it is predicted to harm (a "sleeping dog")."""
        if uplift < 0:
            detail = f"an offer is predicted to lower the chance of its outcome by {-uplift:.1%}"
            self.out.append(
                NotShown(kind, action, product, "predicted_harm", detail, q, None, uplift)
            )
            return
        worth = uplift * value - self.config.contact_cost
        if worth <= 0:
            detail = (
                f"the offer adds {uplift:.1%} x {value:,.2f}, not more than the contact cost "
                f"{self.config.contact_cost:,.2f}"
            )
            self.out.append(
                NotShown(kind, action, product, "not_eligible", detail, q, None, uplift)
            )
            return
        self.pool.append(
            Suggestion(kind, action, target, product, q, value, worth, worth, uplift=uplift)
        )

    def too_unlikely(self, kind: Kind, action: str, product: str | None, q: float) -> bool:
        """Whether a sales offer is below the minimum probability (then listed as such); an
        action with a predicted uplift is judged by what the offer adds instead."""
        if q >= self.min_p or action in self.customer.uplift:
            return False
        detail = (
            f"probability {q:.4f} below the minimum {self.min_p:.4f} "
            f"at {self.pressure} queue pressure"
        )
        self.out.append(NotShown(kind, action, product, "below_min_probability", detail, q))
        return True


def _probability(value: Any) -> float | None:
    v = as_number(value)
    return None if v is None else min(max(v, 0.0), 1.0)
