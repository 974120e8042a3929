"""The real service under faults: two workers of `tierwise serve` on 127.0.0.1.

Each test provokes one fault an operator meets (a huge chunked upload, a scan of random
paths, a locked decision log, a worker killed under load, a tampered model) and checks
what the issue asks for: the right status, memory that stays flat, fast probes, nothing
acknowledged lost, recovery without a hand. Traffic goes to 127.0.0.1 only and every loop
is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx
import psutil
import pytest

from batch.online import materialize
from models.registry import CHAMPION, MODEL_FOLDER, client, model_name, version_by_alias
from models.scoring import load_champions
from serving.store import OnlineStore
from tests.integration.test_service import (
    ADMIN_KEY,
    KEY,
    ROOT,
    ask,
    free_port,
    serve_env,
    stop,
    wait_ready,
)
from tests.pg import start_cluster

pytestmark = pytest.mark.slow

WORKERS = 2
MIB = 2**20
REQUEST_TIMEOUT_S = 10.0  # serving.service.REQUEST_TIMEOUT_S


@dataclass
class Service:
    url: str
    proc: subprocess.Popen
    log: Path
    decisions: Path
    customers: list[str]

    def client(self, key: str | None = KEY, **options) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **options)

    def workers(self) -> list[psutil.Process]:
        children = psutil.Process(self.proc.pid).children(recursive=True)
        return [p for p in children if "_bentoml_impl.worker" in " ".join(p.cmdline())]

    def worker_rss(self) -> int:
        return sum(p.memory_info().rss for p in self.workers())

    def ready_lines(self) -> int:
        return self.log.read_text(errors="replace").count("serving models")


@contextlib.contextmanager
def running(trained, tmp: Path, **env: str) -> Iterator[Service]:
    """`tierwise serve` with ``WORKERS`` workers on an online store under ``tmp``, until
    every worker has loaded its models; stopped on leaving."""
    ds = trained.dataset()
    store = OnlineStore(f"sqlite:///{tmp / 'online.db'}")
    info = materialize(ds, ds.settings.data_end, load_champions(trained.settings), store, 365)
    port = free_port()
    log = tmp / "server.log"
    command = [sys.executable, "-m", "tierwise", "serve", "--port", str(port)]
    command += ["--workers", str(WORKERS)]
    with log.open("w") as sink:
        proc = subprocess.Popen(
            command,
            env=serve_env(trained, tmp, **env),
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    service = Service(
        f"http://127.0.0.1:{port}",
        proc,
        log,
        tmp / "decisions.db",
        store.customer_ids(limit=info.rows),
    )
    try:
        wait_ready(proc, service.url, log)
        deadline = time.monotonic() + 120
        while len(service.workers()) < WORKERS or service.ready_lines() < WORKERS:
            assert time.monotonic() < deadline, "not every worker started"
            time.sleep(0.2)
        yield service
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def service(trained, tmp_path_factory) -> Iterator[Service]:
    with running(trained, tmp_path_factory.mktemp("faults")) as service:
        yield service


def test_a_chunked_upload_past_the_cap_is_413_and_memory_stays_flat(service):
    before = service.worker_rss()

    def ten_mib() -> Iterator[bytes]:
        yield b'{"customer_id": "'
        for _ in range(160):
            yield b"x" * 65536

    with service.client() as http:  # a generator body goes out chunked, without a length
        response = http.post(
            "/v1/suggestions", content=ten_mib(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413, response.text
    assert "65536 bytes" in response.json()["error"]
    grown = (service.worker_rss() - before) / MIB
    assert grown < 10, f"workers grew {grown:.1f} MiB reading a body they refuse"


def test_random_unauthenticated_paths_are_404_and_add_no_metrics(service):
    before = service.worker_rss()
    with service.client(None) as http:
        statuses = {http.get(f"/{secrets.token_hex(8)}/{i}").status_code for i in range(3000)}
    assert statuses == {404}
    grown = (service.worker_rss() - before) / MIB
    assert grown < 10, f"workers grew {grown:.1f} MiB on 3,000 unknown paths"
    with service.client(ADMIN_KEY) as http:
        metrics = http.get("/metrics")
    assert metrics.status_code == 200
    assert len(metrics.content) < 512 * 1024, "the metrics stay small"
    assert not re.search(r'endpoint="/[0-9a-f]{16}/', metrics.text), "no series per unknown path"


def test_past_the_admission_limit_requests_get_429_with_retry_after_never_a_5xx(service):
    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64)
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=service.url, limits=limits, timeout=30) as http:
            requests = [
                http.post("/v1/suggestions", json=suggestion(c), headers=headers)
                for c in service.customers[:64]
            ]
            return await asyncio.gather(*requests)

    answers = [r for _ in range(3) for r in asyncio.run(burst())]
    statuses = {r.status_code for r in answers}
    assert statuses == {200, 429}, statuses  # 64 at once against 2 workers x 8 admitted
    refused = [r for r in answers if r.status_code == 429]
    assert all(r.headers["retry-after"] == "1" for r in refused)
    assert "retry" in refused[0].json()["error"]


def test_a_locked_decision_log_gets_fast_503s_keeps_the_probes_fast_and_recovers(service):
    customers = itertools.cycle(service.customers[:400])
    answers: list[tuple[int, float, str | None]] = []
    stop_asking = threading.Event()

    def keep_asking() -> None:
        with service.client() as http:
            while not stop_asking.is_set():
                started = time.monotonic()
                response = ask(http, next(customers))
                answers.append(
                    (
                        response.status_code,
                        time.monotonic() - started,
                        response.headers.get("retry-after"),
                    )
                )
                time.sleep(0.02)

    lock = sqlite3.connect(service.decisions, isolation_level=None, timeout=5)
    lock.execute("BEGIN IMMEDIATE")  # the write lock, as another process would hold it
    askers = [threading.Thread(target=keep_asking) for _ in range(2)]
    livez, readiness = [], set()
    try:
        for t in askers:
            t.start()
        until = time.monotonic() + 15
        with service.client(None) as http:
            while time.monotonic() < until:
                started = time.monotonic()
                assert http.get("/livez").status_code == 200
                livez.append(time.monotonic() - started)
                readiness.add(http.get("/readyz").status_code)
                time.sleep(0.05)
    finally:
        lock.rollback()
        lock.close()
        stop_asking.set()
        for t in askers:
            t.join(timeout=30)
    assert max(livez) < 0.1, f"/livez took {max(livez) * 1000:.0f} ms during the lock"
    assert answers and {s for s, _, _ in answers} <= {200, 503}, answers
    assert max(d for _, d, _ in answers) < REQUEST_TIMEOUT_S
    assert any(s == 503 for s, _, _ in answers), "no decision can be logged: 503"
    assert all(r is not None for s, _, r in answers if s == 503), "503s carry Retry-After"
    assert 503 in readiness, "/readyz says not ready while the decision log takes no writes"

    deadline = time.monotonic() + 10
    with service.client() as http:
        while httpx.get(service.url + "/readyz").status_code != 200 or (
            ask(http, next(customers)).status_code != 200
        ):
            assert time.monotonic() < deadline, "the service did not recover by itself"
            time.sleep(0.2)


def test_a_worker_killed_under_load_loses_no_acknowledged_feedback(service):
    acked: list[tuple[str, str]] = []
    counts = {"requests": 0, "errors": 0}
    stop_load = threading.Event()
    customers = service.customers[400:]

    def load(offset: int) -> None:
        i = offset
        with service.client(None) as http:
            headers = {"Authorization": f"Bearer {KEY}"}
            while not stop_load.is_set():  # about 30 suggestions a second per thread
                time.sleep(0.02)
                i += 4
                body = send(
                    http, "/v1/suggestions", headers, suggestion(customers[i % len(customers)])
                )
                if body is None or not body["suggestions"]:
                    continue
                pair = (body["decision_id"], body["suggestions"][0]["suggestion_id"])
                feedback = {
                    "decision_id": pair[0],
                    "suggestion_id": pair[1],
                    "response": "accepted",
                    "agent_id": "agent-1",
                }
                for _ in range(20):  # retried until acknowledged: a retry lands once
                    if send(http, "/v1/feedback", headers, feedback) is not None:
                        acked.append(pair)
                        break

    def send(http: httpx.Client, path: str, headers: dict, payload: dict) -> dict | None:
        counts["requests"] += 1
        try:
            response = http.post(path, json=payload, headers=headers)
        except httpx.TransportError:
            counts["errors"] += 1
            return None
        if response.status_code != 200:
            counts["errors"] += 1
            return None
        return response.json()

    threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        victim = service.workers()[0]
        ready_before = service.ready_lines()
        victim.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        replaced = None
        while time.monotonic() < killed + 10:
            if replaced is None and service.ready_lines() > ready_before:
                replaced = time.monotonic() - killed
            time.sleep(0.05)
    finally:
        stop_load.set()
        for t in threads:
            t.join(timeout=60)

    log = service.log.read_text(errors="replace")
    assert f"worker process {victim.pid} died (killed by SIGKILL)" in log
    assert replaced is not None and replaced < 5, f"replaced after {replaced} s"
    assert counts["requests"] > 200, counts
    rate = counts["errors"] / counts["requests"]
    assert rate < 0.01, f"error rate {rate:.2%} over the window: {counts}"
    with contextlib.closing(sqlite3.connect(service.decisions)) as db:
        stored = db.execute(
            "SELECT decision_id, suggestion_id, COUNT(*) FROM feedback GROUP BY 1, 2"
        ).fetchall()
    by_pair = {(d, s): n for d, s, n in stored}
    assert acked and all(by_pair.get(pair) == 1 for pair in acked), "stored exactly once"
    assert os.kill(service.proc.pid, 0) is None, "the supervisor is still there"


def test_a_tampered_champion_is_refused_on_reload_and_the_previous_one_keeps_serving(
    service, trained
):
    uri = trained.settings.tracking_uri()
    champion = version_by_alias(client(uri), model_name("churn"), CHAMPION)
    folder = stored_folder(uri, champion.name, champion.version)
    booster = max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    original = booster.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0x01
    [customer_id] = service.customers[-1:]
    with service.client() as http:
        before = ask(http, customer_id).json()["model_versions"]
        booster.write_bytes(bytes(tampered))
        try:
            with service.client(ADMIN_KEY) as admin:
                reload = admin.post("/v1/admin/reload", json={})
        finally:
            booster.write_bytes(original)  # the session's champion, as it was
        after = ask(http, customer_id)
    assert reload.status_code == 409, reload.text
    assert "sha256 mismatch" in reload.json()["error"] and champion.name in reload.json()["error"]
    assert after.status_code == 200 and after.json()["model_versions"] == before


def stored_folder(uri: str, name: str, version: str) -> Path:
    """A version's model folder in the artifact store (under its MLflow 3 logged model)."""
    mlflow_client = client(uri)
    source = mlflow_client.get_model_version(name, version).source  # models:/m-<id>
    location = mlflow_client.get_logged_model(source.removeprefix("models:/")).artifact_location
    return Path(unquote(urlparse(location).path)).joinpath(*MODEL_FOLDER)


