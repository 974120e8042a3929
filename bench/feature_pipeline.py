"""Benchmark: point-in-time features in DuckDB vs a straightforward pandas groupby.

    python bench/feature_pipeline.py [--customers 1000000] [--dates 1 12] [--data DIR]

Generates (or reuses) a demo base of N customers under ``$TIERWISE_HOME/bench/``, then
measures, each in its own child process (wall time of the work, peak RSS of the process):
  - DuckDB, every feature, as of one date and as of 12 monthly dates (written to parquet);
  - DuckDB, the RFM family only, as of one date;
  - pandas, the same RFM counts, amounts and recency, as of one date.
DuckDB runs with 2 threads and a 6GB memory limit. Prints a table and writes
``bench/results/features.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

THREADS = 2
MEMORY_LIMIT = "6GB"
WINDOWS = (30, 90, 180, 365)
RFM_COLUMNS = [
    *(f"txn_count_{w}d" for w in WINDOWS),
    *(f"txn_amount_{w}d" for w in WINDOWS),
    "days_since_last_txn",
]
RESULTS = ROOT / "bench" / "results" / "features.json"


def month_ends(last: dt.date, n: int) -> list[dt.date]:
    """The `n` month ends up to the one on or before `last`, oldest first."""
    first_of_month = last.replace(day=1)
    end = last if (last + dt.timedelta(days=1)).day == 1 else first_of_month - dt.timedelta(1)
    out = [end]
    while len(out) < n:
        out.append(out[-1].replace(day=1) - dt.timedelta(days=1))
    return sorted(out)


def last_as_of(data: Path) -> dt.date:
    """The latest month end with a full horizon of data after it (data_end - horizon)."""
    from features.contract import connect, load_dataset

    settings = load_dataset(data, con=connect(threads=THREADS, memory_limit=MEMORY_LIMIT)).settings
    return month_ends(settings.data_end - dt.timedelta(days=settings.horizon_days), 1)[0]


# -- children: each does one measurement and prints one JSON line -------------------------------


def _cpu() -> float:
    """CPU seconds of this process so far, all threads (DuckDB's included)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _connect_dataset(data: Path) -> tuple:
    """A dataset on a bounded DuckDB connection, its load time, and a scratch folder."""
    from features.contract import connect, load_dataset

    scratch = Path(tempfile.mkdtemp(prefix="tierwise-bench-"))
    con = connect(threads=THREADS, memory_limit=MEMORY_LIMIT, temp_dir=scratch / "spill")
    start = time.perf_counter()
    ds = load_dataset(data, con=con)
    return ds, time.perf_counter() - start, scratch


def child_duckdb(data: Path, dates: list[dt.date], families: list[str] | None, repeat: int) -> dict:
    """Every feature (or some families) for `dates`, streamed to parquet, `repeat` times."""
    ds, load_s, scratch = _connect_dataset(data)
    try:
        return _time_duckdb(ds, load_s, scratch, dates, families, repeat)
    finally:
        ds.con.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _time_duckdb(
    ds, load_s: float, scratch: Path, dates: list[dt.date], families: list[str] | None, repeat: int
) -> dict:
    from features.spec import feature_spec
    from features.spine import register_spine

    start = time.perf_counter()
    spec = feature_spec(ds)
    spec_s = time.perf_counter() - start
    out = scratch / "features.parquet"
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), _cpu()
        if families is None:
            from features.pipeline import write_features

            rows = write_features(ds, dates, out, spec)
        else:
            from features.pipeline import feature_sql

            register_spine(ds, dates)
            sql = feature_sql(ds, spec, families=families)
            rows = ds.con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)").fetchall()[0][0]
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    columns = len(ds.con.execute(f"DESCRIBE SELECT * FROM '{out}'").fetchall())
    return {
        "wall_s": min(walls),
        "walls_s": walls,
        "cpu_s": min(cpus),
        "load_s": load_s,
        "spec_s": spec_s,
        "rows": rows,
        "columns": columns,
    }


