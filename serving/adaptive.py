"""Learning from customer answers: a Bayesian acceptance ratio per (action, tier), and skips.

The offline propensity q (a champion's calibrated probability) already ranks; what answers
teach is how far acceptance given shown departs from q in a cell, say savings for gold
customers. Per cell the decision store keeps three additive counters (``Cell``): ``answers``
(accepted + declined), ``accepted`` and ``expected``, the sum of the q logged with each of
those suggestions. The cell's ratio r = acceptance / q has the conjugate prior Gamma(s, s)
(mean 1: trust the offline model; s = ``AdaptiveConfig.prior_strength`` pseudo-answers)
and, answers being Poisson-like with mean r x q, the posterior

    Gamma(s + accepted, s + expected),   mean (s + accepted) / (s + expected).

Greedy decisions multiply an action's priority by that mean once the cell has
``min_answers`` answers (1 before: a few answers should not reorder what the model knows);
explored decisions by a draw from the posterior (Thompson sampling), at any count, since
exploring is what makes a cell mature.

Why this and not online logistic regression: the update is exact and conjugate, the state
is three sums per cell that any worker can add to in the feedback's own transaction
(idempotent per feedback row, rebuilt from the feedback table to the same numbers), and
every worker and the batch read the same tiny table. Features beyond the tier stay with the
offline model, which q already carries.

A new action (a product in ``AdaptiveConfig.new_actions`` with no champion) has no q to
correct: its acceptance itself is learned, Beta(1 + accepted, 1 + declined) per cell. The
policy uses the posterior mean as its probability (so value x mean is its expected value,
and the minimum probability applies to it) and, in explored decisions, ranks it by a Beta
draw instead (its ratio is draw / mean). The flat prior's mean of 0.5 is optimistic on
purpose: a new action is shown early and falls to its rate as declines come in.

Only customer answers count: ``accepted`` against ``declined``. A skip is the agent's
judgement of the moment and ``not_shown`` never reached the customer; neither moves a
cell. Skips have their own counts (``SkipCell``), by queue pressure and channel, for
reports. Pure: no I/O (``serving.decisions`` keeps the counters).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from serving.policy_config import AdaptiveConfig

ANSWERS = ("accepted", "declined")  # the responses that move an acceptance estimate
NO_TIER = ""  # the cell key of a decision whose customer had no tier


@dataclass(frozen=True)
class Cell:
    """The answers of one (action, tier) cell: counts and the sum of the offline q."""

    answers: int = 0
    accepted: int = 0
    expected: float = 0.0

    def add(self, response: str, q: float | None) -> Cell:
        """The cell after one more feedback row (unchanged unless accepted or declined)."""
        if response not in ANSWERS:
            return self
        return Cell(
            self.answers + 1,
            self.accepted + (response == "accepted"),
            self.expected + (q or 0.0),
        )


@dataclass(frozen=True)
class SkipCell:
    """Feedback rows of one (queue pressure, channel) and how many were skips."""

    responses: int = 0
    skipped: int = 0

    def add(self, response: str) -> SkipCell:
        return SkipCell(self.responses + 1, self.skipped + (response == "skipped"))

    @property
    def rate(self) -> float:
        """The skip rate's posterior mean under a flat Beta(1, 1) prior."""
        return (1 + self.skipped) / (2 + self.responses)


@dataclass(frozen=True)
class AdaptiveState:
    """Every cell's counters as read from the decision store; empty: nothing learned yet."""

    cells: Mapping[tuple[str, str], Cell] = field(default_factory=dict)  # (action, tier)
    skips: Mapping[tuple[str, str], SkipCell] = field(default_factory=dict)  # (pressure, channel)

    def cell(self, action: str, tier: str | None) -> Cell:
        return self.cells.get((action, tier or NO_TIER), Cell())

    def ratio(self, action: str, tier: str | None, config: AdaptiveConfig) -> float:
        """The greedy multiplier of an action's priority: the posterior mean of its cell's
        ratio once mature (``min_answers``), else 1."""
        cell = self.cell(action, tier)
        if cell.answers < max(config.min_answers, 1):
            return 1.0
        return (config.prior_strength + cell.accepted) / (config.prior_strength + cell.expected)

    def ratio_posterior(
        self, action: str, tier: str | None, config: AdaptiveConfig
    ) -> tuple[float, float]:
        """The cell's ratio posterior Gamma(shape, rate) = (s + accepted, s + expected), for
        Thompson draws."""
        cell = self.cell(action, tier)
        return config.prior_strength + cell.accepted, config.prior_strength + cell.expected

    def acceptance(self, action: str, tier: str | None) -> float:
        """A new action's acceptance: the posterior mean of Beta(1 + accepted, 1 + declined)."""
        cell = self.cell(action, tier)
        return (1 + cell.accepted) / (2 + cell.answers)

    def acceptance_posterior(self, action: str, tier: str | None) -> tuple[float, float]:
        """A new action's acceptance posterior Beta(1 + accepted, 1 + declined)."""
        cell = self.cell(action, tier)
        return 1.0 + cell.accepted, 1.0 + cell.answers - cell.accepted

    def skip_rate(self, queue_pressure: str, channel: str) -> float:
        """The skip rate at a queue pressure and channel (``SkipCell.rate``)."""
        return self.skips.get((queue_pressure, channel), SkipCell()).rate

    def fingerprint(self) -> list[list]:
        """The acceptance counters as plain sorted lists: what a batch run's key includes."""
        return [
            [a, t, c.answers, c.accepted, c.expected] for (a, t), c in sorted(self.cells.items())
        ]


EMPTY = AdaptiveState()


def seeded(salt: str, decision_id: str) -> random.Random:
    """A random stream determined by a decision id: the same draws on every worker and rerun."""
    digest = hashlib.sha256(f"{salt}:{decision_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
