"""Learning from answers on the real service: two workers over HTTP, one decision store.

Feedback recorded through one worker moves the ranking of every worker within seconds (each
reads the counts in its watch thread); a retried feedback and a skip move nothing.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.test_service_faults import running, suggestion

# Learning at once (one answer is mature, a prior of one answer), and no exploration,
# control or holdout: every decision is the greedy order, so a learned ratio shows at once.
POLICY = {
    "control_share": 0.0,
    "holdout_shares": {},
    "adaptive": {"prior_strength": 1, "min_answers": 1, "exploration_share": 0.0},
}


@pytest.fixture(scope="module")
def service(trained, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adaptive")
    policy = tmp / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    with running(trained, tmp, TIERWISE_POLICY_FILE=str(policy)) as service:
        yield service


def decide(service, customer_id: str) -> dict:
    """A suggestion request on a new connection (so the two workers both take some)."""
    with service.client() as http:
        response = http.post("/v1/suggestions", json=suggestion(customer_id))
    assert response.status_code == 200, response.text
    return response.json()


def answer(service, body: dict, suggestion: dict, response: str) -> httpx.Response:
    feedback = {
        "decision_id": body["decision_id"],
        "suggestion_id": suggestion["suggestion_id"],
        "response": response,
        "agent_id": "agent-1",
    }
    with service.client() as http:
        return http.post("/v1/feedback", json=feedback)


def counts(db: Path, table: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db)) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()


def logged_ratios(db: Path, decision_id: str) -> dict[str, float]:
    with contextlib.closing(sqlite3.connect(db)) as con:
        [(suggestions,)] = con.execute(
            "SELECT suggestions FROM decisions WHERE decision_id = ?", (decision_id,)
        ).fetchall()
    return {s["action"]: s["ratio"] for s in json.loads(suggestions)}


def test_declines_on_one_worker_lower_the_action_on_every_worker(service):
    # Given decisions whose top suggestion is the same action, for customers of one tier
    bodies = [decide(service, c) for c in service.customers[:120]]
    first = {}
    for b in bodies:
        if b["suggestions"]:
            first.setdefault((b["tier"]["name"], b["suggestions"][0]["action"]), []).append(b)
    (tier, action), declined = max(first.items(), key=lambda kv: len(kv[1]))
    assert len(declined) >= 6, {k: len(v) for k, v in first.items()}
    # When customers decline it, one answer each (a pause needs two per customer)
    for b in declined[:5]:
        assert answer(service, b, b["suggestions"][0], "declined").status_code == 200
    time.sleep(2.5)  # the watch threads read the counts every second
    # Then every worker ranks that action with its learned, lower ratio
    others = [b["customer_id"] for b in declined[5:]]
    learned = [
        logged_ratios(service.decisions, decide(service, customer_id)["decision_id"])
        for customer_id in others * 4
    ]
    assert any(action in r for r in learned), "the action is still listed for some"
    assert all(r[action] < 1.0 for r in learned if action in r), (action, tier, learned)
    cells = {(a, t): (n, k) for a, t, n, k, *_ in counts(service.decisions, "adaptive_counts")}
    assert cells[action, tier] == (5, 0), cells


def test_a_retried_answer_and_a_skip_move_nothing(service):
    body = next(
        b for b in (decide(service, c) for c in service.customers[200:]) if b["suggestions"]
    )
    top = body["suggestions"][0]
    assert answer(service, body, top, "accepted").status_code == 200
    learned = counts(service.decisions, "adaptive_counts")
    retry = answer(service, body, top, "accepted")
    assert retry.status_code == 200 and retry.json()["created"] is False
    assert counts(service.decisions, "adaptive_counts") == learned, "a retry counted twice"

    other = next(
        b for b in (decide(service, c) for c in service.customers[300:]) if b["suggestions"]
    )
    skips = counts(service.decisions, "skip_counts")
    assert answer(service, other, other["suggestions"][0], "skipped").status_code == 200
    assert counts(service.decisions, "adaptive_counts") == learned, "a skip counted as an answer"
    assert counts(service.decisions, "skip_counts") != skips, "the skip is counted as a skip"