def child_pandas(data: Path, as_of: dt.date, repeat: int, check: Path) -> dict:
    """RFM counts, amounts and recency for the population at `as_of`, pandas, `repeat` times."""
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), _cpu()
        out, read_s = pandas_rfm(data, as_of)
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    out.to_parquet(check)
    return {
        "wall_s": min(walls),
        "walls_s": walls,
        "cpu_s": min(cpus),
        "read_s": read_s,
        "rows": len(out),
        "columns": out.shape[1] - 1,
    }


def pandas_rfm(data: Path, as_of: dt.date):
    """The straightforward pandas way: read, filter, one groupby per window."""
    import pandas as pd

    start = time.perf_counter()
    customers = pd.read_parquet(
        data / "customers.parquet", columns=["customer_id", "signup_date", "closed_date"]
    )
    tx = pd.read_parquet(data / "transactions.parquet", columns=["customer_id", "ts", "amount"])
    read_s = time.perf_counter() - start
    t = pd.Timestamp(as_of)
    signup = pd.to_datetime(customers["signup_date"])
    closed = pd.to_datetime(customers["closed_date"])
    population = customers.loc[(signup <= t) & (closed.isna() | (closed > t)), ["customer_id"]]
    day = tx["ts"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    tx = tx.assign(age=(t - day).dt.days)
    tx = tx[tx["age"] >= 0]
    out = population.set_index("customer_id")
    for w in WINDOWS:
        g = tx[tx["age"] < w].groupby("customer_id")["amount"].agg(["count", "sum"])
        out[f"txn_count_{w}d"] = g["count"].reindex(out.index).fillna(0)
        out[f"txn_amount_{w}d"] = g["sum"].reindex(out.index).fillna(0)
    out["days_since_last_txn"] = tx.groupby("customer_id")["age"].min().reindex(out.index)
    return out.reset_index().sort_values("customer_id", ignore_index=True), read_s


def child_compare(data: Path, as_of: dt.date, check: Path) -> dict:
    """Largest difference between the pandas RFM and the pipeline's, per column."""
    import numpy as np

    from features.pipeline import build_features
    from features.spec import feature_spec

    ds, _, scratch = _connect_dataset(data)
    shutil.rmtree(scratch, ignore_errors=True)
    ours = build_features(ds, [as_of], feature_spec(ds))[["customer_id", *RFM_COLUMNS]]
    import pandas as pd

    theirs = pd.read_parquet(check)
    merged = ours.merge(theirs, on="customer_id", suffixes=("", "_pd"), how="outer")
    diffs = {
        c: float(np.nanmax(np.abs(merged[c].to_numpy(float) - merged[f"{c}_pd"].to_numpy(float))))
        for c in RFM_COLUMNS
    }
    return {"rows_duckdb": len(ours), "rows_pandas": len(theirs), "max_abs_diff": diffs}


# -- parent --------------------------------------------------------------------------------------


def run_child(script: str = __file__, **job) -> dict:
    """Run `script --child job`; return its last JSON line plus its peak RSS and total wall time."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, script, "--child", json.dumps(job, default=str)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out = proc.stdout.read()
    # wait4 gives this child's own rusage (getrusage(RUSAGE_CHILDREN) is the max over all).
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    total = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}", "process_s": total}
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_rss_mib"] = usage.ru_maxrss / 1024  # KiB on Linux
    result["process_s"] = total
    return result


def ensure_data(customers: int, data: Path | None, seed: int = 0) -> tuple[Path, float | None]:
    """The demo base to use: `data` if given, else cached under $TIERWISE_HOME/bench/."""
    if data is not None:
        return data, None
    home = Path(os.environ.get("TIERWISE_HOME", ROOT / ".tierwise"))
    path = home / "bench" / f"demo-{customers}-seed{seed}"
    if (path / "tierwise.yaml").exists():
        return path, None
    from features.demo import generate_demo_data

    start = time.perf_counter()
    generate_demo_data(path, customers=customers, seed=seed)
    return path, time.perf_counter() - start


def table(rows: list[tuple[str, dict]]) -> str:
    head = (
        f"{'measurement':34s} {'wall s':>8s} {'cpu s':>8s} {'process s':>9s} "
        f"{'peak RSS MiB':>12s} {'rows':>11s} {'cols':>5s}"
    )
    lines = [head, "-" * len(head)]
    for name, r in rows:
        if "error" in r:
            lines.append(f"{name:34s} {r['error']}")
            continue
        lines.append(
            f"{name:34s} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {r['process_s']:9.2f} "
            f"{r['peak_rss_mib']:12.0f} "
            f"{r['rows']:11,d} {r['columns']:5d}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--dates", type=int, nargs="+", default=[1, 12])
    parser.add_argument("--data", type=Path, default=None, help="an existing dataset to use")
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas comparison")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; min reported")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        job = json.loads(args.child)
        data, dates = Path(job["data"]), [dt.date.fromisoformat(d) for d in job["dates"]]
        if job["kind"] == "duckdb":
            result = child_duckdb(data, dates, job.get("families"), job["repeat"])
        elif job["kind"] == "pandas":
            result = child_pandas(data, dates[0], job["repeat"], Path(job["check"]))
        else:
            result = child_compare(data, dates[0], Path(job["check"]))
        print(json.dumps(result))
        return

    data, gen_s = ensure_data(args.customers, args.data)
    as_of = last_as_of(data)
    sizes = _sizes(data)
    print(
        f"data {data} ({sizes}); generated in {gen_s:.1f} s" if gen_s else f"data {data} ({sizes})"
    )
    rows: list[tuple[str, dict]] = []
    common = {"data": data, "repeat": args.repeat}
    for n in args.dates:
        label = f"duckdb all features, {n} date{'s' if n > 1 else ''}"
        rows.append((label, run_child(kind="duckdb", dates=month_ends(as_of, n), **common)))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    rfm = run_child(kind="duckdb", dates=[as_of], families=["rfm"], **common)
    rows.append(("duckdb rfm family, 1 date", rfm))
    print(table(rows[-1:]).splitlines()[-1], flush=True)
    compare = None
    if not args.no_pandas:
        with tempfile.TemporaryDirectory() as tmp:
            check = Path(tmp) / "pandas_rfm.parquet"
            pandas = run_child(kind="pandas", dates=[as_of], check=check, **common)
            rows.append(("pandas rfm groupby, 1 date", pandas))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
            if "error" not in pandas:
                compare = run_child(kind="compare", dates=[as_of], check=check, **common)
    results = dict(rows)
    duck_rfm, pandas_rfm = (
        results.get("duckdb rfm family, 1 date"),
        results.get("pandas rfm groupby, 1 date"),
    )
    both = duck_rfm and pandas_rfm and "error" not in duck_rfm and "error" not in pandas_rfm
    ratio = pandas_rfm["wall_s"] / duck_rfm["wall_s"] if both else None
    cpu_ratio = pandas_rfm["cpu_s"] / duck_rfm["cpu_s"] if both else None
    print()
    print(
        f"customers {args.customers:,}, as of {as_of}, DuckDB threads={THREADS} memory_limit={MEMORY_LIMIT}"
    )
    print(table(rows))
    if ratio:
        print(f"pandas / DuckDB on RFM, 1 date: {ratio:.1f}x wall, {cpu_ratio:.1f}x CPU")
    if compare and "max_abs_diff" in compare:
        print(
            f"RFM max abs difference pandas vs DuckDB: {max(compare['max_abs_diff'].values()):.3g}"
        )
    report = {
        "customers": args.customers,
        "data": str(data),
        "tables": sizes,
        "generate_s": gen_s,
        "as_of": str(as_of),
        "threads": THREADS,
        "memory_limit": MEMORY_LIMIT,
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "repeat": args.repeat,
        "measurements": results,
        "pandas_over_duckdb_rfm": ratio,
        "pandas_over_duckdb_rfm_cpu": cpu_ratio,
        "rfm_check": compare,
        "goal": "one as-of < 30 s and < 6 GiB on 2 cores; >= 3x faster than pandas on RFM",
    }
    # One entry per base size, so a 100k and a 1M run sit side by side.
    runs = json.loads(RESULTS.read_text()).get("runs", {}) if RESULTS.exists() else {}
    runs[str(args.customers)] = report
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": runs}, indent=2, default=str) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def _sizes(data: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    return {
        p.stem: pq.ParquetFile(p).metadata.num_rows
        for p in sorted(data.glob("*.parquet"))
        if p.is_file()
    }


if __name__ == "__main__":
    main()
