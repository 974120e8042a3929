"""The OpenAPI document at ``/docs.json``: BentoML's, completed with the rest of the contract.

BentoML writes the paths and the schemas from the routes and the models of ``serving.api``.
It cannot know the rest of what the agent desktop codes against, which
``complete_document`` adds to a copy of its document:

- the bearer security scheme, on every ``/v1/`` operation and ``/metrics`` (the probes and
  the document itself stay open);
- the package version (BentoML says "None" outside a built bento) and Tierwise's own
  description;
- every status each route answers, each with the ``ErrorResponse`` schema, an example and
  its headers (``WWW-Authenticate`` on 401, ``Retry-After`` on 429 and 503). BentoML's
  own 400 schema says ``detail`` is a string, while its 400 body sends a list;
- the request and response schemas by reference to the components, which keep the
  ``null`` of optional fields (BentoML's inline copies drop it), named request examples,
  and ``openapi: 3.1.0``: pydantic writes JSON Schema 2020-12 (``type: null``,
  ``examples``), which is OpenAPI 3.1's schema language, not 3.0's.

``OpenApiDocument`` is the ASGI middleware that answers ``GET /docs.json`` with it, computed
once from BentoML's own answer on that route.
"""

from __future__ import annotations

import copy
import inspect
import json
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.api import (
    ErrorResponse,
    FeedbackRequest,
    ScoresRequest,
    SuggestionRequest,
)

DOCUMENT_PATH = "/docs.json"
OPENAPI_VERSION = "3.1.0"
SECURITY_SCHEME = "bearer"
SECURED_PREFIX = "/v1/"
METRICS_PATH = "/metrics"
SCHEMAS = "#/components/schemas/"
BENTOML_ERRORS = ("InvalidArgument", "NotFound", "InternalServerError")

DESCRIPTION = """\
Next best actions, scores and feedback for the agent desktop.

Every `/v1/` route needs `Authorization: Bearer <API key>` (401 without a valid one);
`/v1/admin/` and `/metrics` need an admin key (`TIERWISE_ADMIN_KEYS`, 403 for an agent
key). `/livez`, `/readyz` and this document are open. Bodies are JSON objects of at most
64 KiB, validated strictly: unknown fields are refused, numbers must be JSON numbers (not
`"2"` or `true`), and ids must not contain control characters.

Every refusal is a JSON `ErrorResponse`: `{"error": "..."}`, and for a body that does not
validate (400) a `detail` list naming each field. 429 and 503 carry `Retry-After` (seconds).
Every answer reports the model versions it used.
"""


@dataclass(frozen=True)
class Refusal:
    """One documented error answer: when it happens, an example message, its headers."""

    description: str
    message: str
    headers: tuple[str, ...] = ()


HEADERS: dict[str, dict[str, Any]] = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
        "example": 1,
    },
    "WWW-Authenticate": {
        "description": "The authentication scheme to use: Bearer.",
        "required": True,
        "schema": {"type": "string"},
        "example": "Bearer",
    },
}

# What any /v1/ route can answer besides its own refusals (ROUTE_REFUSALS).
COMMON_REFUSALS: dict[int, Refusal] = {
    400: Refusal(
        "The body does not validate (broken JSON, a missing, unknown or mistyped field, "
        "a value out of range, a control character in an id): `detail` names each field "
        "and problem; the input is never echoed.",
        "1 validation error for SuggestionRequest",
    ),
    401: Refusal(
        "No API key, or not a valid one.",
        "missing or invalid API key: send 'Authorization: Bearer <key>'",
        ("WWW-Authenticate",),
    ),
    413: Refusal("The body is over 64 KiB.", "request body over 65536 bytes"),
    415: Refusal("The body is not application/json.", "send the request body as application/json"),
    429: Refusal(
        "The worker is at its limit of requests in flight: retry after Retry-After seconds.",
        "too many requests in flight: retry shortly",
        ("Retry-After",),
    ),
    500: Refusal(
        "An unexpected failure, logged by the service.",
        "An unexpected error has occurred, please check the server log.",
    ),
    503: Refusal(
        "The service is starting, or a store the route needs is unavailable: retry after "
        "Retry-After seconds (a retried feedback is stored once).",
        "the decision log is unavailable: retry shortly",
        ("Retry-After",),
    ),
    504: Refusal(
        "No answer within the request timeout (10 s).",
        "Not able to process the request in 10.0 seconds",
    ),
}
_UNKNOWN_CUSTOMER = Refusal(
    "The customer_id is not in the online store.", "unknown customer_id: not in the online store"
)
ROUTE_REFUSALS: dict[str, dict[int, Refusal]] = {
    "/v1/suggestions": {404: _UNKNOWN_CUSTOMER},
    "/v1/scores": {404: _UNKNOWN_CUSTOMER},
    "/v1/feedback": {
        404: Refusal("No decision has this decision_id.", "unknown decision_id"),
        409: Refusal(
            "Feedback with another response was already recorded for this suggestion "
            "(the same response again is a retry: 200 with created=false).",
            "feedback for this suggestion was already recorded as 'accepted'",
        ),
        422: Refusal(
            "The decision did not show this suggestion_id.",
            "suggestion_id is not part of this decision",
        ),
    },
    "/v1/admin/reload": {
        403: Refusal(
            "An agent key: reloading needs an admin key (TIERWISE_ADMIN_KEYS).",
            "this route needs an admin key (TIERWISE_ADMIN_KEYS)",
        ),
        409: Refusal(
            "A reload is already running, or the new champions cannot be served (e.g. a "
            "model file that fails its check, an online store that needs a rebuild); the "
            "previous ones keep serving.",
            "a reload is already running",
        ),
    },
}
METRICS_REFUSALS: dict[int, Refusal] = {
    401: COMMON_REFUSALS[401],
    403: Refusal(
        "An agent key: the metrics need a metrics or admin key.",
        "this route needs an admin key (TIERWISE_ADMIN_KEYS)",
    ),
}


