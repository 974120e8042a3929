"""Capacity and budgets: the caps on offers (``CapacityConfig``) and what they cost.

Three limits real campaigns have, set in the policy's ``capacity`` (``PolicyConfig``):

- **per action**: a count of offers per day or week (stock), and/or a budget in money per
  day or week with the offer's cost;
- **per channel**: offers per day in a channel, whatever the action;
- **agent time per call**: the minutes each action takes, against the minutes a call has
  (one number, or by queue pressure): the agent's list stops where the next suggestion
  would run over (``serving.policy``, rule 9).

The defaults set no cap, so nothing changes until a business owner sets one. The nightly
batch allocates the caps across its whole base (``batch.allocate``); the service keeps
running counters of the same caps in the decision store (``serving.decisions``, table
``capacity_used``). This module is pure: the settings, the cap keys, periods and words.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from serving.vocabulary import Kind, Pressure

CapPeriod = Literal["day", "week"]


class ActionCap(BaseModel):
    """The caps of one action over a period: offers (stock), a budget with the offer's cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per: CapPeriod = Field(
        "day", description="the period the caps count over (UTC days; ISO weeks)"
    )
    offers: int | None = Field(None, ge=0, description="most offers in a period (stock)")
    budget: float | None = Field(None, ge=0, description="most money spent on offers in a period")
    cost: float | None = Field(None, gt=0, description="what one offer costs; needed with budget")

    @model_validator(mode="after")
    def _complete(self) -> ActionCap:
        if self.offers is None and self.budget is None:
            raise ValueError("an action cap needs offers, budget or both")
        if self.budget is not None and self.cost is None:
            raise ValueError("a budget needs the cost of one offer (cost)")
        return self


class CapacityConfig(BaseModel):
    """Caps on offers and the agent's time; by default none (``docs/policy.md``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    actions: dict[str, ActionCap] = Field(
        default_factory=dict,
        description="caps by action key (retention, win_back, upgrade or a product)",
    )
    channels: dict[str, int] = Field(
        default_factory=dict,
        description="most offers per UTC day by channel, whatever the action",
    )
    minutes: dict[str, float] = Field(
        default_factory=dict,
        description="agent minutes an offer takes, by action kind or action key (the key "
        "overrides its kind); unlisted: 0",
    )
    call_minutes: float | dict[Pressure, float] | None = Field(
        None,
        description="agent minutes a call has for offers: one number or by queue pressure "
        "(an unlisted level: no limit); null: no limit",
    )

    @model_validator(mode="after")
    def _valid(self) -> CapacityConfig:
        wrong = {k: v for k, v in self.channels.items() if v < 0}
        wrong |= {k: v for k, v in self.minutes.items() if v < 0}
        call = self.call_minutes
        levels = call if isinstance(call, dict) else {"every level": call}
        wrong |= {k: v for k, v in levels.items() if v is not None and v < 0}
        if wrong:
            raise ValueError(f"channel caps and minutes must be 0 or more; got {wrong}")
        return self

    def minutes_of(self, kind: Kind, action: str) -> float:
        """Agent minutes an offer of ``action`` takes: its own setting, else its kind's, else 0."""
        return self.minutes.get(action, self.minutes.get(kind, 0.0))

    def call_limit(self, pressure: Pressure) -> float | None:
        """Minutes a call has for offers at ``pressure``; None: no limit."""
        if isinstance(self.call_minutes, dict):
            return self.call_minutes.get(pressure)
        return self.call_minutes


@dataclass(frozen=True)
class Cap:
    """One running cap: ``key`` names it, each offer uses ``amount`` of ``limit`` per period."""

    key: str
    limit: float
    amount: float
    per: CapPeriod
    words: str  # the cap as a not-shown detail says it

    def period_start(self, at: dt.datetime) -> dt.date:
        """The first day of the period ``at`` (UTC) falls in: the day, or the ISO week's Monday."""
        day = at.astimezone(dt.UTC).date() if at.tzinfo else at.date()
        return day - dt.timedelta(days=day.weekday()) if self.per == "week" else day


def caps_of(action: str, channel: str | None, capacity: CapacityConfig) -> tuple[Cap, ...]:
    """The caps an offer of ``action`` in ``channel`` counts against, in a fixed order."""
    out: list[Cap] = []
    rule = capacity.actions.get(action)
    if rule is not None and rule.offers is not None:
        words = f"{action}: {rule.offers} offers per {rule.per}"
        out.append(Cap(f"action:{action}:offers", rule.offers, 1.0, rule.per, words))
    if rule is not None and rule.budget is not None and rule.cost is not None:
        words = f"{action}: budget {rule.budget:,.2f} per {rule.per} at {rule.cost:,.2f} an offer"
        out.append(Cap(f"action:{action}:budget", rule.budget, rule.cost, rule.per, words))
    if channel is not None and channel in capacity.channels:
        limit = capacity.channels[channel]
        out.append(
            Cap(f"channel:{channel}", limit, 1.0, "day", f"{channel}: {limit} offers per day")
        )
    return tuple(out)


def has_caps(capacity: CapacityConfig, channel: str | None = None) -> bool:
    """Whether any action cap is set, or a cap of ``channel``."""
    return bool(capacity.actions) or (channel is not None and channel in capacity.channels)


def time_cut(
    actions: Sequence[tuple[Kind, str]], capacity: CapacityConfig, pressure: Pressure
) -> tuple[int, str]:
    """Where a call's list stops: how many of ``actions`` (in order) fit the call's minutes.

    The list stops at the first offer whose minutes exceed what is left (a shorter one
    below it is not pulled up: the order is the policy's). Returns the count that fits and
    the detail for the rest, in words ("" when all fit).
    """
    call = capacity.call_limit(pressure)
    if call is None:
        return len(actions), ""
    left = call
    for i, (kind, action) in enumerate(actions):
        need = capacity.minutes_of(kind, action)
        if need > left + 1e-9:
            words = (
                f"agent time: {action} takes {need:g} min, {left:g} of the call's {call:g} "
                f"min left at {pressure} queue pressure"
            )
            return i, words
        left -= need
    return len(actions), ""
