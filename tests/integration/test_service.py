"""The real service over HTTP: `tierwise serve` on 127.0.0.1 with the session's trained models.

One server for the module (start-up is the slow part); tests use distinct customers so that
their decisions and feedback do not meet. The policy file sets a 20% control group, so the
control rate can be measured over a few hundred decisions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from batch.online import materialize
from models.registry import client, version_by_alias
from models.scoring import load_champions
from serving.decisions import DecisionLog
from serving.policy import is_control
from serving.service import CancellingTimeoutMiddleware, authorized, key_digests
from serving.store import OnlineStore, StoreMissingError
from serving.vocabulary import AGENT_REASONS

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-key-9f3b2c"
ADMIN_KEY = "test-admin-key-51d0"
CONTROL_SHARE = 0.2
READY_TIMEOUT_S = 240
ROUTES = ("/v1/suggestions", "/v1/scores", "/v1/feedback", "/v1/admin/reload")


@dataclass
class Server:
    url: str
    log: Path
    decisions_url: str
    customers: list[str]
    versions: dict[str, str]
    closed: list[str] = field(default_factory=list)  # closed recently: kept for win-back calls
    _next: int = field(default=0)

    def client(self, key: str | None = KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def take(self, n: int) -> list[str]:
        """Customers no other test has used."""
        out = self.customers[self._next : self._next + n]
        self._next += n
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_env(trained, tmp: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TIERWISE_") and k != "MLFLOW_TRACKING_URI"
    }
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "TIERWISE_HOME": str(trained.settings.home),
        "TIERWISE_API_KEYS": f"other-key,{KEY}",
        "TIERWISE_ADMIN_KEYS": ADMIN_KEY,
        "TIERWISE_ONLINE_STORE_URL": f"sqlite:///{tmp / 'online.db'}",
        "TIERWISE_DECISION_STORE_URL": f"sqlite:///{tmp / 'decisions.db'}",
        "BENTOML_DO_NOT_TRACK": "True",
        **extra,
    }


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("service")
    ds = trained.dataset()
    store = OnlineStore(f"sqlite:///{tmp / 'online.db'}")
    info = materialize(ds, ds.settings.data_end, load_champions(trained.settings), store, 365)
    policy = tmp / "policy.yaml"
    policy.write_text(f"control_share: {CONTROL_SHARE}\nwinback_rate: 0.05\n")
    port = free_port()
    log = tmp / "server.log"
    env = serve_env(trained, tmp, TIERWISE_POLICY_FILE=str(policy))
    command = [sys.executable, "-m", "tierwise", "serve", "--port", str(port)]
    with log.open("w") as sink:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, log)
        ids = store.customer_ids(limit=info.rows)
        closed = {c for c in ids if store.get(c).history.get("closed_date")}
        yield Server(
            url,
            log,
            env["TIERWISE_DECISION_STORE_URL"],
            [c for c in ids if c not in closed],
            info.model_versions,
            sorted(closed),
        )
    finally:
        stop(proc)


def wait_ready(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the service exited at start-up:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not ready in {READY_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the BentoML supervisor we started; it stops its worker."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def targets_of(versions: dict[str, str]) -> set[str]:
    """Model targets of registered names: ``tierwise-cross-sell-x`` -> ``cross_sell_x``."""
    return {name.removeprefix("tierwise-").replace("-", "_") for name in versions}


def ask(http: httpx.Client, customer_id: str, **changes) -> httpx.Response:
    context = {"channel": "phone", "agent_id": "agent-1", **changes.pop("context", {})}
    return http.post(
        "/v1/suggestions", json={"customer_id": customer_id, "context": context, **changes}
    )


def find_customers(server: Server, http: httpx.Client, n: int, min_suggestions: int = 1):
    """Unused customers with at least ``min_suggestions`` suggestions (all eligible shown)."""
    found = []
    while len(found) < n:
        [customer_id] = server.take(1)
        body = ask(http, customer_id, max_suggestions=10).json()
        if len(body["suggestions"]) >= min_suggestions:
            found.append((customer_id, body))
    return found


# -- health, documentation, auth ---------------------------------------------------------------


def test_probes_and_the_api_document_need_no_key(server):
    for path in ("/livez", "/readyz"):
        assert httpx.get(server.url + path).status_code == 200, path
    spec = httpx.get(server.url + "/docs.json").json()
    assert set(ROUTES) <= set(spec["paths"]), "every /v1/ route is in the OpenAPI document"
    request = spec["components"]["schemas"]["SuggestionRequest"]
    assert request["example"]["customer_id"], "request models carry an example"
    assert request["properties"]["max_suggestions"]["description"], "fields are described"
    assert "SuggestionResponse" in spec["components"]["schemas"]
    not_shown = spec["components"]["schemas"]["NotShownOut"]
    assert not_shown["example"]["reason"] and not_shown["properties"]["reason"]["description"]
    response = spec["components"]["schemas"]["SuggestionResponse"]
    assert response["properties"]["not_shown"]["description"], "not_shown is described"
    assert response["example"]["not_shown"], "and shown in the example"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}],
    ids=["none", "wrong-key", "not-bearer"],
)
def test_every_v1_route_refuses_requests_without_a_valid_key(server, route, headers):
    response = httpx.post(server.url + route, json={}, headers=headers)
    assert response.status_code == 401, f"{route} must refuse {headers}"
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key" in response.json()["error"]


def test_any_configured_key_is_accepted(server):
    [customer_id] = server.take(1)
    with server.client("other-key") as http:
        assert http.post("/v1/scores", json={"customer_id": customer_id}).status_code == 200


# -- the routes --------------------------------------------------------------------------------


def test_suggestions_answer_with_a_logged_decision(server):
    [customer_id] = server.take(1)
    with server.client() as http:
        response = ask(http, customer_id, context={"call_reason": "complaint"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == customer_id and len(body["decision_id"]) == 32
    assert body["model_versions"] == server.versions, "the pinned champion versions"
    assert 0 <= body["churn"]["probability"] <= 1 and body["churn"]["risk_band"] in (
        "low",
        "medium",
        "high",
    )
    assert body["tier"]["name"] and body["tier"]["reason"], "the tier comes with its reason"
    assert all(r["text"] for r in body["churn"]["reasons"]), "reasons are plain words"
    assert len(body["suggestions"]) <= 3, "max_suggestions defaults to 3"
    for s in body["suggestions"]:
        assert s["kind"] in ("retention", "upgrade", "cross_sell") and s["talking_points"]
        assert 0 < s["probability"] <= 1 and s["expected_value"] > 0
    logged = DecisionLog(server.decisions_url).get(body["decision_id"])
    assert logged is not None, "every answer is logged before it is returned"
    assert logged.customer_id == customer_id and logged.control == body["control_group"]
    assert logged.context["call_reason"] == "complaint"
    assert [s["suggestion_id"] for s in logged.suggestions] == [
        s["suggestion_id"] for s in body["suggestions"]
    ]
    assert set(logged.probabilities) == targets_of(server.versions), "every propensity logged"
    assert body["not_shown"], "the actions considered and not shown are listed"
    for n in body["not_shown"]:
        assert n["reason"] in AGENT_REASONS and n["detail"], n  # never a holdout
    assert [(n["action"], n["reason"]) for n in logged.not_shown] == [
        (n["action"], n["reason"]) for n in body["not_shown"]
    ], "the reasons are logged with the decision"


def test_every_action_is_shown_or_explained_and_an_empty_list_explains_itself(server):
    with server.client() as http:
        bodies = [ask(http, c, context={"queue_pressure": "high"}).json() for c in server.take(40)]
        cards = [
            http.post("/v1/scores", json={"customer_id": b["customer_id"]}).json() for b in bodies
        ]
    empty = [b for b in bodies if not b["suggestions"]]
    assert empty, "under high pressure some customers get nothing"
    for body, card in zip(bodies, cards, strict=True):
        considered = {"retention", "upgrade", *(c["product"] for c in card["cross_sell"])}
        listed = [s["action"] for s in body["suggestions"]] + [
            n["action"] for n in body["not_shown"]
        ]
        assert considered <= set(listed) and len(listed) == len(set(listed)), (
            f"{body['customer_id']}: each action once, shown or explained: {listed}"
        )
        held = {c["product"] for c in card["cross_sell"] if c["held"]}
        assert held <= {n["action"] for n in body["not_shown"] if n["reason"] == "already_held"}


def test_low_queue_pressure_widens_the_list(server):
    wider = 0
    with server.client() as http:
        for customer_id in server.take(30):
            full = len(ask(http, customer_id, max_suggestions=10).json()["suggestions"])
            normal = len(ask(http, customer_id).json()["suggestions"])
            low = len(
                ask(http, customer_id, context={"queue_pressure": "low"}).json()["suggestions"]
            )
            assert normal == min(3, full), "normal pressure: 3 by default"
            assert min(5, full) <= low <= 5, "low pressure: up to 5, at a lower minimum probability"
            wider += low > normal
    assert wider, "low pressure widens the list for some customers"


def test_scores_give_every_probability_without_a_decision(server):
    [customer_id] = server.take(1)
    before = DecisionLog(server.decisions_url).count()
    with server.client() as http:
        response = http.post("/v1/scores", json={"customer_id": customer_id})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["probabilities"]) == targets_of(server.versions), "one per champion model"
    assert all(p is None or 0 <= p <= 1 for p in body["probabilities"].values())
    for c in body["cross_sell"]:
        assert (c["probability"] is None) == c["held"], "no propensity for a product held"
    assert body["tier"]["reason"] and body["model_versions"] == server.versions
    assert DecisionLog(server.decisions_url).count() == before, "the card logs no decision"


def test_scores_carry_the_customer_card(server):
    [customer_id] = server.take(1)
    with server.client() as http:
        card = http.post("/v1/scores", json={"customer_id": customer_id}).json()["card"]
    assert card["status"] == "open" and card["closed_date"] is None
    assert card["basics"]["signup_date"] and card["basics"]["tenure_days"] > 0
    assert "age" not in card["basics"]["profile"], "a protected attribute is not shown"
    assert len(card["performance"]["value_trend"]) == 12
    assert card["performance"]["tier_reason"] and card["performance"]["tier_history"]
    assert 1 <= len(card["transactions"]) <= 5 and card["holdings"], card
    dates = [t["date"] for t in card["transactions"]]
    assert dates == sorted(dates, reverse=True), "latest first"
    assert set(card["satisfaction"]) >= {"last_score", "mean_score", "complaints_90d"}


def test_a_recently_closed_customer_gets_the_card_and_a_win_back_not_a_404(server):
    assert server.closed, "the demo base has customers who closed within the year"
    customer_id = server.closed[0]
    with server.client() as http:
        scores = http.post("/v1/scores", json={"customer_id": customer_id})
        decision = ask(http, customer_id)
    assert scores.status_code == 200, scores.text
    card = scores.json()["card"]
    assert card["status"] == "closed" and card["closed_date"], card
    assert decision.status_code == 200, decision.text
    body = decision.json()
    assert [s["action"] for s in body["suggestions"]] == ["win_back"], body["suggestions"]
    reasons = {n["action"]: n["reason"] for n in body["not_shown"]}
    assert reasons and all(r in ("closed", "already_held", "no_model") for r in reasons.values())
    assert "closed" in reasons.values(), body["not_shown"]


def test_an_unknown_customer_is_404_with_a_clear_message(server):
    with server.client() as http:
        for response in (
            ask(http, "no-such-customer"),
            http.post("/v1/scores", json={"customer_id": "no-such-customer"}),
        ):
            assert response.status_code == 404
            assert "unknown customer_id" in response.json()["error"]


BAD_SUGGESTIONS = {
    "missing customer": {"context": {"channel": "phone", "agent_id": "a"}},
    "missing context": {"customer_id": "C1"},
    "bad queue pressure": {
        "customer_id": "C1",
        "context": {"channel": "phone", "agent_id": "a", "queue_pressure": "extreme"},
    },
    "negative max": {
        "customer_id": "C1",
        "context": {"channel": "phone", "agent_id": "a"},
        "max_suggestions": -1,
    },
    "max too large": {
        "customer_id": "C1",
        "context": {"channel": "phone", "agent_id": "a"},
        "max_suggestions": 500,
    },
    "wrong type": {"customer_id": ["C1"], "context": {"channel": "phone", "agent_id": "a"}},
    "unknown field": {
        "customer_id": "C1",
        "context": {"channel": "phone", "agent_id": "a"},
        "debug": True,
    },
    "empty id": {"customer_id": "", "context": {"channel": "phone", "agent_id": "a"}},
}


@pytest.mark.parametrize("case", BAD_SUGGESTIONS, ids=list(BAD_SUGGESTIONS))
def test_malformed_suggestion_requests_are_400_with_the_field_named(server, case):
    with server.client() as http:
        response = http.post("/v1/suggestions", json=BAD_SUGGESTIONS[case])
    assert response.status_code == 400, f"{case}: {response.status_code} {response.text}"
    body = response.json()
    assert "validation error" in body["error"] and body["detail"][0]["loc"], body
    assert "input" not in body["detail"][0], "the input is not echoed back"


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"customer_id": ', "application/json", 400),
        (b"", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"customer_id=C1", "application/x-www-form-urlencoded", 415),
        (b"--x\r\n", "multipart/form-data; boundary=x", 415),
        (b"{}" + b" " * 70_000, "application/json", 413),
    ],
    ids=["broken-json", "empty", "array", "form", "multipart", "too-large"],
)
def test_bodies_that_are_not_a_json_request_are_4xx(server, content, content_type, status):
    with server.client() as http:
        response = http.post(
            "/v1/suggestions", content=content, headers={"Content-Type": content_type}
        )
    assert response.status_code == status, response.text


# -- feedback ----------------------------------------------------------------------------------


def test_feedback_is_durable_and_idempotent_per_suggestion(server):
    with server.client() as http:
        [(_, decision)] = find_customers(server, http, 1)
        suggestion = decision["suggestions"][0]["suggestion_id"]
        feedback = {
            "decision_id": decision["decision_id"],
            "suggestion_id": suggestion,
            "response": "accepted",
            "agent_id": "agent-1",
            "note": "will visit the branch",
        }
        first = http.post("/v1/feedback", json=feedback)
        retry = http.post("/v1/feedback", json=feedback)
        changed = http.post("/v1/feedback", json={**feedback, "response": "declined"})
    assert first.status_code == 200 and first.json()["created"] is True, first.text
    assert retry.status_code == 200 and retry.json()["created"] is False, "a retry is no new row"
    assert retry.json()["recorded_at"] == first.json()["recorded_at"]
    assert changed.status_code == 409, "a different answer for the same suggestion conflicts"
    rows = DecisionLog(server.decisions_url).feedback(decision["decision_id"])
    assert [(r.suggestion_id, r.response, r.note) for r in rows] == [
        (suggestion, "accepted", "will visit the branch")
    ], "exactly one committed row, readable by another connection"


def test_feedback_for_unknown_decisions_or_suggestions_is_refused(server):
    with server.client() as http:
        [(_, decision)] = find_customers(server, http, 1)
        base = {
            "decision_id": decision["decision_id"],
            "suggestion_id": decision["suggestions"][0]["suggestion_id"],
            "response": "skipped",
            "agent_id": "agent-1",
        }
        unknown_decision = http.post("/v1/feedback", json={**base, "decision_id": "f" * 32})
        foreign_suggestion = http.post("/v1/feedback", json={**base, "suggestion_id": "x" * 24})
        bad_response = http.post("/v1/feedback", json={**base, "response": "maybe"})
    assert unknown_decision.status_code == 404
    assert "unknown decision_id" in unknown_decision.json()["error"]
    assert foreign_suggestion.status_code == 422
    assert bad_response.status_code == 400
    assert DecisionLog(server.decisions_url).feedback(decision["decision_id"]) == []


def respond(http: httpx.Client, decision: dict, action: str, response: str) -> None:
    [s] = [s for s in decision["suggestions"] if s["action"] == action]
    answer = http.post(
        "/v1/feedback",
        json={
            "decision_id": decision["decision_id"],
            "suggestion_id": s["suggestion_id"],
            "response": response,
            "agent_id": "agent-1",
        },
    )
    assert answer.status_code == 200, answer.text


def actions(body: dict) -> set[str]:
    return {s["action"] for s in body["suggestions"]}


def test_two_declines_pause_an_action(server):
    with server.client() as http:
        [(customer_id, first)] = find_customers(server, http, 1)
        action = first["suggestions"][0]["action"]
        # Given the customer declines the action once: it is still offered
        respond(http, first, action, "declined")
        second = ask(http, customer_id, max_suggestions=10).json()
        assert action in actions(second), "one decline is below the limit of two"
        # When they decline it again; then the next decision no longer offers it
        respond(http, second, action, "declined")
        third = ask(http, customer_id, max_suggestions=10).json()
    assert action not in actions(third), f"{action} declined twice in 30 days must pause"
    [why] = [n for n in third["not_shown"] if n["action"] == action]
    assert why["reason"] == "paused_by_declines", why
    until = dt.datetime.fromisoformat(why["until"])
    ahead = until - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=29) < ahead <= dt.timedelta(days=30), f"paused until {until}"
    assert actions(first) - {action} <= actions(third), "other actions are not paused"


def test_skips_by_the_agent_never_pause_an_action(server):
    with server.client() as http:
        [(customer_id, decision)] = find_customers(server, http, 1)
        action = decision["suggestions"][0]["action"]
        for _ in range(3):
            respond(http, decision, action, "skipped")
            decision = ask(http, customer_id, max_suggestions=10).json()
            assert action in actions(decision), "a skip is the agent's call, not a decline"


def test_high_queue_pressure_gives_at_most_one_worthwhile_suggestion(server):
    with server.client() as http:
        pairs = find_customers(server, http, 3, min_suggestions=2)
        for customer_id, normal in pairs:
            busy = ask(http, customer_id, context={"queue_pressure": "high"}).json()
            assert len(busy["suggestions"]) <= 1 < len(normal["suggestions"]), customer_id
            for s in busy["suggestions"]:
                assert s["expected_value"] >= 25.0, "only a suggestion worth a busy agent's time"
                assert s["action"] in actions(normal)


def test_the_control_group_is_the_configured_share_and_follows_the_decision_id(server):
    customers = server.take(300)
    with server.client() as http:
        bodies = [ask(http, c).json() for c in customers]
    flags = [b["control_group"] for b in bodies]
    assert all(b["control_group"] == is_control(b["decision_id"], CONTROL_SHARE) for b in bodies), (
        "the control flag is a function of the decision id"
    )
    rate = sum(flags) / len(flags)
    assert 0.12 <= rate <= 0.28, f"control rate {rate:.2f} for a share of {CONTROL_SHARE}"


def test_only_admin_keys_reload_and_read_the_metrics(server):
    with server.client() as http:
        reload = http.post("/v1/admin/reload", json={})
        metrics = http.get("/metrics")
    assert reload.status_code == 403 and "admin key" in reload.json()["error"], reload.text
    assert metrics.status_code == 403, "an agent key does not read the metrics"
    assert httpx.get(server.url + "/metrics").status_code == 401
    with server.client(ADMIN_KEY) as http:
        assert http.get("/metrics").status_code == 200


def test_reload_keeps_serving_the_current_champions(server, trained):
    with server.client(ADMIN_KEY) as http:
        response = http.post("/v1/admin/reload", json={})
    assert response.status_code == 200, response.text
    body = response.json()
    mlflow_client = client(trained.settings.tracking_uri())
    champions = {
        name: str(version_by_alias(mlflow_client, name, "champion").version)
        for name in server.versions
    }
    assert body["model_versions"] == champions and body["changed"] is False


# -- the server as a whole ---------------------------------------------------------------------


def test_nothing_a_client_sends_gives_a_5xx_or_reaches_the_log(server):
    secret_customer = "C-SECRET-4711"
    with server.client() as http:
        statuses = [
            ask(http, secret_customer).status_code,
            http.post("/v1/scores", json={"customer_id": secret_customer}).status_code,
            http.post(
                "/v1/suggestions",
                json={"customer_id": secret_customer, "context": {"channel": 5}},
            ).status_code,
            http.post("/v1/feedback", json={"decision_id": secret_customer}).status_code,
            http.post("/v1/nope", json={}).status_code,
            http.get("/v1/suggestions").status_code,
        ]
    time.sleep(0.5)  # let the access log reach the file
    log = server.log.read_text(errors="replace")
    assert all(400 <= s < 500 for s in statuses), statuses
    assert "status=5" not in log, "no request was answered with a 5xx"
    assert KEY not in log, "API keys are never logged"
    assert secret_customer not in log, "customer ids and bodies stay out of the log"


def test_serve_refuses_to_start_without_an_online_store(trained, tmp_path):
    env = serve_env(trained, tmp_path)  # no online store was ever built under tmp_path
    result = subprocess.run(
        [sys.executable, "-m", "tierwise", "serve", "--port", str(free_port())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "online store" in result.stderr and "tierwise materialize" in result.stderr


def test_serve_refuses_to_start_without_api_keys(trained, tmp_path):
    env = serve_env(trained, tmp_path)
    env.pop("TIERWISE_API_KEYS")
    result = subprocess.run(
        [sys.executable, "-m", "tierwise", "serve", "--port", str(free_port())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "TIERWISE_API_KEYS" in result.stderr, result.stderr


def test_score_and_materialize_refresh_the_online_store(trained, tmp_path):
    # The commands of the batch side, in-process: score writes the store unless told not to.
    from typer.testing import CliRunner

    from tierwise.cli import app

    url = f"sqlite:///{tmp_path / 'online.db'}"
    env = {"TIERWISE_HOME": str(trained.settings.home), "TIERWISE_ONLINE_STORE_URL": url}
    data = str(trained.data)

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    run(
        "score",
        "--data",
        data,
        "--as-of",
        "2026-03-31",
        "--out",
        str(tmp_path / "s.parquet"),
        "--no-store",
    )
    with pytest.raises(StoreMissingError):
        OnlineStore(url).info()
    output = run(
        "score", "--data", data, "--as-of", "2026-03-31", "--out", str(tmp_path / "s.parquet")
    )
    assert "online store:" in output and OnlineStore(url).info().as_of.isoformat() == "2026-03-31"
    run("materialize", "--data", data, "--as-of", "2026-06-30")
    info = OnlineStore(url).info()
    assert info.as_of.isoformat() == "2026-06-30" and info.rows > 0
    assert info.model_versions == load_champions(trained.settings).versions


# -- pieces of the service that need no server ---------------------------------------------------


def test_api_keys_are_checked_as_bearer_tokens():
    digests = key_digests(frozenset({"k1", "k2"}))
    assert authorized(b"Bearer k2", digests) and authorized(b"bearer  k1 ", digests)
    for header in (None, b"", b"k1", b"Basic k1", b"Bearer", b"Bearer k3"):
        assert not authorized(header, digests), header
    assert not authorized(b"Bearer k1", ()), "no key configured: nothing is accepted"


def test_the_request_timer_is_cancelled_once_the_response_starts():
    # BentoML's own TimeoutMiddleware leaves each request's timer alive for the whole timeout
    # (docs/design.md, "BentoML's latency tail"); the replacement must leave none behind, and still answer 504 when slow.
    async def fast(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def slow(scope, receive, send):
        await asyncio.sleep(5)

    async def run(app, timeout):
        sent = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request", "body": b""}

        await CancellingTimeoutMiddleware(app, timeout=timeout)({"type": "http"}, receive, send)
        loop = asyncio.get_running_loop()
        live = [h for h in loop._scheduled if not h.cancelled()]
        return sent[0]["status"], len(live)

    status, live = asyncio.run(run(fast, 60))
    assert status == 200 and live == 0, f"{live} timer(s) still scheduled after the response"
    status, _ = asyncio.run(run(slow, 0.05))
    assert status == 504, "a request without a response in time still gets a 504"

    async def broken(scope, receive, send):
        raise RuntimeError("boom")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(run(broken, 30))
    assert time.monotonic() - started < 5, "an app failing early is not held until the timeout"
