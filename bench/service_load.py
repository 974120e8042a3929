"""Load-test the running service from the same machine: /v1/suggestions beside /livez.

Starts ``tierwise serve`` on 127.0.0.1 (a free port) and, at each concurrency level, runs
a fixed number of keep-alive connections, each sending its next request as soon as the
previous answer is read, for a bounded time: first ``/livez`` of the same server (the
framework's floor), then ``/v1/suggestions`` over many customers. Prints requests/s, p50,
p90, p99 and errors per level and writes them to ``bench/results/serving.json``.

The load generator is a small raw HTTP/1.1 client on asyncio (prebuilt requests, no
parsing beyond status and length), so that on a 2-core machine the client takes as little
CPU from the server as possible. Traffic goes to 127.0.0.1 only.

Models: ``$TIERWISE_HOME`` is used when it has champion models and an online store;
otherwise demo data is generated, trained and materialized under a temporary home. Each
run writes its decisions to a fresh temporary decision log.

    python bench/service_load.py                          # c = 1, 8, 32; 10 s each
    python bench/service_load.py --duration 5 --levels 1,8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "serving.json"
HOST = "127.0.0.1"  # never anything but this machine
KEY = "bench-key"
WARM_UP_S = 1.0


# -- the load generator ----------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response; return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _worker(
    port: int, requests: list[bytes], offset: int, until: float, measure_from: float, out: dict
) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    i = offset
    try:
        while (now := time.perf_counter()) < until:
            writer.write(requests[i % len(requests)])
            i += 1
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                out["errors"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
                continue
            done = time.perf_counter()
            if now >= measure_from:
                out["latencies"].append(done - now)
                if status != 200:
                    out["errors"] += 1
                    out["statuses"][status] = out["statuses"].get(status, 0) + 1
    finally:
        writer.close()


async def _load(port: int, requests: list[bytes], concurrency: int, duration: float) -> dict:
    start = time.perf_counter()
    measure_from = start + WARM_UP_S
    until = measure_from + duration
    out: dict = {"latencies": [], "errors": 0, "statuses": {}}
    await asyncio.gather(
        *(_worker(port, requests, k * 7919, until, measure_from, out) for k in range(concurrency))
    )
    return out


def run_level(port: int, requests: list[bytes], concurrency: int, duration: float) -> dict:
    """Requests/s, latency percentiles (ms) and errors at one concurrency level."""
    out = asyncio.run(_load(port, requests, concurrency, duration))
    latencies = sorted(out["latencies"])
    n = len(latencies)

    def pct(q: float) -> float:
        return round(latencies[min(n - 1, int(q * n))] * 1000, 2) if n else float("nan")

    return {
        "concurrency": concurrency,
        "requests": n,
        "requests_per_s": round(n / duration, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2) if n else float("nan"),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if n else float("nan"),
        "errors": out["errors"],
        "statuses": out["statuses"],
    }


def _request(method: str, path: str, body: bytes = b"", key: str | None = None) -> bytes:
    headers = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Connection: keep-alive"]
    if key:
        headers.append(f"Authorization: Bearer {key}")
    if method == "POST":
        headers += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


# -- the server --------------------------------------------------------------------------------


def usable(home: Path) -> bool:
    """Whether ``home`` has champion models and an online store."""
    from serving.startup import StartupError, check_startup
    from tierwise.settings import Settings

    try:
        check_startup(Settings(home=home, mlflow_tracking_uri=None, api_keys=KEY))
    except StartupError:
        return False
    return True


def prepare_home(home: Path, customers: int) -> Path:
    """Generate demo data under ``home``, train champions on it and build the online store."""
    from batch.online import materialize
    from features.contract import load_dataset
    from features.demo import generate_demo_data
    from features.labels import default_as_of
    from models.scoring import load_champions
    from serving.store import OnlineStore
    from tierwise.settings import Settings
    from training.registry import promote
    from training.train import TrainingConfig, train_models

    settings = Settings(home=home, mlflow_tracking_uri=None, threads=2)
    print(f"preparing {home}: {customers:,} demo customers, training, online store", flush=True)
    data = generate_demo_data(home / "demo-data", customers=customers, seed=0)
    ds = load_dataset(data)
    train_models(ds, settings, default_as_of(ds, 6), TrainingConfig())
    promote(settings)  # training registers challengers; the gate makes the champions
    materialize(
        ds, ds.settings.data_end, load_champions(settings), OnlineStore(settings.online_url())
    )
    return home


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int, decisions: Path, log: Path, workers: int):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TIERWISE_HOME": str(home),
        "TIERWISE_API_KEYS": KEY,
        "TIERWISE_DECISION_STORE_URL": f"sqlite:///{decisions}",
        "BENTOML_DO_NOT_TRACK": "True",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "tierwise", "serve", "--host", HOST, "--port", str(port)]
    command += ["--workers", str(workers)]
    with log.open("w") as sink:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=1) as r,
        ):
            if r.status == 200:
                return proc
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"the server was not ready within 300 s; see {log}")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the server we started: SIGTERM to its own process group, then wait."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def worker_rss_mb(proc: subprocess.Popen) -> list[float]:
    """Resident memory of each BentoML worker process under the server we started."""
    import psutil

    workers = [
        p
        for p in psutil.Process(proc.pid).children(recursive=True)
        if "_bentoml_impl.worker" in " ".join(p.cmdline())
    ]
    return [round(p.memory_info().rss / 2**20, 1) for p in workers]


def customer_ids(home: Path, n: int) -> list[str]:
    from serving.store import OnlineStore
    from tierwise.settings import Settings

    return OnlineStore(Settings(home=home).online_url(), create=False).customer_ids(limit=n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per level")
    parser.add_argument("--levels", default="1,8,32", help="concurrency levels")
    parser.add_argument("--customers", type=int, default=6000, help="demo size if training")
    parser.add_argument("--workers", type=int, default=1, help="service worker processes")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    with tempfile.TemporaryDirectory(prefix="tierwise-bench-") as tmp:
        env_home = os.environ.get("TIERWISE_HOME")
        if env_home and usable(Path(env_home)):
            home = Path(env_home).resolve()
        else:
            home = prepare_home(Path(tmp) / "home", args.customers)
        ids = customer_ids(home, 2000)
        suggestions = [
            _request(
                "POST",
                "/v1/suggestions",
                json.dumps(
                    {
                        "customer_id": c,
                        "context": {"channel": "phone", "agent_id": "bench"},
                        "max_suggestions": 3,
                    }
                ).encode(),
                KEY,
            )
            for c in ids
        ]
        livez = [_request("GET", "/livez")]
        port = free_port()
        log = Path(tmp) / "server.log"
        started = time.perf_counter()
        proc = start_server(home, port, Path(tmp) / "decisions.db", log, args.workers)
        ready_s = time.perf_counter() - started
        rss_ready = worker_rss_mb(proc)
        rows = []
        try:
            for c in levels:
                for route, requests in (("/livez", livez), ("/v1/suggestions", suggestions)):
                    result = {"route": route, **run_level(port, requests, c, args.duration)}
                    rows.append(result)
                    print(
                        f"{route:<16} c={c:<3} {result['requests_per_s']:>8.1f} req/s  "
                        f"p50 {result['p50_ms']:>7.2f} ms  p90 {result['p90_ms']:>7.2f} ms  "
                        f"p99 {result['p99_ms']:>7.2f} ms  max {result['max_ms']:>8.2f} ms  "
                        f"errors {result['errors']}",
                        flush=True,
                    )
            rss_end = worker_rss_mb(proc)
        finally:
            stop_server(proc)
            server_log = log.read_text(errors="replace")
    errors = [line for line in server_log.splitlines() if "[ERROR]" in line]
    report = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "bentoml": _version("bentoml"),
        },
        "config": {
            "duration_s": args.duration,
            "warm_up_s": WARM_UP_S,
            "workers": args.workers,
            "customers_cycled": len(ids),
            "client": "raw asyncio HTTP/1.1, keep-alive, one connection per concurrent worker",
        },
        "ready_s": round(ready_s, 1),
        "worker_rss_mb": {"ready": rss_ready, "end": rss_end},
        "server_error_lines": len(errors),
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"server ready after {ready_s:.1f} s; worker memory {rss_ready} -> {rss_end} MB; "
        f"{len(errors)} error lines in its log"
    )
    print(f"written to {args.out}")


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
