"""Capture what the batch and the service answer for the demo, to check a refactor changed nothing.

    python bench/equivalence.py capture HOME OUT.json    # train once (if HOME is new), then capture
    python bench/equivalence.py compare A.json B.json    # exit 1 and list what differs

``capture`` prepares ``HOME`` the first time (demo data, training, promotion, online store,
as ``bench/service_load.py`` does) and reuses it afterwards, so a second capture with other
code scores the same models. It records the batch output of ``tierwise score`` (every
column, rows sorted by customer) and the answers of a running ``tierwise serve`` to
``/v1/suggestions`` and ``/v1/scores`` for 50 customers, with the fields that change per
request (decision ids, times) left out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service_load import (
    HOST,
    KEY,
    customer_ids,
    free_port,
    prepare_home,
    start_server,
    stop_server,
    usable,
)

CUSTOMERS = 50
# control_group is drawn per request (a random holdout); ids are minted per request.
VOLATILE = {
    "decision_id",
    "request_id",
    "decided_at",
    "scored_at",
    "served_at",
    "at",
    "control_group",
    "suggestion_id",
}


def _stable(value):
    """``value`` without per-request fields, floats rounded to 12 digits."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, float):
        return round(value, 12)
    return value


def batch_rows(home: Path) -> list[dict]:
    out = Path(tempfile.mkdtemp(dir=home)) / "scores"  # a fresh run, never a resumed one
    command = [sys.executable, "-m", "tierwise", "score", "--data", str(home / "demo-data")]
    command += ["--as-of", "2026-06-30", "--out", str(out), "--no-store", "--reasons"]
    env = {**os.environ, "TIERWISE_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    subprocess.run(command, check=True, env=env, capture_output=True)
    frame = pd.read_parquet(out).sort_values("customer_id").reset_index(drop=True)
    frame = frame.drop(columns=[c for c in frame.columns if c in VOLATILE])
    return json.loads(frame.to_json(orient="records", date_format="iso", double_precision=12))


def service_answers(home: Path) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_server(home, port, Path(tmp) / "decisions.db", Path(tmp) / "serve.log", 1)
        try:
            answers = {}
            for customer in customer_ids(home, CUSTOMERS):
                for path in ("/v1/suggestions", "/v1/scores"):
                    body = {"customer_id": customer}
                    if path == "/v1/suggestions":
                        body["context"] = {"channel": "phone", "agent_id": "a-1"}
                    request = urllib.request.Request(
                        f"http://{HOST}:{port}{path}",
                        data=json.dumps(body).encode(),
                        headers={
                            "Authorization": f"Bearer {KEY}",
                            "Content-Type": "application/json",
                        },
                    )
                    with urllib.request.urlopen(request, timeout=30) as r:
                        answers[f"{path} {customer}"] = _stable(json.loads(r.read()))
            return answers
        finally:
            stop_server(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["capture", "compare"])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.command == "capture":
        home = args.a.resolve()
        if not usable(home):
            prepare_home(home, customers=3000)
        result = {"batch": batch_rows(home), "service": service_answers(home)}
        args.b.write_text(json.dumps(result, indent=1, sort_keys=True))
        print(f"{len(result['batch'])} batch rows, {len(result['service'])} answers -> {args.b}")
        return
    a, b = (_stable(json.loads(p.read_text())) for p in (args.a, args.b))
    differ = [k for k in a["service"] if a["service"][k] != b["service"].get(k)]
    rows = sum(x != y for x, y in zip(a["batch"], b["batch"], strict=False))
    same_rows = len(a["batch"]) == len(b["batch"])
    print(f"batch: {len(a['batch'])} vs {len(b['batch'])} rows, {rows} rows differ")
    print(f"service: {len(a['service'])} answers, {len(differ)} differ {differ[:5]}")
    sys.exit(0 if same_rows and rows == 0 and not differ else 1)


if __name__ == "__main__":
    main()
