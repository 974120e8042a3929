"""The running service against its own OpenAPI document, fuzzed by schemathesis.

`tierwise serve` on 127.0.0.1 (the `server` fixture of test_service.py; this module gets its
own instance) answers ``CASES`` generated requests per /v1/ operation, schemathesis's valid
and invalid ones alike, with the bearer key. No answer may be a 5xx, and every answer must
have a documented status, content type and headers and a body that matches the documented
schema. Some generated bodies get the id of a real customer, or of a real decision and one
of its suggestions, so that success answers are checked too, not only 404s; the reload is
sent with the admin key.
Traffic goes to 127.0.0.1 only.

The cases are drawn with hypothesis from each operation's strategy
(``APIOperation.as_strategy``), not by ``schemathesis.pytest.from_fixture``: that loader
needs ``Node._nodeid``, which pytest 9.2 no longer has.
"""

from __future__ import annotations

import time
from collections import Counter

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from schemathesis import GenerationMode, checks
from schemathesis.core import NotSet

from serving.api import ReloadRequest
from serving.openapi import package_version
from tests.integration.test_service import ADMIN_KEY, KEY, ROUTES, Server, ask
from tests.integration.test_service import server as server  # the fixture: our own server

CASES = 200  # per operation
CUSTOMERS = 40
DECISIONS = 20
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_schema(server: Server) -> schemathesis.BaseSchema:
    """The document the service serves at /docs.json, aimed at the service."""
    schema = schemathesis.openapi.from_url(f"{server.url}/docs.json", timeout=30)
    schema.config.update(base_url=server.url)
    return schema


@pytest.fixture(scope="module")
def real_ids(server: Server) -> dict[str, list]:
    """Customers in the online store, and (decision_id, suggestion_id) pairs shown to some."""
    customers = server.take(CUSTOMERS)
    pairs = []
    with server.client() as http:
        for customer_id in customers[:DECISIONS]:
            response = ask(http, customer_id)
            assert response.status_code == 200, response.text
            decision = response.json()
            pairs += [
                (decision["decision_id"], s["suggestion_id"]) for s in decision["suggestions"]
            ]
    assert pairs, "some decisions show a suggestion, so feedback is fuzzed on real ones too"
    return {"customers": customers, "pairs": pairs}


def with_real_ids(body: object, ids: dict[str, list]) -> st.SearchStrategy:
    """``body`` as generated, or with a real customer, or a real decision and suggestion."""
    if not isinstance(body, dict):
        return st.just(body)
    if "customer_id" in body:
        real = st.sampled_from(ids["customers"]).map(lambda c: {**body, "customer_id": c})
    elif "decision_id" in body or "suggestion_id" in body:
        real = st.sampled_from(ids["pairs"]).map(
            lambda p: {**body, "decision_id": p[0], "suggestion_id": p[1]}
        )
    else:
        return st.just(body)
    return st.one_of(st.just(body), real)


def fuzz(operation, ids: dict[str, list], key: str = KEY) -> Counter:
    """Send the documented examples and ``CASES`` generated requests to ``operation``.

    Returns the statuses answered; raises (hypothesis's report, with the request) on the
    first answer a check refuses.
    """
    statuses: Counter = Counter()
    auth = {"Authorization": f"Bearer {key}"}  # over any the case drew from the scheme
    if operation.path in SAME_VALID_REQUEST:
        model = SAME_VALID_REQUEST[operation.path]
        generated = operation.as_strategy(GenerationMode.NEGATIVE).filter(
            lambda case: not is_valid(model, case.body)
        )
    else:
        generated = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

    def real(case):
        return with_real_ids(case.body, ids).map(lambda body: _with_body(case, body))

    @settings(
        max_examples=CASES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
    )
    @given(case=generated.flatmap(real))
    def exchange(case) -> None:
        response = case.call_and_validate(headers=auth, checks=CHECKS, timeout=15)
        statuses[response.status_code] += 1

    for body in documented_examples(operation):
        exchange = example(case=operation.Case(body=body, media_type="application/json"))(exchange)
    exchange()
    return statuses


def documented_examples(operation) -> list:
    """The request bodies of the operation's named examples in the document."""
    media = operation.definition.raw["requestBody"]["content"]["application/json"]
    return [named["value"] for named in media.get("examples", {}).values()]


def _with_body(case, body):
    case.body = body
    return case


# Every valid reload is the same request ({} or no body: no fields), and each one reloads
# every model: the documented example sends it once, and the generated ones are all invalid.
SAME_VALID_REQUEST = {"/v1/admin/reload": ReloadRequest}


def is_valid(model, body: object) -> bool:
    """Whether the service would accept ``body`` (no body reads as ``{}``, as in BentoML)."""
    if isinstance(body, NotSet):
        body = {}
    try:
        if isinstance(body, bytes | str):
            model.model_validate_json(body or b"{}")
        else:
            model.model_validate(body)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("route", ROUTES)
def test_every_answer_is_documented_and_none_is_a_5xx(api_schema, real_ids, route):
    # Given the document's operation, when it gets CASES generated requests
    started = time.monotonic()
    key = ADMIN_KEY if route.startswith("/v1/admin/") else KEY  # an agent key: all 403
    statuses = fuzz(api_schema[route]["POST"], real_ids, key)
    took = time.monotonic() - started
    # then every one was answered as documented (fuzz raises otherwise), and enough were sent
    assert sum(statuses.values()) >= CASES, f"{route}: only {dict(statuses)} in {took:.1f} s"
    assert 400 in statuses, f"{route}: no invalid request was answered: {dict(statuses)}"
    assert 200 in statuses, f"{route}: no success body was checked: {dict(statuses)}"


def test_the_served_document_is_the_completed_one(server):
    # Given no key, when the document is asked for
    response = httpx.get(f"{server.url}/docs.json")
    # then it is BentoML's, completed by serving.openapi (registered in serving.service)
    assert response.status_code == 200, response.text
    spec = response.json()
    assert (spec["openapi"], spec["info"]["version"]) == ("3.1.0", package_version())
    assert "bearer" in spec["components"]["securitySchemes"]
    for route in ROUTES:
        operation = spec["paths"][route]["post"]
        assert operation["security"] == [{"bearer": []}], route
        assert {"400", "401", "413", "415", "429", "503", "504"} <= set(operation["responses"])
    assert "security" not in spec["paths"]["/livez"]["get"], "the probes stay open"
