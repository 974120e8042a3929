"""Benchmark the demo-data generator: wall time, peak memory and rows per base size.

Each size runs in a fresh child process, so its peak RSS is the generator's alone, and
writes under a temporary folder that is deleted afterwards. Figures are printed and
written to ``bench/results/demo_data.json``.

    python bench/demo_data.py                      # 100k and 1M customers
    python bench/demo_data.py --customers 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "demo_data.json"
TABLES = ("customers", "transactions", "holdings", "interactions", "tiers")

# Runs in the child: times the generation alone and reports the child's own peak RSS (Linux: KiB).
CHILD = """
import json, resource, sys, time
from pathlib import Path
from features.demo import generate_demo_data
started = time.perf_counter()
generate_demo_data(Path(sys.argv[1]), customers=int(sys.argv[2]), seed=0)
seconds = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_kib / 1024}))
"""


def measure(customers: int) -> dict:
    """Generate `customers` in a child process; return time, peak memory, rows and size."""
    with tempfile.TemporaryDirectory(prefix="tierwise-bench-") as tmp:
        out = Path(tmp) / "data"
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(out), str(customers)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(child.stdout)
        rows = {t: pq.ParquetFile(out / f"{t}.parquet").metadata.num_rows for t in TABLES}
        size = sum(f.stat().st_size for f in out.iterdir())
    return {
        "customers": customers,
        "seconds": round(figures["seconds"], 2),
        "peak_rss_mb": round(figures["peak_rss_mb"], 1),
        "rows": rows,
        "disk_mb": round(size / 2**20, 1),
    }


def main() -> None:
    """Parse sizes, measure each, print a line per size and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    runs = []
    for customers in args.customers:
        run = measure(customers)
        runs.append(run)
        rows = ", ".join(f"{t} {n:,}" for t, n in run["rows"].items())
        print(
            f"{customers:>9,} customers: {run['seconds']:7.2f} s, peak RSS {run['peak_rss_mb']:7.1f} MB, "
            f"{run['disk_mb']:.1f} MB on disk; rows: {rows}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "cpus": os.cpu_count()}
    RESULTS.write_text(json.dumps({"machine": machine, "runs": runs}, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
