"""Load-test the running service from the same machine against issue 14's goals, beside /livez.

Starts ``tierwise serve`` on 127.0.0.1 (a free port, ``--workers 2`` by default) and, at
each concurrency level (``1,8,64,128`` by default), runs that many keep-alive connections for
a bounded time: first ``/livez`` of the same server (the framework's floor), then
``/v1/suggestions`` over 2,000 customers. Each connection is a closed loop: it sends its
next request as soon as the previous answer is read. A 429 is counted and, by default,
followed at once by the next request (what a naive client does, and the hardest case for
the shedding); ``--honour-retry-after`` makes the connection wait ``Retry-After`` first.

Per level it counts answers by status (200, 429, 5xx, other) apart from transport errors
and requests still unanswered when the level ends, and reports the throughput of 200s and
latency percentiles of the admitted (200) requests only. During each ``/v1/suggestions``
level a separate probe process (blocking sockets, one connection per route) sends
``/livez`` and ``/readyz`` once every 50 ms each and reports their p50/p99/max: at c=64
(4x the default admission capacity of 2 workers x (2 threads + 6 queued)) that is the goal
"the probes answer in under 50 ms at 4x capacity". It also records the CPU the client, each server worker and
everything else on the machine used during each level, so a reader sees how the two cores
were shared and whether the machine was busy.

The load generator is a small raw HTTP/1.1 client on asyncio (prebuilt requests, only the
status line and a few headers parsed), so that on a 2-core machine the client takes as
little CPU from the server as possible. ``--server-cpus`` / ``--client-cpus`` pin either
side (``os.sched_setaffinity``; default no pinning, both share every core); what was used
is written to the results with the load average before the run. Traffic goes to 127.0.0.1
only, and every level is bounded in time.

Models: ``--home`` (prepared there if need be), else ``$TIERWISE_HOME`` when it has
champion models and an online store; otherwise demo data is generated, trained, promoted and
materialized under a temporary home, through the ``tierwise`` CLI. Each run writes its decisions to a fresh temporary decision
log. Prints a summary with each goal met or not, and writes ``bench/results/serving.json``.

    python bench/service_load.py                                   # c = 1, 8, 128; 10 s each
    python bench/service_load.py --duration 3 --levels 1,8
    python bench/service_load.py --server-cpus 0 --client-cpus 1   # one core each
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import multiprocessing
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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "serving.json"
HOST = "127.0.0.1"  # never anything but this machine
KEY = "bench-key"
WARM_UP_S = 1.0  # per level, not measured: connections opened, caches warm
GRACE_S = 5.0  # an answer this late after a level's end is counted unfinished
PROBE_EVERY_S = 0.05
PROBE_TIMEOUT_S = 5.0
PROBE_PATHS = ("/livez", "/readyz")
SUGGESTIONS = "/v1/suggestions"


# -- the load generator ----------------------------------------------------------------------


@dataclass
class Tally:
    """What one level's connections saw in the measured window."""

    admitted: list[float] = field(default_factory=list)  # seconds, 200s only
    refused: list[float] = field(default_factory=list)  # seconds, 429s
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0  # reset, closed mid-answer, unparsable
    reconnects: int = 0
    unfinished: int = 0  # requests still unanswered GRACE_S after the level ended


@dataclass(frozen=True)
class Answer:
    status: int
    close: bool  # the server asked to close the connection
    retry_after: float | None