def suggestion(customer_id: str) -> dict:
    return {"customer_id": customer_id, "context": {"channel": "phone", "agent_id": "agent-1"}}


def test_a_postgresql_decision_log_going_down_gives_503s_and_recovers(trained, tmp_path):
    cluster = start_cluster()
    try:
        url = cluster.create_database()
        with running(trained, tmp_path, TIERWISE_DECISION_STORE_URL=url) as service:
            customers = iter(service.customers)
            with service.client() as http:
                body = next(
                    b for b in (ask(http, c).json() for c in customers) if b.get("suggestions")
                )
                feedback = {
                    "decision_id": body["decision_id"],
                    "suggestion_id": body["suggestions"][0]["suggestion_id"],
                    "response": "accepted",
                    "agent_id": "agent-1",
                }
                cluster.halt()
                down = [ask(http, next(customers)) for _ in range(5)]
                refused = http.post("/v1/feedback", json=feedback)
                scores = http.post("/v1/scores", json={"customer_id": next(customers)})
                readiness = wait_for(lambda: httpx.get(service.url + "/readyz").status_code == 503)
                cluster.resume()
                recovered = wait_for(
                    lambda: (
                        httpx.get(service.url + "/readyz").status_code == 200
                        and ask(http, next(customers)).status_code == 200
                    )
                )
                retried = http.post("/v1/feedback", json=feedback)
                again = http.post("/v1/feedback", json=feedback)
    finally:
        cluster.stop()
    assert {r.status_code for r in down} == {503}, [r.text for r in down]
    assert all(r.headers["retry-after"] for r in down) and "decision log" in down[0].json()["error"]
    assert refused.status_code == 503 and refused.headers["retry-after"]
    assert scores.status_code == 200, "scores need only the online store"
    assert readiness, "/readyz says not ready while PostgreSQL is down"
    assert recovered, "the service recovered by itself once PostgreSQL was back"
    assert retried.status_code == 200 and retried.json()["created"] is True, retried.text
    assert again.json()["created"] is False, "the retried feedback landed exactly once"
    log = service.log.read_text(errors="replace")
    assert cluster.password not in log and "status=5" in log  # 503s, logged as codes only


def wait_for(condition, timeout_s: float = 15.0) -> bool:
    """Whether ``condition()`` came true within ``timeout_s``, checked every 0.2 s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if condition():
                return True
        time.sleep(0.2)
    return False
