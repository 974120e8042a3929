"""The words the policy, the HTTP contract, the decision log and monitoring share.

Each is declared once here, as a ``Literal`` type for the schemas and as a tuple of its
values (in the order the ``Literal`` gives them) for checks and tables. Imports nothing.
"""

from __future__ import annotations

from typing import Literal, get_args

Kind = Literal["retention", "upgrade", "cross_sell"]
"""An action's kind: keeping the customer, moving them up a tier, or selling a product."""
KINDS: tuple[str, ...] = get_args(Kind)

Band = Literal["low", "medium", "high"]
"""A churn risk band (``RiskBands`` sets the thresholds)."""

Pressure = Literal["low", "normal", "high"]
"""How busy the contact queue is (``PressureEffect`` says what each level does)."""
PRESSURES: tuple[str, ...] = get_args(Pressure)

AgentReason = Literal[
    "no_model",
    "already_held",
    "not_eligible",
    "predicted_harm",
    "below_min_probability",
    "churn_gate",
    "paused_by_declines",
    "queue_pressure",
    "cut_by_limit",
    "capacity",
    "closed",
]
"""Why an action is not shown, as the agent's view says it (``serving.policy``, rules 1-9)."""
AGENT_REASONS: tuple[str, ...] = get_args(AgentReason)

NotShownReason = Literal[AgentReason, "holdout"]
"""The first rule that held an action back (``serving.policy``, rules 1-10): the agent's
reasons, and ``holdout`` (rule 10), which the decision log keeps and the agent never sees (an
experiment the agent must not know of, or they would offer it anyway)."""
NOT_SHOWN_REASONS: tuple[str, ...] = get_args(NotShownReason)

HoldoutPeriod = Literal["month", "quarter"]
"""How long a customer's holdout membership lasts (``policy.holdout_period``)."""

Response = Literal["accepted", "declined", "skipped", "not_shown"]
"""Feedback on one suggestion: accepted or declined by the customer, skipped by the agent
(never counts against the offer), not_shown when the agent did not present it."""
RESPONSES: tuple[str, ...] = get_args(Response)
