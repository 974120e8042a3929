"""The next-best-action policy: which actions an agent sees for a customer, and in what order.

Pure and deterministic, so the service and batch scoring share it (one inference path); the
stores, the decision log and HTTP live around it. Every action the models know is
considered (retention, upgrade, cross-sell of each known product) and either shown or
listed as not shown with the first rule that held it back, in this order (docs/design.md, "The next
best action"; the business view with numbers is ``docs/policy.md``):

1. ``no_model``: no champion model scores the action (say, a product of the holdings whose
   model the promotion gate left unpromoted);
2. ``already_held``: the customer holds the product;
3. ``not_eligible``: a rule says no (retention only at medium or high churn risk, an upgrade
   only below the top tier, the product rules, a lever or context weight of 0, no value);
   ``predicted_harm``: the action's uplift model predicts that offering it lowers the
   chance of its outcome. An action with an uplift model is worth what the offer adds,
   uplift x value - ``contact_cost``, instead of probability x value (and rule 4 does not
   apply to it); the others keep propensity (docs/policy.md, "Uplift");
4. ``below_min_probability``: a sales offer less likely than the queue pressure's minimum
   (not the upgrade of a customer who already qualifies by value: it needs only the offer);
5. ``churn_gate``: at high risk, sales offers (upgrade, cross-sell) yield to retention;
6. ``paused_by_declines``: ``decline_limit`` customer declines within the contact-policy
   window (``decline_window``) pause an action until the window has moved past enough of
   them. Agent discretion is data, not refusal: skips never count (docs/design.md, decision 8);
7. priority = calibrated probability x action value (``action_value``) x context weight
   (channel and call reason, by action kind) x business lever (x ``qualified_weight`` for
   the upgrade of a customer who already qualifies by value); a control decision
   (``control_share`` of decision ids) gets the eligible actions in a random order seeded
   by its id instead, so the lift of the ranking can be measured;
8. ``queue_pressure``: each pressure level (``PressureEffect``) sets the list's length, the
   minimum probability and the expected value a suggestion needs; under high pressure an
   agent gets at most one suggestion, and only one worth the time;
9. ``cut_by_limit``: ranked below the list's length; ``capacity``: the list stops at the
   first suggestion whose agent minutes exceed what is left of the call's
   (``capacity.minutes``, ``capacity.call_minutes``). The service's running caps on offers
   (``capacity.actions``, ``capacity.channels``) are taken as it logs the decision, where an
   action whose cap is used up comes off the list with this reason (``serving.decisions``);
10. ``holdout``: a listed action is taken off the list when the customer is in that action's
    no-offer holdout (``holdout_shares``, by customer and ``holdout_period``), and the rest
    move up. The decision log keeps it with the probability it had, so outcomes of offered
    and held-out customers compare like with like; the agent's view never shows it.

Learning from answers (``serving.adaptive``): in rule 7 the priority is multiplied by the
(action, tier) cell's learned acceptance ratio; an explored decision
(``adaptive.exploration_share`` of decision ids, apart from the control group) multiplies
by a Thompson draw of it instead. Either only reorders what rules 1-6 let through. Every
shown suggestion carries its ``propensity`` (``_propensities``) and the ranking its
``mode``: ``greedy``, ``control`` or ``explore``.

Rules 1-4 and what each action is worth are ``serving.eligibility``; the settings and
reading them are ``serving.policy_config``; the shared words are ``serving.vocabulary``.
This module ranks (rules 5-9) and is the one import for callers: it re-exports the rest.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from serving.adaptive import EMPTY, AdaptiveState, seeded
from serving.capacity import CapacityConfig, time_cut
from serving.eligibility import (
    Customer,
    NotShown,
    Suggestion,
    action_value,
    candidates,
    product_eligible,
    product_rule_failure,
    qualifies_by_value,
    risk_band,
    screen_actions,
    upgrade_value,
)
from serving.policy_config import (
    MAX_SUGGESTIONS,
    Count,
    PolicyConfig,
    PolicyError,
    PressureEffect,
    ProductRule,
    RiskBands,
    UpgradeValue,
    Weight,
    read_policy,
)
from serving.vocabulary import (
    KINDS,
    NOT_SHOWN_REASONS,
    PRESSURES,
    Band,
    Kind,
    NotShownReason,
    Pressure,
)

__all__ = [
    "KINDS",
    "MAX_SUGGESTIONS",
    "MODES",
    "NOT_SHOWN_REASONS",
    "PRESSURES",
    "Band",
    "Context",
    "Count",
    "Customer",
    "Kind",
    "Mode",
    "NotShown",
    "NotShownReason",
    "PolicyConfig",
    "PolicyError",
    "Pressure",
    "PressureEffect",
    "ProductRule",
    "Ranking",
    "RiskBands",
    "Suggestion",
    "UpgradeValue",
    "Weight",
    "action_value",
    "candidates",
    "collect_declines",
    "context_weight",
    "decision_mode",
    "decline_window",
    "holdout_period",
    "in_holdout",
    "is_control",
    "paused",
    "paused_until",
    "product_eligible",
    "product_rule_failure",
    "qualifies_by_value",
    "rank_actions",
    "read_policy",
    "risk_band",
    "upgrade_value",
]


Mode = Literal["greedy", "control", "explore"]
MODES: tuple[Mode, ...] = ("greedy", "control", "explore")
PROPENSITY_DRAWS = 64  # Thompson draws that estimate an explored order's propensities
NEW_TARGET = "new_action_"  # the target key prefix of a new action (no offline model)


@dataclass(frozen=True)
class Context:
    """The contact the decision is for."""

    channel: str
    call_reason: str | None = None
    queue_pressure: Pressure = "normal"
    agent_id: str | None = None


@dataclass(frozen=True)
class Ranking:
    """A decision: suggestions in order, what was not shown and why, and its inputs."""

    suggestions: tuple[Suggestion, ...]
    control: bool
    risk_band: Band
    eligible: tuple[str, ...]  # action keys after eligibility, churn gate and contact policy
    not_shown: tuple[NotShown, ...] = ()
    mode: Mode = "greedy"
    # (action, rank) -> the chance the policy shows the action at that rank (``_propensities``)
    propensities: Mapping[tuple[str, int], float] = field(default_factory=dict)


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
    (docs/design.md, decision 8), ``not_shown`` never reached the customer and ``accepted`` is a yes.
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


def decision_mode(decision_id: str, config: PolicyConfig) -> Mode:
    """How a decision orders its actions, from the same draw as ``is_control``: below
    ``control_share`` control, in the next ``adaptive.exploration_share`` explore (so the
    two groups never overlap and each has exactly its share), else greedy."""
    u = _uniform("control", decision_id)
    if u < config.control_share:
        return "control"
    return "explore" if u < config.control_share + config.adaptive.exploration_share else "greedy"


def holdout_period(at: datetime, period: Literal["month", "quarter"] = "month") -> str:
    """The holdout period a decision at ``at`` falls in: ``2026-06`` or ``2026-Q2``."""
    if period == "quarter":
        return f"{at.year}-Q{(at.month - 1) // 3 + 1}"
    return f"{at.year}-{at.month:02d}"


def in_holdout(customer_id: str, action: str, period: str, share: float) -> bool:
    """Whether a customer is in an action's no-offer holdout for a period: a uniform draw from
    sha256 of the three, so membership is the same on every call, worker and batch run of the
    period, and independent between actions and periods."""
    return share > 0 and _uniform(f"holdout:{action}:{period}", customer_id) < share


def _hold_out(
    chosen: Sequence[Suggestion], customer: Customer, config: PolicyConfig, now: datetime
) -> tuple[tuple[Suggestion, ...], list[NotShown]]:
    """Rule 10: listed actions of the customer's holdouts come off the list; the rest move up."""
    period = holdout_period(now, config.holdout_period)
    kept: list[Suggestion] = []
    out: list[NotShown] = []
    for c in chosen:
        if in_holdout(
            customer.customer_id, c.action, period, config.holdout_share(c.kind, c.action)
        ):
            out.append(_not_shown(c, "holdout", f"no-offer holdout of {c.action}, {period}"))
        else:
            kept.append(replace(c, rank=len(kept) + 1))
    return tuple(kept), out


