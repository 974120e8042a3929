"""The OpenAPI document: BentoML's, completed with security, version, every status and examples;
and the middleware that serves it once computed."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from serving.api import (
    FeedbackRequest,
    FeedbackResponse,
    ReloadRequest,
    ReloadResponse,
    ScoresRequest,
    ScoresResponse,
    SuggestionRequest,
    SuggestionResponse,
)
from serving.openapi import (
    COMMON_REFUSALS,
    ROUTE_REFUSALS,
    OpenApiDocument,
    complete_document,
    package_version,
)

REF = "#/components/schemas/{model}"
ROUTES = {
    "/v1/suggestions": (SuggestionRequest, SuggestionResponse),
    "/v1/scores": (ScoresRequest, ScoresResponse),
    "/v1/feedback": (FeedbackRequest, FeedbackResponse),
    "/v1/admin/reload": (ReloadRequest, ReloadResponse),
}
PROBES = ("/livez", "/readyz")


def bentoml_document() -> dict[str, Any]:
    """A document shaped as BentoML 1.4 writes it: inline request and response schemas, its
    own error schemas (``detail`` a string), version "None", as served (string keys)."""
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for route, (request, response) in ROUTES.items():
        for model in (request, response):
            schema = model.model_json_schema(ref_template=REF)
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        paths[route] = {
            "post": {
                "responses": {
                    "200": {
                        "description": "Successful Response",
                        "content": {"application/json": {"schema": _inline(response)}},
                    },
                    "400": _bentoml_error("InvalidArgument"),
                    "404": _bentoml_error("NotFound"),
                    "500": _bentoml_error("InternalServerError"),
                },
                "description": "A handler's docstring,\n        indented as in its source.",
                "requestBody": {"content": {"application/json": {"schema": _inline(request)}}},
                "operationId": f"tierwise__{route.rsplit('/', 1)[-1]}",
            }
        }
    for path in (*PROBES, "/metrics"):
        paths[path] = {"get": {"responses": {"200": {"description": "Successful Response"}}}}
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):
        schemas[name] = {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
        }
    return json.loads(
        json.dumps(
            {
                "openapi": "3.0.2",
                "info": {
                    "title": "tierwise",
                    "version": "None",
                    "description": "# tierwise:dev\n\nThis is a Machine Learning Service...",
                    "contact": {"name": "BentoML Team", "email": "contact@bentoml.com"},
                },
                "servers": [{"url": "."}],
                "paths": paths,
                "components": {"schemas": schemas},
            }
        )
    )


def _inline(model) -> dict[str, Any]:
    """BentoML's inline copy of a model's schema (its optional fields lose their null)."""
    schema = model.model_json_schema(ref_template=REF)
    schema.pop("$defs", None)
    return schema


def _bentoml_error(name: str) -> dict[str, Any]:
    return {
        "description": name,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=name)}}},
    }


@pytest.fixture(scope="module")
def completed() -> dict[str, Any]:
    return complete_document(bentoml_document(), "1.2.3")


def operation(doc: dict[str, Any], route: str) -> dict[str, Any]:
    return doc["paths"][route]["post"]


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema validator for ``schema`` whose references resolve in ``doc``."""
    return Draft202012Validator({**schema, "components": doc["components"]})


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in references(value)]
    if isinstance(node, list):
        return [r for value in node for r in references(value)]
    return []


# -- what the document says ---------------------------------------------------------------------


def test_the_version_is_the_packages_and_the_description_tierwises(completed):
    info = completed["info"]
    assert (info["title"], info["version"]) == ("Tierwise", "1.2.3")
    assert "Authorization: Bearer" in info["description"], "the description says how to call"
    assert "contact" not in info, "BentoML's team is not who answers for this API"


def test_the_document_declares_openapi_3_1_the_dialect_of_pydantics_schemas(completed):
    # pydantic writes JSON Schema 2020-12 (anyOf with type null, examples lists)
    assert completed["openapi"] == "3.1.0"
    nullable = completed["components"]["schemas"]["SuggestionRequest"]["properties"]
    assert {"type": "null"} in nullable["max_suggestions"]["anyOf"]