async def _read_response(reader: asyncio.StreamReader) -> Answer:
    """Read one HTTP/1.1 response: its status, whether it closes, its Retry-After."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, close, retry_after = 0, False, False, None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            close = True
        elif name == b"retry-after":
            with contextlib.suppress(ValueError):
                retry_after = float(value)
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return Answer(status, close, retry_after)


async def _open(port: int, until: float, tally: Tally):
    """A connection to the server, retried every 50 ms until ``until`` (None past it)."""
    while time.perf_counter() < until:
        try:
            return await asyncio.open_connection(HOST, port)
        except OSError:
            tally.transport_errors += 1
            await asyncio.sleep(0.05)
    return None


async def _connection(
    port: int,
    requests: list[bytes],
    offset: int,
    window: tuple[float, float],
    tally: Tally,
    honour_retry_after: bool,
) -> None:
    """One closed-loop keep-alive connection: send, read the answer, send the next."""
    measure_from, until = window
    conn = await _open(port, until, tally)
    i = offset
    try:
        while conn is not None and (sent := time.perf_counter()) < until:
            reader, writer = conn
            writer.write(requests[i % len(requests)])
            i += 1
            try:
                answer = await _read_response(reader)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ValueError):
                if sent >= measure_from:
                    tally.transport_errors += 1
                writer.close()
                tally.reconnects += 1
                conn = await _open(port, until, tally)
                continue
            took = time.perf_counter() - sent
            if sent >= measure_from:
                tally.statuses[answer.status] = tally.statuses.get(answer.status, 0) + 1
                if answer.status == 200:
                    tally.admitted.append(took)
                elif answer.status == 429:
                    tally.refused.append(took)
            if answer.close:
                writer.close()
                tally.reconnects += 1
                conn = await _open(port, until, tally)
            if answer.status == 429 and honour_retry_after and answer.retry_after:
                await asyncio.sleep(min(answer.retry_after, max(0.0, until - time.perf_counter())))
    finally:
        if conn is not None:
            conn[1].close()


async def _load(
    port: int,
    requests: list[bytes],
    concurrency: int,
    window: tuple[float, float],
    honour_retry_after: bool,
    server_pid: int,
) -> tuple[Tally, dict]:
    tally = Tally()
    cpu: dict = {}

    async def sample_cpu() -> None:  # at the start and the end of the measured window
        await asyncio.sleep(max(0.0, window[0] - time.perf_counter()))
        cpu["start"] = cpu_snapshot(server_pid)
        await asyncio.sleep(max(0.0, window[1] - time.perf_counter()))
        cpu["end"] = cpu_snapshot(server_pid)

    tasks = [
        asyncio.create_task(
            _connection(port, requests, k * 7919, window, tally, honour_retry_after)
        )
        for k in range(concurrency)
    ]
    sampler = asyncio.create_task(sample_cpu())
    _, pending = await asyncio.wait(tasks, timeout=window[1] + GRACE_S - time.perf_counter())
    tally.unfinished = len(pending)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await sampler
    return tally, cpu


def run_level(
    port: int,
    route: str,
    requests: list[bytes],
    concurrency: int,
    duration: float,
    server_pid: int,
    honour_retry_after: bool = False,
    probe: bool = False,
) -> dict:
    """Counts by status, throughput of 200s, admitted latency percentiles (ms), the probes'
    latencies (when ``probe``) and the CPU each side used, at one concurrency level."""
    load_avg = [round(x, 2) for x in os.getloadavg()]
    measure_from = time.perf_counter() + WARM_UP_S
    window = (measure_from, measure_from + duration)
    probes = _start_probe(port, window) if probe else None
    gc.collect()
    gc.disable()  # the client's own collector pauses must not land in the server's figures
    try:
        tally, cpu = asyncio.run(
            _load(port, requests, concurrency, window, honour_retry_after, server_pid)
        )
    finally:
        gc.enable()
    statuses = dict(sorted(tally.statuses.items()))
    ok = statuses.get(200, 0)
    refused = statuses.get(429, 0)
    server_errors = sum(n for s, n in statuses.items() if 500 <= s < 600)
    row = {
        "route": route,
        "concurrency": concurrency,
        "client": "honours Retry-After" if honour_retry_after else "closed loop, 429 not waited",
        "duration_s": duration,
        "load_avg_before": load_avg,
        "answers": sum(statuses.values()),
        "ok_200": ok,
        "refused_429": refused,
        "server_errors_5xx": server_errors,
        "other_status": sum(statuses.values()) - ok - refused - server_errors,
        "transport_errors": tally.transport_errors,
        "unfinished": tally.unfinished,
        "reconnects": tally.reconnects,
        "statuses": {str(s): n for s, n in statuses.items()},
        "ok_per_s": round(ok / duration, 1),
        "answers_per_s": round(sum(statuses.values()) / duration, 1),
        "admitted_ms": latency_summary(tally.admitted),
        "refused_ms": latency_summary(tally.refused) if tally.refused else None,
        "cores": cores_used(cpu.get("start"), cpu.get("end"), duration),
    }
    if probes is not None:
        row["probes"] = _finish_probe(probes, window)
    return row


def latency_summary(seconds: list[float]) -> dict:
    """p50/p90/p99/max/mean in ms (nearest rank); None when there is no sample."""
    values = sorted(seconds)
    n = len(values)

    def pct(q: float) -> float | None:
        return round(values[max(0, math.ceil(q * n) - 1)] * 1000, 2) if n else None

    return {
        "count": n,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(values[-1] * 1000, 2) if n else None,
        "mean_ms": round(statistics.fmean(values) * 1000, 2) if n else None,
    }


def _request(method: str, path: str, body: bytes = b"", key: str | None = None) -> bytes:
    headers = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Connection: keep-alive"]
    if key:
        headers.append(f"Authorization: Bearer {key}")
    if method == "POST":
        headers += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


# -- the probe: /livez and /readyz from a process of its own ---------------------------------


def _start_probe(port: int, window: tuple[float, float]):
    """Fork the probe process; it reports through the returned pipe when the window ends."""
    ctx = multiprocessing.get_context("fork")  # no threads here yet; nothing to re-import
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_probe, args=(port, window, sender), daemon=True)
    process.start()
    sender.close()
    return process, receiver


def _finish_probe(probes, window: tuple[float, float]) -> dict:
    process, receiver = probes
    samples: list[tuple[str, float, int | None]] = []
    if receiver.poll(max(0.0, window[1] - time.perf_counter()) + PROBE_TIMEOUT_S + 5):
        samples = receiver.recv()
    process.join(5)
    if process.is_alive():
        process.kill()
    out = {}
    for path in PROBE_PATHS:
        mine = [(s, status) for p, s, status in samples if p == path]
        ok = [s for s, status in mine if status == 200]
        out[path] = {
            "every_ms": PROBE_EVERY_S * 1000,
            "sent": len(mine),
            "failed": len(mine) - len(ok),  # non-200, timeout or transport error
            "over_50ms": sum(1 for s, _ in mine if s >= 0.05),
            **latency_summary([s for s, _ in mine]),  # failures count with their time
        }
    return out


def _probe(port: int, window: tuple[float, float], sender) -> None:
    """In the probe process: each path once every ``PROBE_EVERY_S`` on its own keep-alive
    connection (staggered), for the window; send back (path, seconds, status or None)."""
    measure_from, until = window
    conns: dict[str, socket.socket | None] = dict.fromkeys(PROBE_PATHS)
    requests = {p: _request("GET", p) for p in PROBE_PATHS}
    samples: list[tuple[str, float, int | None]] = []
    step = PROBE_EVERY_S / len(PROBE_PATHS)
    k, first = 0, time.perf_counter()
    while (due := first + k * step) < until:
        path = PROBE_PATHS[k % len(PROBE_PATHS)]
        k += 1
        time.sleep(max(0.0, due - time.perf_counter()))  # late: send at once
        sent = time.perf_counter()
        status: int | None = None
        try:
            if conns[path] is None:
                conns[path] = socket.create_connection((HOST, port), timeout=PROBE_TIMEOUT_S)
            sock = conns[path]
            sock.sendall(requests[path])
            status = _read_blocking(sock)
        except (OSError, ValueError):
            if conns[path] is not None:
                conns[path].close()
            conns[path] = None
        if sent >= measure_from:
            samples.append((path, time.perf_counter() - sent, status))
    for sock in conns.values():
        if sock is not None:
            sock.close()
    sender.send(samples)
    sender.close()


def _read_blocking(sock: socket.socket) -> int:
    """Read one small HTTP/1.1 response from a blocking socket; return its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ValueError("connection closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(
        (
            int(v)
            for n, _, v in (x.partition(b":") for x in lines[1:])
            if n.lower() == b"content-length"
        ),
        None,
    )
    if length is None:  # chunked: read to the terminating chunk
        while not body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                raise ValueError("connection closed")
            body += chunk
    else:
        while len(body) < length:
            chunk = sock.recv(4096)
            if not chunk:
                raise ValueError("connection closed")
            body += chunk
    return int(lines[0].split(b" ", 2)[1])