def _closed(
    customer: Customer,
    config: PolicyConfig,
    pool: list[Suggestion],
    out: list[NotShown],
    band: Band,
    decision_id: str,
    now: datetime,
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
    offer: tuple[Suggestion, ...] = ()
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
        offer = (win_back,)
    chosen, held = _hold_out(offer, customer, config, now)
    chosen = tuple(replace(c, propensity=1.0) for c in chosen)  # one offer: every mode shows it
    mode = decision_mode(decision_id, config)
    eligible = tuple(c.action for c in offer)
    table = {(c.action, c.rank): 1.0 for c in chosen}
    return Ranking(chosen, mode == "control", band, eligible, (*out, *held), mode, table)


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
    adaptive: AdaptiveState = EMPTY,
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
        adaptive: what customer answers taught (``serving.adaptive``); by default nothing,
            and every ratio is 1.

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
    customer, product_by_target, new = _with_new_actions(
        customer, product_by_target, config, adaptive
    )
    known_products = (*known_products, *new)
    pool, out = screen_actions(customer, config, product_by_target, known_products, min_p, pressure)
    if customer.closed_date is not None:
        return _closed(customer, config, pool, out, band, decision_id, now)
    kept, held_back = _weigh(pool, customer, context, config, band, declines_by_action, now)
    mode = decision_mode(decision_id, config)
    learned = _Learned(adaptive, config, customer.tier, new)
    greedy = learned.greedy(kept)
    ratios = learned.sampler(kept)(seeded("explore", decision_id)) if mode == "explore" else greedy
    weighed = _Learned.weighed(kept, ratios)
    if mode == "control":
        order = sorted(weighed, key=lambda c: _uniform(f"order:{decision_id}", c.action))
    else:
        order = sorted(weighed, key=lambda c: (-c.priority, c.action))
    listed, cut = _cut(order, effect, pressure, max_suggestions, config.capacity)
    chosen, held = _hold_out(listed, customer, config, now)
    shown = _Shown(
        kept,
        lambda o: _cut(o, effect, pressure, max_suggestions, config.capacity)[0],
        _held_out(kept, customer, config, now),
        effect.min_expected_value,
        effect.length(max_suggestions),
    )
    table = _propensities(shown, learned, greedy, decision_id)
    chosen = tuple(replace(c, propensity=table.get((c.action, c.rank), 0.0)) for c in chosen)
    not_shown = (*out, *held_back, *cut, *held)
    eligible = tuple(sorted(c.action for c in kept))
    return Ranking(chosen, mode == "control", band, eligible, not_shown, mode, table)


def _with_new_actions(
    customer: Customer,
    product_by_target: Mapping[str, str],
    config: PolicyConfig,
    adaptive: AdaptiveState,
) -> tuple[Customer, Mapping[str, str], frozenset[str]]:
    """New actions (``adaptive.new_actions`` without a champion) as modelled products whose
    probability is their learned acceptance in the customer's tier (``serving.adaptive``)."""
    modelled = set(product_by_target.values())
    new = frozenset(p for p in config.adaptive.new_actions if p not in modelled)
    if not new:
        return customer, product_by_target, new
    targets = {f"{NEW_TARGET}{p}": p for p in sorted(new)}
    learned = {t: adaptive.acceptance(p, customer.tier) for t, p in targets.items()}
    customer = replace(customer, probabilities={**customer.probabilities, **learned})
    return customer, {**product_by_target, **targets}, new


@dataclass(frozen=True)
class _Learned:
    """The learned acceptance ratios of one decision's actions (``serving.adaptive``)."""

    adaptive: AdaptiveState
    config: PolicyConfig
    tier: str | None
    new: frozenset[str]  # new actions: their probability is already the learned acceptance

    def greedy(self, kept: Sequence[Suggestion]) -> dict[str, float]:
        """Action -> the posterior mean ratio (1 for an immature cell or a new action)."""
        settings = self.config.adaptive
        return {
            c.action: 1.0
            if c.action in self.new
            else self.adaptive.ratio(c.action, self.tier, settings)
            for c in kept
        }

    def sampler(self, kept: Sequence[Suggestion]) -> Callable[[random.Random], dict[str, float]]:
        """Thompson draws of the kept actions' ratios, in action order so a stream of draws
        is stable: Gamma(s + accepted, s + expected); a new action's is a draw of its Beta
        acceptance over its mean (``serving.adaptive``). The posteriors are read once."""
        gammas, betas = [], []
        for c in sorted(kept, key=lambda c: c.action):
            if c.action in self.new:
                a, b = self.adaptive.acceptance_posterior(c.action, self.tier)
                betas.append((c.action, a, b, c.probability))
            else:
                shape, rate = self.adaptive.ratio_posterior(
                    c.action, self.tier, self.config.adaptive
                )
                gammas.append((c.action, shape, 1.0 / rate))

        def draw(rng: random.Random) -> dict[str, float]:
            out = {action: rng.gammavariate(shape, scale) for action, shape, scale in gammas}
            out.update({action: rng.betavariate(a, b) / q for action, a, b, q in betas})
            return out

        return draw

    def draws(self, kept: Sequence[Suggestion], n: int, seed: str) -> np.ndarray:
        """``n`` Thompson draws of every kept action's ratio at once (numpy; columns in the
        order of ``kept``), from the posteriors ``sampler`` draws one at a time from."""
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8]))
        out = np.empty((n, len(kept)))
        for j, c in enumerate(kept):
            if c.action in self.new:
                a, b = self.adaptive.acceptance_posterior(c.action, self.tier)
                out[:, j] = rng.beta(a, b, n) / c.probability
            else:
                shape, rate = self.adaptive.ratio_posterior(
                    c.action, self.tier, self.config.adaptive
                )
                out[:, j] = rng.gamma(shape, 1.0 / rate, n)
        return out

    @staticmethod
    def weighed(kept: Sequence[Suggestion], ratios: Mapping[str, float]) -> list[Suggestion]:
        """The actions with their priorities multiplied by their ratios."""
        return [
            replace(c, priority=c.priority * ratios[c.action], ratio=ratios[c.action]) for c in kept
        ]


