"""The HTTP contract's response bodies: what each route answers (the OpenAPI document).

Every field has a description and every model an example, because the OpenAPI document
BentoML publishes at ``/docs.json`` is what the agent-desktop developers code against.
``serving.api`` holds the requests and maps the inference path's results onto these.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from serving.card import Card
from serving.vocabulary import AgentReason, Band, Kind, Response

_VERSIONS_EXAMPLE = {
    "tierwise-churn": "3",
    "tierwise-upgrade": "2",
    "tierwise-cross-sell-credit-card": "1",
}


class ReasonOut(BaseModel):
    """A feature that pushed the score up, in plain words."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"feature": "complaints_90d", "text": "2 complaints in the last 90 days"}
        }
    )

    feature: str = Field(description="The model feature behind the reason.")
    text: str = Field(description="The reason in words an agent can say.")


class TierOut(BaseModel):
    """The customer's service tier and why."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "name": "gold",
                "rank": 2,
                "value": 5684.57,
                "value_tier": "major",
                "reason": "gold tier, in the current tier for 9 months; value tier major: "
                "12-month value 5,685, top 20% of customers, threshold 4,944",
            },
        }
    )

    name: str | None = Field(description="Service tier name.")
    rank: int | None = Field(description="Tier rank, 0 the lowest.")
    value: float = Field(description="Customer value: 12-month net revenue plus fees.")
    value_tier: str | None = Field(description="Tier in the customer value pyramid.")
    reason: str | None = Field(description="Why the customer is in this tier, in plain words.")


class ChurnOut(BaseModel):
    """Churn risk."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "probability": 0.34,
                "risk_band": "high",
                "reasons": [
                    {"feature": "complaints_90d", "text": "2 complaints in the last 90 days"}
                ],
            },
        }
    )

    probability: float | None = Field(
        description="Calibrated probability of leaving within the horizon (null: no model)."
    )
    risk_band: Band = Field(description="low, medium or high (policy thresholds).")
    reasons: list[ReasonOut] = Field(description="Top reasons the risk is what it is.")


class UpgradeOut(BaseModel):
    """Chance to move up a tier."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"probability": 0.12, "next_tier": "platinum", "gap_to_next_tier": 1500.0}
        }
    )

    probability: float | None = Field(
        description="Calibrated probability of a higher tier within the horizon."
    )
    next_tier: str | None = Field(description="The next tier up (null at the top).")
    gap_to_next_tier: float | None = Field(
        description="Yearly value the customer is short of the next tier (null if unknown)."
    )


class CrossSellOut(BaseModel):
    """Propensity for one product."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"product": "credit_card", "probability": 0.08, "held": False}
        }
    )

    product: str = Field(description="The product.")
    probability: float | None = Field(
        description="Calibrated probability of opening it within the horizon (null if held)."
    )
    held: bool = Field(description="Whether the customer already holds it.")


class SuggestionOut(BaseModel):
    """One next best action."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "suggestion_id": "9b2f4c6d8e0a1b3c5d7e9f10",
                "rank": 1,
                "kind": "retention",
                "action": "retention",
                "product": None,
                "probability": 0.34,
                "value": 1705.37,
                "expected_value": 579.83,
                "priority": 695.79,
                "reasons": [
                    {"feature": "complaints_90d", "text": "2 complaints in the last 90 days"}
                ],
                "talking_points": [
                    "Acknowledge the complaint from 12 days ago before anything else",
                    "Offer a review of their products and fees and what their gold tier includes",
                ],
            },
        }
    )

    suggestion_id: str = Field(description="Id to send back with /v1/feedback.")
    rank: int = Field(description="Position in the list, 1 first.")
    kind: Kind = Field(description="retention, upgrade or cross_sell.")
    action: str = Field(description="retention, upgrade, or the product offered.")
    product: str | None = Field(description="The product of a cross-sell, else null.")
    probability: float = Field(description="Calibrated probability the action succeeds.")
    value: float = Field(
        description="Yearly value of success (policy settings): retention customer value x "
        "save rate; upgrade the extra value of the next tier, floored and capped; cross-sell "
        "the product's margin."
    )
    expected_value: float = Field(description="Probability x value of success, yearly.")
    priority: float = Field(description="Expected value weighed by context and business levers.")
    reasons: list[ReasonOut] = Field(description="Why this customer, in plain words.")
    talking_points: list[str] = Field(description="What the agent could say.")


class NotShownOut(BaseModel):
    """An action the policy considered and did not show, with the first rule that held it back."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "kind": "cross_sell",
                "action": "credit_card",
                "product": "credit_card",
                "reason": "paused_by_declines",
                "detail": "declined 2 times in 30 days; paused until 2026-07-29 10:12 UTC",
                "probability": 0.08,
                "until": "2026-07-29T10:12:40Z",
            },
        }
    )

    kind: Kind = Field(description="retention, upgrade or cross_sell.")
    action: str = Field(description="retention, upgrade, or the product.")
    product: str | None = Field(description="The product of a cross-sell, else null.")
    reason: AgentReason = Field(
        description="Why it is not shown: no_model (no champion model scores it), "
        "already_held, not_eligible (detail names the rule), predicted_harm (an offer is "
        "predicted to lower the chance of its outcome: better not made), below_min_probability, "
        "churn_gate (high churn risk: sales offers yield to retention), paused_by_declines "
        "(until a date), queue_pressure, cut_by_limit (ranked below the list's length), "
        "capacity (a cap on the offer, its budget or the channel is used up, or the call's "
        "agent minutes would run over), closed (the customer has closed: no sales offer)."
    )
    detail: str = Field(description="The rule and the numbers, in words.")
    probability: float | None = Field(description="Calibrated probability, where a model gave one.")
    until: dt.datetime | None = Field(
        description="For paused_by_declines: when the pause ends (UTC), else null."
    )


