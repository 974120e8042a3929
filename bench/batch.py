"""Benchmark: the nightly batch (`tierwise score`) on a large demo base, on both engines.

    python bench/batch.py [--customers 1000000] [--train-customers 100000] [--no-spark]

Generates (or reuses) demo bases under ``$TIERWISE_HOME/bench/`` and trains the champions
once on the smaller one (12 monthly snapshots, every target) into
``$TIERWISE_HOME/bench/batch-home-<train customers>``. Then, side by side in one run, each in its own child
process, scores the population of the large base as of its last data day:
  - duckdb: features + all models + tiers + top 3 suggestions, online store refreshed;
  - duckdb with --reasons (the same, plus TreeSHAP reasons of churn and each suggestion);
  - spark local[*] (the same job as the first, features and scoring on Spark).
Each child opens and validates the data, then runs ``batch.run.run_batch``. Reported:
the child's wall time, the split (inputs = features, history and products held; predict;
policy; reasons; write; store), and the peak memory of the whole process tree (Spark's JVM
and Python workers included), sampled every 0.2 s. Writes ``bench/results/batch.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from feature_pipeline import ensure_data  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "batch.json"
THREADS = 2
MEMORY_LIMIT = "6GB"
SPARK = {"spark.driver.memory": "4g", "spark.ui.enabled": "false"}


def child(job: dict) -> dict:
    """One batch run as the CLI does it; its timings and row counts."""
    from batch.run import BatchOptions, run_batch
    from features.contract import connect, load_dataset
    from models.scoring import load_champions
    from serving.policy import PolicyConfig
    from serving.store import OnlineStore
    from tierwise.settings import Settings

    start = time.perf_counter()
    settings = Settings(home=Path(job["home"]), threads=THREADS, memory_limit=MEMORY_LIMIT)
    con = connect(THREADS, MEMORY_LIMIT, settings.scratch_dir())
    ds = load_dataset(job["data"], con=con)
    opened = time.perf_counter() - start
    models = load_champions(settings)
    spark = None
    if job["engine"] == "spark":
        from features.spark import spark_session

        spark = spark_session(config=SPARK)
    options = BatchOptions(reasons=job["reasons"], engine=job["engine"])
    store = OnlineStore(f"sqlite:///{Path(job['home']) / ('online-' + job['name'] + '.db')}")
    result = run_batch(
        ds,
        ds.settings.data_end,
        models,
        PolicyConfig(),
        Path(job["home"]) / f"scores-{job['name']}",
        options,
        store=store,
        spark=spark,
    )
    return {
        "wall_s": time.perf_counter() - start,
        "open_and_validate_s": opened,
        "rows": result.rows,
        "parts": result.parts,
        "models": len(models.models),
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
    }


def run_child(job: dict) -> dict:
    """Run one child; its JSON line plus the peak RSS of its whole process tree."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(job)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        parent = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(_rss(p) for p in tree))
            except psutil.NoSuchProcess:
                return
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read()
    proc.wait()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}"}
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_tree_rss_mib"] = peak / 2**20
    return result


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def ensure_models(train_data: Path, home: Path) -> float | None:
    """Train the champions into ``home`` unless they are there; the training wall time."""
    if (home / "mlflow.db").exists():
        return None
    start = time.perf_counter()
    env = {**os.environ, "TIERWISE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [str(Path(sys.executable).parent / "tierwise"), "train", "--data", str(train_data)]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def table(rows: dict[str, dict]) -> str:
    phases = ("inputs", "scoring.predict", "scoring.policy", "scoring.reasons", "scoring.write")
    head = (
        f"{'run':24s} {'wall s':>7s} {'open s':>7s} {'inputs':>7s} {'predict':>7s} "
        f"{'policy':>7s} {'reasons':>7s} {'write':>6s} {'scoring':>7s} {'store':>6s} "
        f"{'peak MiB':>9s} {'rows':>9s}"
    )
    lines = [head, "-" * len(head)]
    for name, r in rows.items():
        if "error" in r:
            lines.append(f"{name:24s} {r['error']}")
            continue
        s = r["seconds"]
        cells = " ".join(f"{s.get(p, 0.0):7.1f}" for p in phases[:4])
        lines.append(
            f"{name:24s} {r['wall_s']:7.1f} {r['open_and_validate_s']:7.1f} {cells} "
            f"{s.get('scoring.write', 0.0):6.1f} {s.get('scoring', 0.0):7.1f} "
            f"{s.get('store', 0.0):6.1f} {r['peak_tree_rss_mib']:9.0f} {r['rows']:9,d}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--train-customers", type=int, default=100_000)
    parser.add_argument("--no-spark", action="store_true", help="skip the Spark run")
    parser.add_argument("--no-reasons", action="store_true", help="skip the --reasons run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    data, _ = ensure_data(args.customers, None)
    train_data, _ = ensure_data(args.train_customers, None)
    home = data.parent / f"batch-home-{args.train_customers}"
    train_s = ensure_models(train_data, home)
    if train_s is not None:
        print(f"trained on {train_data} in {train_s:.1f} s")
    runs = {"duckdb": {"reasons": False, "engine": "duckdb"}}
    if not args.no_reasons:
        runs["duckdb --reasons"] = {"reasons": True, "engine": "duckdb"}
    if not args.no_spark:
        runs["spark local[*]"] = {"reasons": False, "engine": "spark"}
    results = {}
    for name, job in runs.items():
        job = {**job, "data": str(data), "home": str(home), "name": name.split()[0]}
        job["name"] += "-reasons" if job["reasons"] else ""
        results[name] = run_child(job)
        print(table({name: results[name]}).splitlines()[-1], flush=True)
    print()
    print(table(results))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "customers": args.customers,
                "data": str(data),
                "trained_on": str(train_data),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "runs": results,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