@dataclass(frozen=True)
class _Shown:
    """What rules 8-10 make of an order of the kept actions: the actions the agent sees."""

    kept: Sequence[Suggestion]  # weighed by rule 7, before any ratio
    cut: Callable[[list[Suggestion]], tuple[Suggestion, ...]]  # rules 8-9 (``_cut``)
    held: frozenset[str]  # kept actions of the customer's holdouts
    bar: float  # the expected value rule 8 asks for
    length: int  # the list's length (rule 9)
    seen: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)  # order -> shown

    def of(self, ratios: Mapping[str, float], by_rank: bool = False) -> tuple[str, ...]:
        """The shown actions, in order, when ``ratios`` multiply the priorities, or when
        ``by_rank`` they are the order itself (highest first); rules 8-10 applied once per
        distinct order: draws repeat orders often."""
        if by_rank:
            order = sorted(self.kept, key=lambda c: -ratios[c.action])
        else:
            order = sorted(self.kept, key=lambda c: (-c.priority * ratios[c.action], c.action))
        key = tuple(c.action for c in order)
        if key not in self.seen:
            self.seen[key] = tuple(c.action for c in self.cut(order) if c.action not in self.held)
        return self.seen[key]

    def listable(self) -> tuple[int, int]:
        """How many kept actions pass rule 8's bar (m, any of which an order may list), and
        how many of those are held out (h)."""
        worth = [c.action for c in self.kept if c.expected_value >= self.bar]
        return len(worth), len(self.held.intersection(worth))