def _example(model: type, **changes: Any) -> dict[str, Any]:
    return {**model.model_config["json_schema_extra"]["example"], **changes}


_SUGGESTION = _example(SuggestionRequest)
REQUEST_EXAMPLES: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "/v1/suggestions": {
        "complaint": ("A phone call about a complaint, normal queue", _SUGGESTION),
        "busy_queue": (
            "High queue pressure: at most one suggestion worth the time",
            {
                "customer_id": "C0000042",
                "context": {**_SUGGESTION["context"], "queue_pressure": "high"},
            },
        ),
    },
    "/v1/scores": {"customer": ("A customer's card and scores", _example(ScoresRequest))},
    "/v1/feedback": {
        "declined": ("The customer said no", _example(FeedbackRequest)),
        "skipped": (
            "The agent chose not to raise it (never counts against the offer)",
            _example(FeedbackRequest, response="skipped", note=None),
        ),
    },
    "/v1/admin/reload": {"reload": ("No fields", {})},
}
# What each route's 400 looks like for a typical mistake: BentoML's body, word for word
# ("2 validation error" too), with pydantic's messages.
_PYDANTIC = "https://errors.pydantic.dev/2.14/v/"
VALIDATION_EXAMPLES: dict[str, dict[str, Any]] = {
    "/v1/suggestions": {
        "error": "1 validation error for SuggestionRequest",
        "detail": [
            {
                "type": "int_type",
                "loc": ["max_suggestions"],
                "msg": "Input should be a valid integer",
                "url": _PYDANTIC + "int_type",
            }
        ],
    },
    "/v1/scores": {
        "error": "1 validation error for ScoresRequest",
        "detail": [
            {
                "type": "control_character",
                "loc": ["customer_id"],
                "msg": "String should not contain control characters",
            }
        ],
    },
    "/v1/feedback": {
        "error": "2 validation error for FeedbackRequest",
        "detail": [
            {
                "type": "literal_error",
                "loc": ["response"],
                "msg": "Input should be 'accepted', 'declined', 'skipped' or 'not_shown'",
                "url": _PYDANTIC + "literal_error",
            },
            {
                "type": "missing",
                "loc": ["agent_id"],
                "msg": "Field required",
                "url": _PYDANTIC + "missing",
            },
        ],
    },
    "/v1/admin/reload": {
        "error": "1 validation error for ReloadRequest",
        "detail": [
            {
                "type": "extra_forbidden",
                "loc": ["force"],
                "msg": "Extra inputs are not permitted",
                "url": _PYDANTIC + "extra_forbidden",
            }
        ],
    },
}