_NOT_SHOWN_EXAMPLE = [
    NotShownOut.model_config["json_schema_extra"]["example"],
    {
        "kind": "upgrade",
        "action": "upgrade",
        "product": None,
        "reason": "churn_gate",
        "detail": "high churn risk: sales offers yield",
        "probability": 0.12,
        "until": None,
    },
    {
        "kind": "cross_sell",
        "action": "mortgage",
        "product": "mortgage",
        "reason": "below_min_probability",
        "detail": "probability 0.0061 below the minimum 0.0200 at normal queue pressure",
        "probability": 0.0061,
        "until": None,
    },
]


class SuggestionResponse(BaseModel):
    """The decision for one contact."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "decision_id": "6f1c2b9a4e7d4c1f8a3b5d6e7f809a1b",
                "customer_id": "C0000042",
                "as_of": "2026-06-30",
                "tier": TierOut.model_config["json_schema_extra"]["example"],
                "churn": ChurnOut.model_config["json_schema_extra"]["example"],
                "upgrade": UpgradeOut.model_config["json_schema_extra"]["example"],
                "suggestions": [SuggestionOut.model_config["json_schema_extra"]["example"]],
                "not_shown": _NOT_SHOWN_EXAMPLE,
                "control_group": False,
                "talking_points": ["Customer for 8 years this July - thank them"],
                "model_versions": _VERSIONS_EXAMPLE,
            },
        }
    )

    decision_id: str = Field(description="Id of the logged decision, for /v1/feedback.")
    customer_id: str = Field(description="The customer.")
    as_of: dt.date = Field(description="Date of the customer data the decision used.")
    tier: TierOut
    churn: ChurnOut
    upgrade: UpgradeOut
    suggestions: list[SuggestionOut] = Field(description="Ranked suggestions, best first.")
    not_shown: list[NotShownOut] = Field(
        description="Every other action considered, with why it is not shown: an empty "
        "suggestion list is always explained here."
    )
    control_group: bool = Field(
        description="True for a control decision: eligible actions in random order, so the "
        "lift of the ranking can be measured."
    )
    talking_points: list[str] = Field(description="Openers from the customer's own history.")
    model_versions: dict[str, str] = Field(description="Registered model name -> version used.")


_CARD_EXAMPLE = {
    "status": "open",
    "closed_date": None,
    "basics": {
        "signup_date": "2018-07-14",
        "tenure_days": 2908,
        "profile": {"region": "London", "segment": "affluent"},
    },
    "traits": {
        "channels": [{"name": "app", "share": 0.62}, {"name": "web", "share": 0.21}],
        "products": [{"name": "credit_card", "share": 0.55}],
        "active_months_12m": 12,
        "engagement_30d": 14,
    },
    "performance": {
        "value": 2140.0,
        "value_trend": [160, 170, 150, 180, 175, 190, 160, 185, 200, 170, 150, 140],
        "value_tier": "major",
        "tier": "gold",
        "tier_reason": "your 12-month value of 2,140 puts you in the top 20% of customers, "
        "in our major tier; major starts at 1,800",
        "next_tier": "platinum",
        "gap_to_next_tier": 660.0,
        "tier_history": [{"date": "2025-03-01", "tier": "gold"}],
    },
    "transactions": [
        {"date": "2026-06-28", "product": "credit_card", "channel": "app", "amount": 42.5}
    ],
    "satisfaction": {
        "last_score": 2,
        "mean_score": 3.4,
        "complaints_90d": 1,
        "last_complaint_date": "2026-06-21",
    },
    "holdings": [{"product": "checking", "held_days": 2908, "monthly_fee": 6.0}],
}


class ScoresResponse(BaseModel):
    """Every calibrated probability of a customer, with tier and reasons."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "customer_id": "C0000042",
                "as_of": "2026-06-30",
                "tier": TierOut.model_config["json_schema_extra"]["example"],
                "churn": ChurnOut.model_config["json_schema_extra"]["example"],
                "upgrade": UpgradeOut.model_config["json_schema_extra"]["example"],
                "cross_sell": [CrossSellOut.model_config["json_schema_extra"]["example"]],
                "probabilities": {"churn": 0.34, "upgrade": 0.12},
                "talking_points": ["Customer for 8 years this July - thank them"],
                "card": _CARD_EXAMPLE,
                "model_versions": _VERSIONS_EXAMPLE,
            },
        }
    )

    customer_id: str = Field(description="The customer.")
    as_of: dt.date = Field(description="Date of the customer data the scores used.")
    tier: TierOut
    churn: ChurnOut
    upgrade: UpgradeOut
    cross_sell: list[CrossSellOut] = Field(description="One entry per cross-sell model.")
    probabilities: dict[str, float | None] = Field(
        description="Model target (churn, upgrade, cross_sell_<product>) -> probability."
    )
    talking_points: list[str] = Field(description="Openers from the customer's own history.")
    card: Card = Field(
        description="The customer card: basics, traits, performance, last transactions, "
        "satisfaction and holdings, with status closed for a customer who has left."
    )
    model_versions: dict[str, str] = Field(description="Registered model name -> version used.")


