"""The HTTP contract of the service: request and response models (the OpenAPI document).

Every field has a description and every model an example, because the OpenAPI document
BentoML publishes at ``/docs.json`` is what the agent-desktop developers code against.
The requests are here; the response bodies are declared in ``serving.responses`` and
imported from here with them, so the whole contract has one import.
Requests are strict: unknown fields are refused, a number must be a JSON number (not
``"2"`` or ``true``), and ids and names must not contain control characters (a NUL cannot
reach a store or a log line). They never put their input into error messages
(``hide_input_in_errors``), so a validation error cannot carry customer data into a log.
The ``*_response`` functions map the inference path's results onto the response models.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from serving.policy_config import MAX_SUGGESTIONS
from serving.responses import (
    ChurnOut,
    CrossSellOut,
    ErrorResponse,
    FeedbackResponse,
    NotShownOut,
    ReasonOut,
    ReloadResponse,
    ScoresResponse,
    SuggestionOut,
    SuggestionResponse,
    TierOut,
    UpgradeOut,
    ValidationIssue,
)
from serving.vocabulary import AGENT_REASONS, Pressure, Response

if TYPE_CHECKING:  # the inference path imports LightGBM: not needed to describe the API
    from serving.card import Card
    from serving.eligibility import NotShown
    from serving.reasons import Reason
    from serving.suggest import Assessment, Decision

# The whole contract, requests and responses, is imported from here.
__all__ = [
    "ChurnOut",
    "ContactContext",
    "CrossSellOut",
    "ErrorResponse",
    "FeedbackRequest",
    "FeedbackResponse",
    "NotShownOut",
    "ReasonOut",
    "ReloadRequest",
    "ReloadResponse",
    "ScoresRequest",
    "ScoresResponse",
    "SuggestionOut",
    "SuggestionRequest",
    "SuggestionResponse",
    "TierOut",
    "UpgradeOut",
    "ValidationIssue",
    "scores_response",
    "suggestion_response",
]

# No control character (Unicode category Cc: C0, DEL, C1) in an id or a name, and none but
# tab and line breaks in free text: a NUL breaks PostgreSQL text, an escape a log line. The
# same patterns document the rule in the OpenAPI and check it (before trimming, so a
# control character at either end is refused too, not trimmed away).
ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f]*$"
FREE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"


def refuse_control(value: object, pattern: str = ONE_LINE) -> object:
    """``value`` as it is, unless it is a string with a character ``pattern`` refuses."""
    if isinstance(value, str) and re.fullmatch(pattern, value) is None:
        raise PydanticCustomError(
            "control_character", "String should not contain control characters"
        )
    return value


CustomerId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="The customer's id in the customer base.",
        examples=["C0000042"],
        json_schema_extra={"pattern": ONE_LINE},
    ),
]
# strict: a JSON number for a number and true/false for a boolean, never a string or a number
# standing in for one (pydantic's lax mode would take "2" or true for 2).
_REQUEST = ConfigDict(
    extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True, strict=True
)


# -- requests ----------------------------------------------------------------------------------


class ContactContext(BaseModel):
    """The contact the agent is handling."""

    model_config = ConfigDict(
        **_REQUEST,
        json_schema_extra={
            "example": {
                "channel": "phone",
                "call_reason": "complaint",
                "queue_pressure": "normal",
                "agent_id": "agent-042",
            },
        },
    )

    channel: str = Field(
        min_length=1,
        max_length=50,
        description="Channel of the contact (phone, branch, chat, ...); weighs suggestions.",
        examples=["phone", "branch", "chat"],
        json_schema_extra={"pattern": ONE_LINE},
    )
    call_reason: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Why the customer got in touch, if known (e.g. complaint, inquiry).",
        examples=["complaint", "inquiry"],
        json_schema_extra={"pattern": ONE_LINE},
    )
    queue_pressure: Pressure = Field(
        "normal",
        description="How busy the queue is. low: a longer list (5 by default) and offers "
        "down to half the usual minimum probability; normal: 3 by default; high: at most one "
        "suggestion, and only one worth the time (expected value 25 or more by default).",
        examples=["normal", "high"],
    )
    agent_id: str = Field(
        min_length=1,
        max_length=200,
        description="The agent handling the contact.",
        examples=["agent-042"],
        json_schema_extra={"pattern": ONE_LINE},
    )

    @field_validator("channel", "call_reason", "agent_id", mode="before")
    @classmethod
    def _one_line(cls, value: object) -> object:
        return refuse_control(value)


class SuggestionRequest(BaseModel):
    """Ask for the next best actions for a customer in a contact."""

    model_config = ConfigDict(
        **_REQUEST,
        json_schema_extra={
            "example": {
                "customer_id": "C0000042",
                "context": {
                    "channel": "phone",
                    "call_reason": "complaint",
                    "queue_pressure": "normal",
                    "agent_id": "agent-042",
                },
                "max_suggestions": 3,
            },
        },
    )

    customer_id: CustomerId
    context: ContactContext = Field(description="The contact the suggestions are for.")
    max_suggestions: int | None = Field(
        None,
        ge=1,
        le=MAX_SUGGESTIONS,
        description="Most suggestions to return, a JSON integer; null or absent: the queue "
        "pressure's list length (by default low 5, normal 3, high 1). High pressure never "
        "returns more than one.",
        examples=[3],
    )

    @field_validator("customer_id", mode="before")
    @classmethod
    def _one_line(cls, value: object) -> object:
        return refuse_control(value)


class ScoresRequest(BaseModel):
    """Ask for a customer's scores (the customer card); logs no decision."""

    model_config = ConfigDict(
        **_REQUEST, json_schema_extra={"example": {"customer_id": "C0000042"}}
    )

    customer_id: CustomerId

    @field_validator("customer_id", mode="before")
    @classmethod
    def _one_line(cls, value: object) -> object:
        return refuse_control(value)