def _held_out(
    kept: Sequence[Suggestion], customer: Customer, config: PolicyConfig, now: datetime
) -> frozenset[str]:
    """The kept actions the customer is held out of this period (rule 10, for any order)."""
    period = holdout_period(now, config.holdout_period)
    return frozenset(
        c.action
        for c in kept
        if in_holdout(
            customer.customer_id, c.action, period, config.holdout_share(c.kind, c.action)
        )
    )


def _weigh(
    pool: list[Suggestion],
    customer: Customer,
    context: Context,
    config: PolicyConfig,
    band: Band,
    declines_by_action: Mapping[str, Sequence[datetime]],
    now: datetime,
) -> tuple[list[Suggestion], list[NotShown]]:
    """Rules 5-7: the churn gate, the pause by declines, then the weighed priority."""
    kept: list[Suggestion] = []
    out: list[NotShown] = []
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
    return kept, out


def _cut(
    order: list[Suggestion],
    effect: PressureEffect,
    pressure: Pressure,
    max_suggestions: int | None,
    capacity: CapacityConfig,
) -> tuple[tuple[Suggestion, ...], list[NotShown]]:
    """Rules 8-9: the expected value the queue pressure asks for, the list's length, then
    the call's agent minutes (``capacity``: the list stops where the next would run over)."""
    bar = effect.min_expected_value
    out: list[NotShown] = []
    worth: list[Suggestion] = []
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
    listed = worth[:length]
    fit, words = time_cut([(c.kind, c.action) for c in listed], capacity, pressure)
    out += [_not_shown(c, "capacity", words) for c in listed[fit:]]
    chosen = tuple(replace(c, rank=i) for i, c in enumerate(listed[:fit], start=1))
    return chosen, out