class FeedbackResponse(BaseModel):
    """The stored feedback."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "decision_id": "6f1c2b9a4e7d4c1f8a3b5d6e7f809a1b",
                "suggestion_id": "9b2f4c6d8e0a1b3c5d7e9f10",
                "response": "declined",
                "recorded_at": "2026-07-01T09:30:12Z",
                "created": True,
            },
        }
    )

    decision_id: str = Field(description="The decision.")
    suggestion_id: str = Field(description="The suggestion.")
    response: Response = Field(description="The response stored.")
    recorded_at: dt.datetime = Field(description="When it was first recorded (UTC).")
    created: bool = Field(
        description="False when this call was a retry of feedback already stored."
    )


class ReloadResponse(BaseModel):
    """The model versions in use after a reload."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "model_versions": _VERSIONS_EXAMPLE,
                "previous_model_versions": _VERSIONS_EXAMPLE,
                "changed": False,
                "store_as_of": "2026-06-30",
            },
        }
    )

    model_versions: dict[str, str] = Field(description="Versions now in use.")
    previous_model_versions: dict[str, str] = Field(description="Versions used before.")
    changed: bool = Field(description="Whether any version changed.")
    store_as_of: dt.date = Field(description="As-of date of the online store.")


class ValidationIssue(BaseModel):
    """One reason a request did not validate (pydantic's error, without the input)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "type": "int_type",
                "loc": ["max_suggestions"],
                "msg": "Input should be a valid integer",
                "url": "https://errors.pydantic.dev/2.14/v/int_type",
            },
        }
    )

    type: str = Field(description="The kind of problem, e.g. missing, int_type, extra_forbidden.")
    loc: list[str | int] = Field(
        description="Where: the field's path in the body (names, and positions in lists); "
        "empty when the body as a whole is not a JSON object."
    )
    msg: str = Field(description="The problem, in words.")
    url: str | None = Field(None, description="pydantic's page about the problem, when it has one.")


class ErrorResponse(BaseModel):
    """Why a request was refused: the JSON body of every error answer.

    The service's own refusals (401, 403, 404, 409, 413, 415, 422, 429, 503, 504) carry
    ``error`` only (built by ``serving.middleware.error_response``); a body that does not
    validate gets BentoML's 400 with ``detail`` as well, and an unexpected failure a 500.
    """

    model_config = ConfigDict(json_schema_extra={"example": {"error": "unknown customer_id"}})

    error: str = Field(description="What went wrong, in words.")
    detail: list[ValidationIssue] | None = Field(
        None,
        description="400 only: one entry per validation error, naming the field (loc) and "
        "the problem (type, msg); the input is never echoed. Absent otherwise.",
    )
