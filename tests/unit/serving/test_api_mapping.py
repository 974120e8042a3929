"""The HTTP contract: how a decision and an assessment become the response bodies, and which
validation error a bad request gets (the field named, the input never echoed)."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import re

import pytest
from pydantic import BaseModel, ValidationError

from features.spec import FeatureSpec
from serving.api import (
    ContactContext,
    ErrorResponse,
    FeedbackRequest,
    FeedbackResponse,
    NotShownOut,
    ReloadRequest,
    ReloadResponse,
    ScoresRequest,
    ScoresResponse,
    SuggestionOut,
    SuggestionRequest,
    SuggestionResponse,
    scores_response,
    suggestion_response,
)
from serving.card import customer_card
from serving.policy import NotShown, Suggestion
from serving.reasons import Reason
from serving.suggest import (
    Assessment,
    ChurnView,
    CrossSellView,
    Decision,
    TierView,
    UpgradeView,
)

AS_OF = dt.date(2026, 6, 30)
UNTIL = dt.datetime(2026, 7, 29, 10, 12, tzinfo=dt.UTC)
COMPLAINTS = Reason("complaints_90d", "2 complaints in the last 90 days", 0.8)
VERSIONS = {"tierwise-churn": "3", "tierwise-upgrade": "2"}
REQUESTS = [ContactContext, SuggestionRequest, ScoresRequest, FeedbackRequest, ReloadRequest]
RESPONSES = [
    SuggestionResponse,
    ScoresResponse,
    FeedbackResponse,
    ReloadResponse,
    ErrorResponse,
    SuggestionOut,
    NotShownOut,
]


def make_assessment() -> Assessment:
    """A gold customer at high churn risk, holding checking, 1500 short of platinum."""
    return Assessment(
        customer_id="C42",
        as_of=AS_OF,
        tier=TierView("gold", 2, 5684.57, "major", "gold tier", "platinum", 1500.0),
        churn=ChurnView(0.34, "high", (COMPLAINTS,)),
        upgrade=UpgradeView(0.12, "platinum", 1500.0),
        cross_sell=(
            CrossSellView("cross_sell_checking", "checking", None, True),
            CrossSellView("cross_sell_credit_card", "credit_card", 0.08, False),
        ),
        probabilities={
            "churn": 0.34,
            "upgrade": 0.12,
            "cross_sell_checking": None,
            "cross_sell_credit_card": 0.08,
        },
        talking_points=("Customer for 8 years this July - thank them",),
        model_versions=VERSIONS,
    )


def make_decision(**changes) -> Decision:
    retention = Suggestion(
        kind="retention",
        action="retention",
        target="churn",
        product=None,
        probability=0.34,
        value=1705.37,
        expected_value=579.83,
        priority=695.79,
        rank=1,
        suggestion_id="s-retention",
        reasons=(COMPLAINTS,),
        talking_points=("Acknowledge the complaint", "Offer a review"),
    )
    paused = NotShown(
        "cross_sell",
        "credit_card",
        "credit_card",
        "paused_by_declines",
        "declined 2 times in 30 days; paused until 2026-07-29 10:12 UTC",
        0.08,
        UNTIL,
    )
    gated = NotShown(
        "upgrade", "upgrade", None, "churn_gate", "high churn risk: sales offers yield", 0.12
    )
    values = {
        "decision_id": "d-1",
        "assessment": make_assessment(),
        "suggestions": (retention,),
        "control": False,
        "eligible": ("retention", "upgrade"),
        "not_shown": (paused, gated),
    }
    return Decision(**{**values, **changes})


# -- mapping the inference path's results ------------------------------------------------------


def test_a_suggestion_maps_with_every_field_and_reasons_without_their_weights():
    body = suggestion_response(make_decision()).model_dump(mode="json")
    assert body["suggestions"] == [
        {
            "suggestion_id": "s-retention",
            "rank": 1,
            "kind": "retention",
            "action": "retention",
            "product": None,
            "probability": 0.34,
            "value": 1705.37,
            "expected_value": 579.83,
            "priority": 695.79,
            "reasons": [{"feature": "complaints_90d", "text": "2 complaints in the last 90 days"}],
            "talking_points": ["Acknowledge the complaint", "Offer a review"],
        }
    ], "the log-odds push of a reason is internal: an agent gets the words"


def test_the_decision_maps_its_customer_tier_churn_and_upgrade():
    body = suggestion_response(make_decision()).model_dump(mode="json")
    assert (body["decision_id"], body["customer_id"], body["as_of"]) == ("d-1", "C42", "2026-06-30")
    assert body["tier"] == {
        "name": "gold",
        "rank": 2,
        "value": 5684.57,
        "value_tier": "major",
        "reason": "gold tier",
    }
    assert body["churn"] == {
        "probability": 0.34,
        "risk_band": "high",
        "reasons": [{"feature": "complaints_90d", "text": "2 complaints in the last 90 days"}],
    }
    assert body["upgrade"] == {
        "probability": 0.12,
        "next_tier": "platinum",
        "gap_to_next_tier": 1500.0,
    }, "the way up is reported with the upgrade, not the tier"
    assert body["talking_points"] == ["Customer for 8 years this July - thank them"]
    assert body["model_versions"] == VERSIONS and body["control_group"] is False


def test_the_not_shown_list_maps_in_order_with_until_in_utc():
    body = suggestion_response(make_decision()).model_dump(mode="json")
    assert body["not_shown"] == [
        {
            "kind": "cross_sell",
            "action": "credit_card",
            "product": "credit_card",
            "reason": "paused_by_declines",
            "detail": "declined 2 times in 30 days; paused until 2026-07-29 10:12 UTC",
            "probability": 0.08,
            "until": "2026-07-29T10:12:00Z",
        },
        {
            "kind": "upgrade",
            "action": "upgrade",
            "product": None,
            "reason": "churn_gate",
            "detail": "high churn risk: sales offers yield",
            "probability": 0.12,
            "until": None,
        },
    ]


def test_a_holdout_is_logged_but_never_reaches_the_agent():
    held = NotShown("cross_sell", "savings", "savings", "holdout", "no-offer holdout", 0.2)
    decision = make_decision(not_shown=(held, *make_decision().not_shown))
    body = suggestion_response(decision).model_dump(mode="json")
    assert [n["action"] for n in body["not_shown"]] == ["credit_card", "upgrade"]
    assert "holdout" not in json.dumps(body)
    enum = NotShownOut.model_json_schema()["properties"]["reason"]["enum"]
    assert "holdout" not in enum and "churn_gate" in enum


def test_an_empty_decision_maps_to_an_empty_list_explained_by_the_not_shown():
    body = suggestion_response(make_decision(suggestions=(), control=True))
    assert body.suggestions == [] and body.control_group is True
    assert [n.reason for n in body.not_shown] == ["paused_by_declines", "churn_gate"]


def test_scores_map_every_probability_the_cross_sell_list_and_the_card():
    card = customer_card(
        {"tenure_days": 2908.0},
        {"signup_date": "2018-07-14"},
        ("checking",),
        {"value": 5684.57, "tier": "gold", "next_tier": "platinum", "gap_to_next_tier": 1500.0},
        FeatureSpec(),
    )
    body = scores_response(make_assessment(), card)
    data = body.model_dump(mode="json")
    assert data["cross_sell"] == [
        {"product": "checking", "probability": None, "held": True},
        {"product": "credit_card", "probability": 0.08, "held": False},
    ], "one entry per cross-sell model, its target key left out"
    assert data["probabilities"] == {
        "churn": 0.34,
        "upgrade": 0.12,
        "cross_sell_checking": None,
        "cross_sell_credit_card": 0.08,
    }, "a held product's probability is null, not missing"
    assert body.card == card, "the card goes out as built"
    assert data["churn"]["risk_band"] == "high" and data["model_versions"] == VERSIONS


def test_a_mapped_response_reads_back_as_the_same_response():
    decision = suggestion_response(make_decision())
    assert SuggestionResponse.model_validate_json(decision.model_dump_json()) == decision


# -- the documented contract -------------------------------------------------------------------


@pytest.mark.parametrize("model", REQUESTS + RESPONSES, ids=lambda m: m.__name__)
def test_every_example_in_the_api_document_is_valid(model: type[BaseModel]):
    example = model.model_config["json_schema_extra"]["example"]
    model.model_validate(example)  # raises, naming the field, if the example drifted


@pytest.mark.parametrize("model", REQUESTS + RESPONSES, ids=lambda m: m.__name__)
def test_every_field_is_described_or_is_a_described_model(model: type[BaseModel]):
    undocumented = [
        name
        for name, info in model.model_fields.items()
        if not info.description
        and not (
            inspect.isclass(info.annotation)
            and issubclass(info.annotation, BaseModel)
            and info.annotation.__doc__
        )
    ]
    assert not undocumented, f"{model.__name__}: fields without a description {undocumented}"


# -- request validation ------------------------------------------------------------------------

CONTEXT = {"channel": "phone", "agent_id": "agent-1"}
SUGGESTION = {"customer_id": "C1", "context": CONTEXT}
FEEDBACK = {
    "decision_id": "d-1",
    "suggestion_id": "s-1",
    "response": "declined",
    "agent_id": "agent-1",
}
BAD_REQUESTS = {
    "missing customer": (SuggestionRequest, {"context": CONTEXT}, ("customer_id",), "missing"),
    "blank customer": (
        SuggestionRequest,
        {**SUGGESTION, "customer_id": "   "},
        ("customer_id",),
        "string_too_short",
    ),
    "long customer": (
        SuggestionRequest,
        {**SUGGESTION, "customer_id": "C" * 201},
        ("customer_id",),
        "string_too_long",
    ),
    "customer list": (
        SuggestionRequest,
        {**SUGGESTION, "customer_id": ["C1"]},
        ("customer_id",),
        "string_type",
    ),
    "missing context": (SuggestionRequest, {"customer_id": "C1"}, ("context",), "missing"),
    "missing agent": (
        SuggestionRequest,
        {**SUGGESTION, "context": {"channel": "phone"}},
        ("context", "agent_id"),
        "missing",
    ),
    "empty channel": (
        SuggestionRequest,
        {**SUGGESTION, "context": {**CONTEXT, "channel": ""}},
        ("context", "channel"),
        "string_too_short",
    ),
    "empty call reason": (
        SuggestionRequest,
        {**SUGGESTION, "context": {**CONTEXT, "call_reason": ""}},
        ("context", "call_reason"),
        "string_too_short",
    ),
    "unknown pressure": (
        SuggestionRequest,
        {**SUGGESTION, "context": {**CONTEXT, "queue_pressure": "extreme"}},
        ("context", "queue_pressure"),
        "literal_error",
    ),
    "unknown context field": (
        SuggestionRequest,
        {**SUGGESTION, "context": {**CONTEXT, "priority": 1}},
        ("context", "priority"),
        "extra_forbidden",
    ),
    "zero suggestions": (
        SuggestionRequest,
        {**SUGGESTION, "max_suggestions": 0},
        ("max_suggestions",),
        "greater_than_equal",
    ),
    "eleven suggestions": (
        SuggestionRequest,
        {**SUGGESTION, "max_suggestions": 11},
        ("max_suggestions",),
        "less_than_equal",
    ),
    "fractional suggestions": (
        SuggestionRequest,
        {**SUGGESTION, "max_suggestions": 2.5},
        ("max_suggestions",),
        "int_type",
    ),
    "suggestions as a string": (
        SuggestionRequest,
        {**SUGGESTION, "max_suggestions": "2"},
        ("max_suggestions",),
        "int_type",
    ),
    "suggestions as true": (
        SuggestionRequest,
        {**SUGGESTION, "max_suggestions": True},
        ("max_suggestions",),
        "int_type",
    ),
    "suggestions as a whole float": (
        SuggestionRequest,
        {**SUGGESTION, "max_suggestions": 2.0},
        ("max_suggestions",),
        "int_type",
    ),
    "customer as a number": (
        SuggestionRequest,
        {**SUGGESTION, "customer_id": 42},
        ("customer_id",),
        "string_type",
    ),
    "customer as true": (ScoresRequest, {"customer_id": True}, ("customer_id",), "string_type"),
    "NUL in customer": (
        SuggestionRequest,
        {**SUGGESTION, "customer_id": "C1\x00"},
        ("customer_id",),
        "control_character",
    ),
    "tab before customer": (
        ScoresRequest,
        {"customer_id": "\tC1"},
        ("customer_id",),
        "control_character",
    ),
    "newline in agent": (
        SuggestionRequest,
        {**SUGGESTION, "context": {**CONTEXT, "agent_id": "agent-1\n"}},
        ("context", "agent_id"),
        "control_character",
    ),
    "escape in channel": (
        SuggestionRequest,
        {**SUGGESTION, "context": {**CONTEXT, "channel": "phone\x1b[31m"}},
        ("context", "channel"),
        "control_character",
    ),
    "C1 control in call reason": (
        SuggestionRequest,
        {**SUGGESTION, "context": {**CONTEXT, "call_reason": "complaint\x85"}},
        ("context", "call_reason"),
        "control_character",
    ),
    "pressure as a number": (
        SuggestionRequest,
        {**SUGGESTION, "context": {**CONTEXT, "queue_pressure": 1}},
        ("context", "queue_pressure"),
        "literal_error",
    ),
    "unknown field": (
        SuggestionRequest,
        {**SUGGESTION, "debug": True},
        ("debug",),
        "extra_forbidden",
    ),
    "scores without customer": (ScoresRequest, {}, ("customer_id",), "missing"),
    "scores unknown field": (
        ScoresRequest,
        {"customer_id": "C1", "as_of": "2026-06-30"},
        ("as_of",),
        "extra_forbidden",
    ),
    "unknown response": (
        FeedbackRequest,
        {**FEEDBACK, "response": "maybe"},
        ("response",),
        "literal_error",
    ),
    "long decision id": (
        FeedbackRequest,
        {**FEEDBACK, "decision_id": "d" * 65},
        ("decision_id",),
        "string_too_long",
    ),
    "empty suggestion id": (
        FeedbackRequest,
        {**FEEDBACK, "suggestion_id": ""},
        ("suggestion_id",),
        "string_too_short",
    ),
    "long note": (FeedbackRequest, {**FEEDBACK, "note": "n" * 2001}, ("note",), "string_too_long"),
    "DEL in decision id": (
        FeedbackRequest,
        {**FEEDBACK, "decision_id": "d-1\x7f"},
        ("decision_id",),
        "control_character",
    ),
    "NUL in suggestion id": (
        FeedbackRequest,
        {**FEEDBACK, "suggestion_id": "\x00"},
        ("suggestion_id",),
        "control_character",
    ),
    "NUL in note": (
        FeedbackRequest,
        {**FEEDBACK, "note": "ok\x00"},
        ("note",),
        "control_character",
    ),
    "response as a number": (
        FeedbackRequest,
        {**FEEDBACK, "response": 1},
        ("response",),
        "literal_error",
    ),
    "feedback without agent": (
        FeedbackRequest,
        {k: v for k, v in FEEDBACK.items() if k != "agent_id"},
        ("agent_id",),
        "missing",
    ),
    "reload with a field": (ReloadRequest, {"force": True}, ("force",), "extra_forbidden"),
}


@pytest.mark.parametrize("mode", ["json", "python"])
@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_a_bad_request_is_refused_with_the_field_named(case, mode):
    # BentoML validates the body's JSON text; the python mode is what other callers use
    model, payload, loc, kind = BAD_REQUESTS[case]
    with pytest.raises(ValidationError) as caught:
        if mode == "json":
            model.model_validate_json(json.dumps(payload))
        else:
            model.model_validate(payload)
    [error] = caught.value.errors()
    assert (error["loc"], error["type"]) == (loc, kind), error
    assert ".".join(loc) in str(caught.value), f"the message names the field: {caught.value}"


def test_a_validation_message_never_carries_the_input():
    # Given a request whose bad values could be customer data
    payload = {
        "customer_id": "C-SECRET-1",
        "context": {**CONTEXT, "queue_pressure": "SECRET-PRESSURE"},
        "max_suggestions": "SECRET-COUNT",
    }
    with pytest.raises(ValidationError) as caught:
        SuggestionRequest.model_validate(payload)
    message = str(caught.value)
    assert "context.queue_pressure" in message and "max_suggestions" in message, message
    assert "SECRET" not in message, f"the input reaches the log through the message: {message}"


def test_free_text_keeps_its_tabs_and_line_breaks():
    note = "called back twice\n\tthen asked for a letter\r\n"
    request = FeedbackRequest.model_validate({**FEEDBACK, "note": note})
    assert request.note == note.strip(), "only the ends are trimmed, as for every string"


SAMPLES = ["C1", "agent-042", "é ü 中", "a b", "C\x00", "\tC1", "a\nb", "\x1b[0m", "\x7f", "x\x85"]


@pytest.mark.parametrize(
    ("model", "payload", "field"),
    [
        (SuggestionRequest, SUGGESTION, "customer_id"),
        (ScoresRequest, {"customer_id": "C1"}, "customer_id"),
        (ContactContext, CONTEXT, "channel"),
        (ContactContext, CONTEXT, "call_reason"),
        (ContactContext, CONTEXT, "agent_id"),
        (FeedbackRequest, FEEDBACK, "decision_id"),
        (FeedbackRequest, FEEDBACK, "suggestion_id"),
        (FeedbackRequest, FEEDBACK, "agent_id"),
        (FeedbackRequest, FEEDBACK, "note"),
    ],
)
def test_the_documented_pattern_is_the_rule_the_service_applies(model, payload, field):
    # Given the pattern the OpenAPI document shows for a text field
    schema = model.model_json_schema()["properties"][field]
    [pattern] = {s["pattern"] for s in [schema, *schema.get("anyOf", [])] if "pattern" in s}
    for value in SAMPLES:
        # when a request carries a value, then it is accepted exactly when it matches
        documented = re.fullmatch(pattern, value) is not None
        try:
            model.model_validate_json(json.dumps({**payload, field: value}))
            accepted = True
        except ValidationError:
            accepted = False
        assert accepted == documented, f"{field}={value!r}: accepted {accepted}, pattern {pattern}"


def test_bentomls_400_body_is_an_error_response():
    # Given the body BentoML answers for a request that does not validate (its http_app)
    with pytest.raises(ValidationError) as caught:
        SuggestionRequest.model_validate_json('{"customer_id": "C\\u0000", "max_suggestions": "2"}')
    exc = caught.value
    body = {
        "error": f"{exc.error_count()} validation error for {exc.title}",
        "detail": exc.errors(include_context=False, include_input=False),
    }
    sent = json.loads(json.dumps(body))
    # then it reads as the documented ErrorResponse, each field named, nothing lost
    error = ErrorResponse.model_validate(sent)
    assert [tuple(d.loc) for d in error.detail] == [
        ("customer_id",),
        ("context",),
        ("max_suggestions",),
    ], error.detail
    assert error.model_dump(mode="json", exclude_none=True) == sent


def test_a_good_request_is_trimmed_and_gets_the_documented_defaults():
    request = SuggestionRequest.model_validate(
        {"customer_id": "  C1 ", "context": {"channel": " phone", "agent_id": "agent-1"}}
    )
    assert request.customer_id == "C1" and request.context.channel == "phone", "whitespace trimmed"
    assert request.max_suggestions is None, "none asked: the queue pressure's list length"
    assert (request.context.queue_pressure, request.context.call_reason) == ("normal", None)