def complete_document(document: dict[str, Any], version: str) -> dict[str, Any]:
    """BentoML's OpenAPI ``document`` completed with the contract (a new dict).

    ``version`` is the package version (``package_version()``). See the module docstring
    for what is added; the input is not modified.
    """
    doc = copy.deepcopy(document)
    doc["openapi"] = OPENAPI_VERSION
    doc["info"] = {**doc.get("info", {}), "title": "Tierwise", "version": version}
    doc["info"]["description"] = DESCRIPTION
    doc["info"].pop("contact", None)  # BentoML's team, not who answers for this API
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(_error_schemas())
    components["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: an agent key (TIERWISE_API_KEYS) for /v1/, an admin "
            "key (TIERWISE_ADMIN_KEYS) for /v1/admin/ and /metrics.",
        }
    }
    for path, item in doc.get("paths", {}).items():
        for operation in item.values():
            if path.startswith(SECURED_PREFIX):
                _complete_api_operation(path, operation, schemas)
            elif path == METRICS_PATH:
                operation["security"] = [{SECURITY_SCHEME: []}]
                operation.setdefault("responses", {}).update(_responses(METRICS_REFUSALS))
    for name in BENTOML_ERRORS:
        if name in schemas and f'"{SCHEMAS}{name}"' not in json.dumps(doc["paths"]):
            del schemas[name]
    return doc


def _complete_api_operation(path: str, operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    operation["security"] = [{SECURITY_SCHEME: []}]
    if operation.get("description"):  # a handler's docstring, with its source indentation
        operation["description"] = inspect.cleandoc(operation["description"])
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        body["schema"] = _by_reference(body.get("schema", {}), schemas)
        target = schemas.get(_referenced(body["schema"]) or "", {})
        if target.get("required"):
            operation["requestBody"]["required"] = True
        named = REQUEST_EXAMPLES.get(path, {})
        if named:
            body["examples"] = {
                key: {"summary": summary, "value": value} for key, (summary, value) in named.items()
            }
    # BentoML's successes stay (by reference); its error answers are replaced.
    responses = {
        str(status): answer
        for status, answer in operation.get("responses", {}).items()
        if str(status).startswith("2")
    }
    for answer in responses.values():
        media = answer.get("content", {}).get("application/json")
        if media is not None and "schema" in media:
            media["schema"] = _by_reference(media["schema"], schemas)
    responses.update(_responses({**COMMON_REFUSALS, **ROUTE_REFUSALS.get(path, {})}, path))
    operation["responses"] = responses


def _responses(refusals: dict[int, Refusal], path: str = "") -> dict[str, Any]:
    """OpenAPI responses (keys are status strings, as in JSON) for ``refusals``."""
    out = {}
    for status, refusal in sorted(refusals.items()):
        example = {"error": refusal.message}
        if status == 400 and path in VALIDATION_EXAMPLES:
            example = VALIDATION_EXAMPLES[path]
        answer: dict[str, Any] = {
            "description": refusal.description,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"{SCHEMAS}ErrorResponse"},
                    "example": example,
                }
            },
        }
        if refusal.headers:
            answer["headers"] = {h: HEADERS[h] for h in refusal.headers}
        out[str(status)] = answer
    return out


def _error_schemas() -> dict[str, Any]:
    """``ErrorResponse`` and the models it uses, as component schemas."""
    schema = ErrorResponse.model_json_schema(ref_template=SCHEMAS + "{model}")
    defs = schema.pop("$defs", {})
    return {**defs, "ErrorResponse": schema}


def _by_reference(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """A reference to the component of the same title, if there is one, else ``schema``."""
    title = schema.get("title")
    return {"$ref": SCHEMAS + title} if title in schemas and "$ref" not in schema else schema


def _referenced(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref", "")
    return ref.removeprefix(SCHEMAS) if ref.startswith(SCHEMAS) else None


def package_version() -> str:
    """The installed version of the tierwise package."""
    try:
        return metadata.version("tierwise")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


class OpenApiDocument:
    """ASGI middleware: ``GET /docs.json`` answers the completed document.

    The first request asks the app behind (BentoML's own route) for its document and
    completes it; the result is kept for every later request. An error from BentoML is
    passed on as it is and not kept. Other requests pass untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._body: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != DOCUMENT_PATH
            or scope.get("method") not in ("GET", "HEAD")
        ):
            return await self.app(scope, receive, send)
        if self._body is None:
            messages = await _collect(self.app, {**scope, "method": "GET"}, receive)
            start = messages[0] if messages else {}
            if start.get("status") != 200:
                for message in messages:
                    await send(message)
                return
            body = b"".join(m.get("body", b"") for m in messages[1:])
            completed = complete_document(json.loads(body), package_version())
            self._body = json.dumps(completed).encode()
        await Response(self._body, media_type="application/json")(scope, receive, send)


async def _collect(app: ASGIApp, scope: Scope, receive: Receive) -> list[Message]:
    """Every message ``app`` sends for ``scope``, in order (a whole response)."""
    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, send)
    return messages