# -- who used the cores -----------------------------------------------------------------------


def cpu_snapshot(server_pid: int) -> dict:
    """CPU seconds so far: this process, each process of the server, the whole machine."""
    import psutil

    def used(p) -> float:
        t = p.cpu_times()
        return t.user + t.system

    server = {}
    with contextlib.suppress(psutil.Error):
        parent = psutil.Process(server_pid)
        for p in [parent, *parent.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                server[p.pid] = (_is_worker(p), used(p))
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)
    return {"client": used(psutil.Process()), "server": server, "machine": busy}


def cores_used(start: dict | None, end: dict | None, duration: float) -> dict | None:
    """Cores busy on average during the window: client, each worker, the rest of the server,
    and everything else on the machine (other people's jobs, the probe, the kernel)."""
    if not start or not end:
        return None
    both = start["server"].keys() & end["server"].keys()
    workers = sorted(
        (end["server"][p][1] - start["server"][p][1] for p in both if end["server"][p][0]),
        reverse=True,
    )
    supervisor = sum(
        end["server"][p][1] - start["server"][p][1] for p in both if not end["server"][p][0]
    )
    client = end["client"] - start["client"]
    machine = end["machine"] - start["machine"]
    server = sum(workers) + supervisor

    def per_s(x: float) -> float:
        return round(x / duration, 2)

    return {
        "client": per_s(client),
        "server_workers": [per_s(w) for w in workers],
        "server_supervisor": per_s(supervisor),
        "others": per_s(max(0.0, machine - client - server)),
        "machine": per_s(machine),
        "of": os.cpu_count(),
        "worker_processes_replaced": len(start["server"].keys() ^ end["server"].keys()),
    }