class FeedbackRequest(BaseModel):
    """What happened to one suggestion of a decision."""

    model_config = ConfigDict(
        **_REQUEST,
        json_schema_extra={
            "example": {
                "decision_id": "6f1c2b9a4e7d4c1f8a3b5d6e7f809a1b",
                "suggestion_id": "9b2f4c6d8e0a1b3c5d7e9f10",
                "response": "declined",
                "agent_id": "agent-042",
                "note": "already has a card with another bank",
            },
        },
    )

    decision_id: str = Field(
        min_length=1,
        max_length=64,
        description="The decision_id of the /v1/suggestions answer.",
        examples=["6f1c2b9a4e7d4c1f8a3b5d6e7f809a1b"],
        json_schema_extra={"pattern": ONE_LINE},
    )
    suggestion_id: str = Field(
        min_length=1,
        max_length=64,
        description="The suggestion_id within that decision.",
        examples=["9b2f4c6d8e0a1b3c5d7e9f10"],
        json_schema_extra={"pattern": ONE_LINE},
    )
    response: Response = Field(
        description="accepted or declined by the customer; skipped by the agent (never counts "
        "against the offer); not_shown when the agent did not present it.",
        examples=["declined", "skipped"],
    )
    agent_id: str = Field(
        min_length=1,
        max_length=200,
        description="The agent reporting it.",
        examples=["agent-042"],
        json_schema_extra={"pattern": ONE_LINE},
    )
    note: str | None = Field(
        None,
        max_length=2000,
        description="Optional free text; tabs and line breaks allowed.",
        examples=["already has a card with another bank"],
        json_schema_extra={"pattern": FREE_TEXT},
    )

    @field_validator("decision_id", "suggestion_id", "agent_id", mode="before")
    @classmethod
    def _one_line(cls, value: object) -> object:
        return refuse_control(value)

    @field_validator("note", mode="before")
    @classmethod
    def _free_text(cls, value: object) -> object:
        return refuse_control(value, FREE_TEXT)


class ReloadRequest(BaseModel):
    """Reload the champion models (no fields)."""

    model_config = ConfigDict(**_REQUEST, json_schema_extra={"example": {}})


# -- mapping the inference path's results --------------------------------------------------


def suggestion_response(decision: Decision) -> SuggestionResponse:
    """A decision as the /v1/suggestions answer."""
    a = decision.assessment
    return SuggestionResponse(
        decision_id=decision.decision_id,
        customer_id=a.customer_id,
        as_of=a.as_of,
        tier=_tier(a),
        churn=_churn(a),
        upgrade=_upgrade(a),
        suggestions=[
            SuggestionOut(
                suggestion_id=s.suggestion_id,
                rank=s.rank,
                kind=s.kind,
                action=s.action,
                product=s.product,
                probability=s.probability,
                value=s.value,
                expected_value=s.expected_value,
                priority=s.priority,
                reasons=_reasons(s.reasons),
                talking_points=list(s.talking_points),
            )
            for s in decision.suggestions
        ],
        not_shown=[_not_shown(n) for n in decision.not_shown if n.reason in AGENT_REASONS],
        control_group=decision.control,
        talking_points=list(a.talking_points),
        model_versions=dict(a.model_versions),
    )


def scores_response(a: Assessment, card: Card) -> ScoresResponse:
    """An assessment and the customer's card as the /v1/scores answer."""
    return ScoresResponse(
        card=card,
        customer_id=a.customer_id,
        as_of=a.as_of,
        tier=_tier(a),
        churn=_churn(a),
        upgrade=_upgrade(a),
        cross_sell=[
            CrossSellOut(product=c.product, probability=c.probability, held=c.held)
            for c in a.cross_sell
        ],
        probabilities=dict(a.probabilities),
        talking_points=list(a.talking_points),
        model_versions=dict(a.model_versions),
    )


def _tier(a: Assessment) -> TierOut:
    t = a.tier
    return TierOut(
        name=t.name, rank=t.rank, value=t.value, value_tier=t.value_tier, reason=t.reason
    )


def _churn(a: Assessment) -> ChurnOut:
    return ChurnOut(
        probability=a.churn.probability,
        risk_band=a.churn.risk_band,
        reasons=_reasons(a.churn.reasons),
    )


def _upgrade(a: Assessment) -> UpgradeOut:
    u = a.upgrade
    return UpgradeOut(
        probability=u.probability, next_tier=u.next_tier, gap_to_next_tier=u.gap_to_next_tier
    )


def _reasons(reasons: tuple[Reason, ...]) -> list[ReasonOut]:
    return [ReasonOut(feature=r.feature, text=r.text) for r in reasons]


def _not_shown(n: NotShown) -> NotShownOut:
    return NotShownOut(
        kind=n.kind,
        action=n.action,
        product=n.product,
        reason=n.reason,
        detail=n.detail,
        probability=n.probability,
        until=n.until,
    )