def _propensities(
    shown: _Shown, learned: _Learned, greedy: Mapping[str, float], decision_id: str
) -> dict[tuple[str, int], float]:
    """(action, rank) -> the probability that the policy shows the action at that rank,
    given the decision's inputs, over the three modes:

    ``(1 - c - e) x [the greedy order shows it there] + c x P_control + e x P_explore``

    (c ``control_share``, e ``adaptive.exploration_share``). ``P_control`` is exact: in a
    uniformly random order of the m actions past rule 8's bar, of which h are held out and
    the first L listed, a shown action is at rank k with probability
    ``sum_{j=k..L} (1/m) C(m-h-1, k-1) C(h, j-k) / C(m-1, j-1)`` (it sits at j, with k - 1
    shown actions before it): 1/m without holdouts. (A cap on the call's agent minutes,
    which can shorten the list by the order, is not in it.) ``P_explore`` is estimated from
    ``PROPENSITY_DRAWS`` (64) Thompson orders seeded by the decision id, apart from the
    decision's own draw: a binomial estimate, standard error sqrt(p(1 - p) / 64) <= 0.0625,
    so at most 0.0625 x e (0.003 at e = 0.05) in the propensity. They are drawn for every
    decision with two or more actions past the bar while e > 0, explored or not, since a
    greedy decision's propensity needs them as much: all at once with numpy, and rules 8-10
    applied once per distinct order; with one action every order is the same and the
    result exact.
    Summed over the actions, a rank's propensities give the chance the rank is filled: 1
    without holdouts, where the list's length is fixed.
    """
    c, e = learned.config.control_share, learned.config.adaptive.exploration_share
    first = shown.of(greedy)
    m, h = shown.listable()
    table: dict[tuple[str, int], float] = {}

    def add(action: str, rank: int, p: float) -> None:
        if p > 0:
            table[action, rank] = table.get((action, rank), 0.0) + p

    for rank, action in enumerate(first, start=1):
        add(action, rank, 1 - c - e)
    if c > 0:
        open_ = [k.action for k in shown.kept if k.expected_value >= shown.bar]
        for action in (a for a in open_ if a not in shown.held):
            for rank in range(1, min(shown.length, m - h) + 1):
                add(action, rank, c * _random_rank(rank, m, h, shown.length))
    if e > 0 and m > 1:
        kept = sorted(shown.kept, key=lambda c: c.action)  # ties go to the action's name
        ratios = learned.draws(kept, PROPENSITY_DRAWS, f"propensity:{decision_id}")
        priorities = np.array([c.priority for c in kept]) * ratios
        orders, counts = np.unique(
            np.argsort(-priorities, axis=1, kind="stable"), axis=0, return_counts=True
        )
        for order, count in zip(orders, counts, strict=True):
            ranked = {kept[j].action: float(len(kept) - i) for i, j in enumerate(order)}
            for rank, action in enumerate(shown.of(ranked, by_rank=True), start=1):
                add(action, rank, e * count / PROPENSITY_DRAWS)
    elif e > 0:
        for rank, action in enumerate(first, start=1):
            add(action, rank, e)
    return table


def _random_rank(k: int, m: int, h: int, length: int) -> float:
    """The chance a given shown action is at rank k when m actions are randomly ordered, the
    first ``length`` listed and the h held-out ones among them removed (``_propensities``)."""
    if m == 0:
        return 0.0
    total = sum(
        math.comb(m - h - 1, k - 1) * math.comb(h, j - k) / math.comb(m - 1, j - 1)
        for j in range(k, min(length, m) + 1)
    )
    return total / m


def _not_shown(
    c: Suggestion, reason: NotShownReason, detail: str, until: datetime | None = None
) -> NotShown:
    return NotShown(c.kind, c.action, c.product, reason, detail, c.probability, until, c.uplift)


def _weight(c: Suggestion, context: Context, config: PolicyConfig) -> float:
    return context_weight(c.kind, context, config) * config.levers.get(c.action, 1.0)


def _zero_weight(c: Suggestion, context: Context, config: PolicyConfig) -> str:
    reason = config.call_reason_weights.get(context.call_reason or "", {})
    if reason.get(c.kind, 1.0) <= 0:
        return f"call_reason_weights {context.call_reason}.{c.kind} is 0"
    if context_weight(c.kind, context, config) <= 0:
        return f"channel_weights {context.channel}.{c.kind} is 0"
    return "upgrade_value.qualified_weight is 0"


def _uniform(salt: str, key: str) -> float:
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