def test_every_v1_operation_needs_the_bearer_key_and_the_probes_stay_open(completed):
    scheme = completed["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for route in ROUTES:
        assert operation(completed, route)["security"] == [{"bearer": []}], route
    for probe in PROBES:
        assert "security" not in completed["paths"][probe]["get"], f"{probe} stays open"
    assert "security" not in completed, "no document-wide requirement: the probes are open"
    assert completed["paths"]["/metrics"]["get"]["security"] == [{"bearer": []}]


@pytest.mark.parametrize("route", ROUTES)
def test_every_status_a_route_answers_is_documented_with_the_error_schema(completed, route):
    responses = operation(completed, route)["responses"]
    expected = {"200", *map(str, COMMON_REFUSALS), *map(str, ROUTE_REFUSALS[route])}
    assert set(responses) == expected, f"{route}: {sorted(responses)}"
    for status, answer in responses.items():
        if status == "200":
            continue
        media = answer["content"]["application/json"]
        assert media["schema"] == {"$ref": REF.format(model="ErrorResponse")}, status
        assert answer["description"] and media["example"]["error"], status


def test_each_route_documents_its_own_refusals():
    assert set(ROUTE_REFUSALS["/v1/suggestions"]) == {404}
    assert set(ROUTE_REFUSALS["/v1/scores"]) == {404}
    assert set(ROUTE_REFUSALS["/v1/feedback"]) == {404, 409, 422}
    assert set(ROUTE_REFUSALS["/v1/admin/reload"]) == {403, 409}, "agent keys may not reload"
    assert {400, 401, 413, 415, 429, 503, 504} <= set(COMMON_REFUSALS)


@pytest.mark.parametrize(("status", "header"), [("429", "Retry-After"), ("503", "Retry-After")])
def test_overload_and_outages_tell_the_client_when_to_retry(completed, status, header):
    for route in ROUTES:
        documented = operation(completed, route)["responses"][status]["headers"][header]
        assert documented["required"] and documented["schema"]["type"] == "integer", route


def test_a_401_names_the_scheme_to_use(completed):
    for route in ROUTES:
        headers = operation(completed, route)["responses"]["401"]["headers"]
        assert headers["WWW-Authenticate"]["required"], route


def test_bentomls_400_body_matches_the_documented_400_schema(completed):
    # Given the body BentoML sends for a request that does not validate
    with pytest.raises(ValidationError) as caught:
        SuggestionRequest.model_validate_json('{"customer_id": 7, "context": {}}')
    exc = caught.value
    body = json.loads(
        json.dumps(
            {
                "error": f"{exc.error_count()} validation error for {exc.title}",
                "detail": exc.errors(include_context=False, include_input=False),
            }
        )
    )
    # then it is valid against the schema the document gives the 400
    schema = operation(completed, "/v1/suggestions")["responses"]["400"]["content"]
    errors = list(validator(completed, schema["application/json"]["schema"]).iter_errors(body))
    assert not errors, [e.message for e in errors]
    # and BentoML's own schema, which says detail is a string, is gone
    assert "InvalidArgument" not in completed["components"]["schemas"]


def test_every_example_in_the_document_is_valid_against_its_schema(completed):
    checked = 0
    for route in ROUTES:
        op = operation(completed, route)
        media = op["requestBody"]["content"]["application/json"]
        for name, named in media["examples"].items():
            errors = list(validator(completed, media["schema"]).iter_errors(named["value"]))
            assert not errors, f"{route} example {name}: {[e.message for e in errors]}"
            checked += 1
        for status, answer in op["responses"].items():
            for media in answer.get("content", {}).values():
                if "example" in media:
                    errors = list(
                        validator(completed, media["schema"]).iter_errors(media["example"])
                    )
                    assert not errors, f"{route} {status}: {[e.message for e in errors]}"
                    checked += 1
    assert checked > 4 * len(COMMON_REFUSALS), checked


def test_requests_and_successes_refer_to_the_components_which_keep_null(completed):
    for route, (request, response) in ROUTES.items():
        op = operation(completed, route)
        body = op["requestBody"]["content"]["application/json"]["schema"]
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert body == {"$ref": REF.format(model=request.__name__)}, route
        assert ok == {"$ref": REF.format(model=response.__name__)}, route
    assert operation(completed, "/v1/feedback")["requestBody"]["required"] is True
    assert "required" not in operation(completed, "/v1/admin/reload")["requestBody"], "{} is fine"


def assert_references_resolve(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for ref in references(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[-1] in schemas, ref


def test_every_reference_resolves(completed):
    assert_references_resolve(completed)


def test_handler_docstrings_lose_their_source_indentation(completed):
    description = operation(completed, "/v1/scores")["description"]
    assert description == "A handler's docstring,\nindented as in its source."


def test_the_input_is_left_as_it_was_and_completing_twice_changes_nothing():
    document = bentoml_document()
    before = copy.deepcopy(document)
    once = complete_document(document, "1.2.3")
    assert document == before, "BentoML's document is not modified"
    assert complete_document(once, "1.2.3") == once


def test_bentomls_own_document_is_completed_for_every_route():
    # Given the document BentoML generates for the service itself (BentoML and the service)
    from serving.service import Tierwise

    generated = json.loads(json.dumps(Tierwise.openapi_spec.asdict()))
    # when it is completed, then every route has its statuses and every reference resolves
    doc = complete_document(generated, package_version())
    for route in ROUTES:
        expected = {"200", *map(str, COMMON_REFUSALS), *map(str, ROUTE_REFUSALS[route])}
        assert set(operation(doc, route)["responses"]) == expected, route
        assert operation(doc, route)["security"] == [{"bearer": []}], route
    assert_references_resolve(doc)
    assert doc["info"]["version"] not in ("", "None")


# -- serving it ---------------------------------------------------------------------------------


def bentoml_app(calls: list[str], status: int = 200) -> Starlette:
    """An app standing for BentoML's: its /docs.json route, and a probe."""

    async def docs(request: Request) -> JSONResponse:
        calls.append(request.method)
        if status != 200:
            return JSONResponse({"error": "Failed to generate OpenAPI spec"}, status_code=status)
        return JSONResponse(bentoml_document())

    async def livez(request: Request) -> PlainTextResponse:
        return PlainTextResponse("alive")

    return Starlette(routes=[Route("/docs.json", docs), Route("/livez", livez)])


def call(app, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """One request through the ASGI ``app``: status, headers and body."""
    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    messages: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        messages.append(message)

    asyncio.run(app(scope, receive, send))
    start, *rest = messages
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in rest)


def test_the_completed_document_is_computed_once_and_served_to_every_request():
    calls: list[str] = []
    app = OpenApiDocument(bentoml_app(calls))
    (status, headers, first), (_, _, second) = (
        call(app, "GET", "/docs.json"),
        call(app, "GET", "/docs.json"),
    )
    assert status == 200 and headers["content-type"] == "application/json"
    expected = complete_document(bentoml_document(), package_version())
    assert json.loads(first) == json.loads(second) == expected
    assert calls == ["GET"], "BentoML's document is asked for once"


def test_other_requests_pass_untouched():
    app = OpenApiDocument(bentoml_app([]))
    assert call(app, "GET", "/livez")[2] == b"alive"
    assert call(app, "POST", "/docs.json")[0] == 405, "BentoML's answer to a POST"


def test_a_failure_to_generate_the_document_is_passed_on_and_not_kept():
    calls: list[str] = []
    app = OpenApiDocument(bentoml_app(calls, status=500))
    for _ in range(2):
        status, _, body = call(app, "GET", "/docs.json")
        assert (status, json.loads(body)) == (500, {"error": "Failed to generate OpenAPI spec"})
    assert len(calls) == 2, "a failure is not kept: the next request asks again"