def _is_worker(p) -> bool:
    try:
        return "_bentoml_impl.worker" in " ".join(p.cmdline())
    except Exception:
        return False


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
    """Generate demo data under ``home``, train and promote champions on it and build the
    online store, through the ``tierwise`` CLI (each step in its own process, run from the
    project folder so the project's packages are the ones imported)."""
    from features.demo import DATA_END

    data = home / "demo-data"
    env = {**os.environ, "TIERWISE_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    print(f"preparing {home}: {customers:,} demo customers, training, online store", flush=True)
    steps = [
        ["demo-data", "--out", str(data), "--customers", str(customers)],
        ["train", "--data", str(data), "--snapshots", "6"],
        ["promote"],  # training registers challengers; the gate makes the champions
        ["materialize", "--data", str(data), "--as-of", DATA_END.isoformat()],
    ]
    for step in steps:
        done = subprocess.run(
            [sys.executable, "-m", "tierwise", *step],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"tierwise {step[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
    return home


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(
    home: Path,
    port: int,
    decisions: Path,
    log: Path,
    workers: int,
    cpus: set[int] | None = None,
):
    """Start ``tierwise serve`` in its own process group (on ``cpus`` only, when given) and
    wait until ``/readyz`` answers 200."""
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
            # workers inherit it, and their thread count follows (Settings.threads)
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{_why(log)}")
        if "Application startup failed" in log.read_text(errors="replace"):
            stop_server(proc)  # its supervisor would restart the workers for ever
            raise RuntimeError(f"the server's workers failed to start:\n{_why(log)}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=1) as r,
        ):
            if r.status == 200:
                return proc
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"the server was not ready within 300 s:\n{_why(log)}")


def _why(log: Path) -> str:
    """The server log's first error with its traceback's last line, or the log's tail."""
    lines = log.read_text(errors="replace").splitlines()
    ends = [i for i, line in enumerate(lines) if "Error:" in line and not line.startswith(" ")]
    if ends:
        return lines[ends[0]]
    return "\n".join(lines[-20:])


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the server we started: SIGTERM to its own process group, then wait."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def worker_processes(proc: subprocess.Popen) -> list:
    """The BentoML worker processes under the server we started."""
    import psutil

    return [p for p in psutil.Process(proc.pid).children(recursive=True) if _is_worker(p)]


def worker_rss_mb(proc: subprocess.Popen) -> list[float]:
    """Resident memory of each BentoML worker process under the server we started."""
    return [round(p.memory_info().rss / 2**20, 1) for p in worker_processes(proc)]


def customer_ids(home: Path, n: int) -> list[str]:
    from serving.store import OnlineStore
    from tierwise.settings import Settings

    return OnlineStore(Settings(home=home).online_url(), create=False).customer_ids(limit=n)


def admission_per_worker() -> dict:
    """The admission limits the server's workers read from the same environment."""
    from tierwise.settings import Settings

    s = Settings()  # older versions have no admission: None
    return {
        "threads": getattr(s, "service_threads", None),
        "queue": getattr(s, "service_queue", None),
    }


# -- goals, summary, results ------------------------------------------------------------------


def evaluate_goals(rows: list[dict]) -> list[dict]:
    """Issue 14's goals, each with its measured value and met (None: level not run)."""
    at = {r["concurrency"]: r for r in rows if r["route"] == SUGGESTIONS}
    goals = []

    def goal(text: str, level: int, value, met, needs: tuple[int, ...] = ()) -> None:
        run = all(c in at for c in (level, *needs))
        goals.append(
            {
                "goal": text,
                "level": level,
                "measured": value if run else None,
                "met": bool(met) if run else None,
            }
        )

    def get(level: int, *keys):
        value = at.get(level)
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    p = get(1, "admitted_ms", "p50_ms")
    goal("c=1: admitted p50 <= 1.5 ms", 1, p, p is not None and p <= 1.5)
    p = get(1, "admitted_ms", "p99_ms")
    goal("c=1: admitted p99 <= 3 ms", 1, p, p is not None and p <= 3)
    rate8 = get(8, "ok_per_s")
    goal("c=8: >= 1,000 req/s (200s)", 8, rate8, rate8 is not None and rate8 >= 1000)
    p = get(8, "admitted_ms", "p99_ms")
    goal("c=8: admitted p99 <= 15 ms", 8, p, p is not None and p <= 15)
    p = get(128, "admitted_ms", "p99_ms")
    goal("c=128: admitted (200) p99 <= 100 ms", 128, p, p is not None and p <= 100)
    r = at.get(128, {})
    not_429 = sum(r.get(k, 0) for k in ("server_errors_5xx", "other_status", "transport_errors"))
    not_429 += r.get("unfinished", 0)
    goal(
        "c=128: the excess gets 429 (429s > 0; every non-200 answer is a 429)",
        128,
        {"refused_429": r.get("refused_429"), "not_200_nor_429": not_429},
        r.get("refused_429", 0) > 0 and not_429 == 0,
    )
    n5 = get(128, "server_errors_5xx")
    goal("c=128: 0 5xx", 128, n5, n5 == 0)
    rate128 = get(128, "ok_per_s")
    ratio = round(rate128 / rate8, 3) if rate8 and rate128 is not None else None
    goal(
        "c=128: throughput of 200s >= 90% of c=8's",
        128,
        ratio,
        ratio is not None and ratio >= 0.9,
        needs=(8,),
    )
    for path in PROBE_PATHS:
        probe = get(64, "probes", path) or {}
        goal(
            f"c=64 (4x capacity): {path} answers in under 50 ms (probe max, every answer 200)",
            64,
            {k: probe.get(k) for k in ("p50_ms", "p99_ms", "max_ms", "sent", "failed")},
            probe.get("sent", 0) > 0
            and (probe.get("max_ms") or math.inf) < 50
            and probe.get("failed", 1) == 0,
        )
    return goals


def _ms(value: float | None, width: int = 0) -> str:
    return f"{value:>{width}.2f}" if value is not None else f"{'-':>{width}}"


def print_row(row: dict) -> None:
    a = row["admitted_ms"]
    print(
        f"{row['route']:<16} c={row['concurrency']:<4} 200s {row['ok_per_s']:>8.1f}/s  "
        f"p50 {_ms(a['p50_ms'], 7)}  p99 {_ms(a['p99_ms'], 7)}  max {_ms(a['max_ms'], 8)} ms  "
        f"429 {row['refused_429']:>6}  5xx {row['server_errors_5xx']}  "
        f"other {row['other_status']}  transport {row['transport_errors']}  "
        f"unfinished {row['unfinished']}",
        flush=True,
    )
    cores = row.get("cores")
    if cores:
        workers = "+".join(f"{w:.2f}" for w in cores["server_workers"])
        print(
            f"{'':<23}cores: client {cores['client']:.2f}, workers {workers}, "
            f"others {cores['others']:.2f} (of {cores['of']}); "
            f"load before {row['load_avg_before'][0]}",
            flush=True,
        )
    for path, p in row.get("probes", {}).items():
        print(
            f"{'':<23}probe {path:<7} every {p['every_ms']:.0f} ms: p50 {_ms(p['p50_ms'])}  "
            f"p99 {_ms(p['p99_ms'])}  max {_ms(p['max_ms'])} ms  ({p['sent']} sent, "
            f"{p['failed']} failed, {p['over_50ms']} >= 50 ms)",
            flush=True,
        )


def parse_cpus(text: str | None) -> set[int] | None:
    """``0,1`` or ``0-1`` as a set of CPU numbers this process may use; None for no pinning."""
    if not text:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    allowed = os.sched_getaffinity(0)
    if not cpus <= allowed:
        raise SystemExit(f"CPUs {sorted(cpus - allowed)} are not available (have {allowed})")
    return cpus


def _sharing(server: set[int] | None, client: set[int] | None, available: set[int]) -> str:
    every = sorted(available)
    s, c = sorted(server) if server else every, sorted(client) if client else every
    shared = sorted(set(s) & set(c))
    if shared:
        return f"server on CPUs {s}, load generator and probe on {c}: {shared} shared"
    return f"server on CPUs {s}, load generator and probe on {c}: none shared"


def machine() -> dict:
    import psutil

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "cpus_available": sorted(os.sched_getaffinity(0)),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "bentoml": _version("bentoml"),
    }


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _unshadow_project() -> None:
    """Drop this script's folder from ``sys.path``: ``python bench/service_load.py`` puts
    it first, and ``bench/batch.py`` would then shadow the project's ``batch`` package."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != here]
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def main() -> None:
    _unshadow_project()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per level")
    parser.add_argument("--levels", default="1,8,64,128", help="concurrency levels")
    parser.add_argument(
        "--home",
        type=Path,
        help="home to serve, prepared there first (demo data, training) when it has no "
        "champions or store; default $TIERWISE_HOME when usable, else a temporary one",
    )
    parser.add_argument("--customers", type=int, default=6000, help="demo size if training")
    parser.add_argument("--workers", type=int, default=2, help="service worker processes")
    parser.add_argument(
        "--honour-retry-after",
        action="store_true",
        help="after a 429, wait its Retry-After before the connection's next request",
    )
    parser.add_argument("--server-cpus", help="pin the server to these CPUs (e.g. 0,1 or 0)")
    parser.add_argument("--client-cpus", help="pin the load generator and probe (e.g. 1)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    server_cpus, client_cpus = parse_cpus(args.server_cpus), parse_cpus(args.client_cpus)
    available = os.sched_getaffinity(0)  # before the client is pinned
    load_before = [round(x, 2) for x in os.getloadavg()]
    print(f"load average before the run (1, 5, 15 min): {load_before}", flush=True)

    with tempfile.TemporaryDirectory(prefix="tierwise-bench-") as tmp:
        env_home = os.environ.get("TIERWISE_HOME")
        if args.home is not None:
            home = args.home.resolve()
            if not usable(home):
                prepare_home(home, args.customers)
        elif env_home and usable(Path(env_home)):
            home = Path(env_home).resolve()
        else:
            home = prepare_home(Path(tmp) / "home", args.customers)
        ids = customer_ids(home, 2000)
        suggestions = [
            _request(
                "POST",
                SUGGESTIONS,
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
        admission = admission_per_worker()
        capacity = (
            args.workers * (admission["threads"] + admission["queue"])
            if admission["threads"] is not None
            else None
        )
        port = free_port()
        log = Path(tmp) / "server.log"
        started = time.perf_counter()
        proc = start_server(home, port, Path(tmp) / "decisions.db", log, args.workers, server_cpus)
        ready_s = time.perf_counter() - started
        if client_cpus:
            os.sched_setaffinity(0, client_cpus)  # after the server's start: it has its own
        rows = []
        try:
            workers = worker_processes(proc)
            pinning = {
                "pinned": bool(server_cpus or client_cpus),
                "server_cpus": sorted(server_cpus) if server_cpus else "not pinned",
                "client_cpus": sorted(client_cpus) if client_cpus else "not pinned",
                "server_worker_affinity": {str(p.pid): sorted(p.cpu_affinity()) for p in workers},
                "client_affinity": sorted(os.sched_getaffinity(0)),
                "how": _sharing(server_cpus, client_cpus, available),
            }
            rss_ready = worker_rss_mb(proc)
            print(
                f"server ready after {ready_s:.1f} s: {len(workers)} workers, admission "
                f"{admission['threads']} threads + {admission['queue']} queued each "
                f"(capacity {capacity}); server cpus {pinning['server_cpus']}, "
                f"client cpus {pinning['client_cpus']}",
                flush=True,
            )
            for c in levels:
                for route, requests in (("/livez", livez), (SUGGESTIONS, suggestions)):
                    row = run_level(
                        port,
                        route,
                        requests,
                        c,
                        args.duration,
                        proc.pid,
                        honour_retry_after=args.honour_retry_after,
                        probe=route == SUGGESTIONS,
                    )
                    row["times_capacity"] = round(c / capacity, 2) if capacity else None
                    rows.append(row)
                    print_row(row)
            rss_end = worker_rss_mb(proc)
        finally:
            stop_server(proc)
            server_log = log.read_text(errors="replace")
    log_lines = server_log.splitlines()
    errors = [line for line in log_lines if "[ERROR]" in line or "Traceback" in line]
    warnings = [line for line in log_lines if "[WARNING]" in line]
    started_lines = [line for line in log_lines if "serving models" in line]
    at = {r["concurrency"]: r for r in rows if r["route"] == SUGGESTIONS}
    ratio = (
        round(at[128]["ok_per_s"] / at[8]["ok_per_s"], 3)
        if 128 in at and 8 in at and at[8]["ok_per_s"]
        else None
    )
    goals = evaluate_goals(rows)
    report = {
        "machine": machine(),
        "config": {
            "duration_s": args.duration,
            "warm_up_s": WARM_UP_S,
            "levels": levels,
            "workers": args.workers,
            "admission_per_worker": admission,
            "capacity": capacity,
            "customers_cycled": len(ids),
            "client": "raw asyncio HTTP/1.1, one keep-alive connection per concurrent client, "
            "closed loop (next request as soon as the answer is read)",
            "on_429": "waits Retry-After" if args.honour_retry_after else "next request at once",
            "probe": f"{', '.join(PROBE_PATHS)} each every {PROBE_EVERY_S * 1000:.0f} ms from a "
            "separate process and connection, during each /v1/suggestions level",
        },
        "pinning": pinning,
        "load_avg_before": load_before,
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "ready_s": round(ready_s, 1),
        "worker_rss_mb": {"ready": rss_ready, "end": rss_end},
        "server_log": {
            "worker_start": started_lines[: args.workers * 2],
            "error_lines": len(errors),
            "warning_lines": len(warnings),
            "errors": errors[:20],
            "warnings": warnings[:20],
        },
        "ok_per_s_c128_over_c8": ratio,
        "runs": rows,
        "goals": goals,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"worker memory {rss_ready} -> {rss_end} MB; {len(errors)} error and "
        f"{len(warnings)} warning lines in the server log; 200s/s c=128 / c=8: {ratio}"
    )
    for g in goals:
        mark = {True: "MET  ", False: "NOT  ", None: "n/a  "}[g["met"]]
        print(f"  {mark} {g['goal']}: {g['measured']}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
