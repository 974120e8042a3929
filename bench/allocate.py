"""Benchmark: the batch's allocation under caps (``batch.allocate``) on a synthetic base.

    python bench/allocate.py [--customers 100000] [--actions 6] [--top 3] [--seed 0]

Candidates: every customer x every action, expected values from a seeded gamma, in each
customer's order of value (what the policy would list). Caps: two actions with stock
(a tenth and a twentieth of the base), one with a budget (cost 12.5), and a cap on the run's
channel (the base x top / 2), so every kind of cap binds. Reported per case (counts only,
then with the budget): wall time of ``allocate``, the peak of Python's traced memory and
the process's peak resident set, the objective against the uncapped top-k's and the greedy
fill (each customer's best offers in order while caps have room), and the caps' use.
Writes ``bench/results/allocate.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.remove(str(Path(__file__).resolve().parent))  # bench/batch.py shadows the package
sys.path.insert(0, str(ROOT))
from batch.allocate import allocate  # noqa: E402
from serving.capacity import CapacityConfig, caps_of  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "allocate.json"


def candidates(customers: int, actions: int, seed: int) -> pd.DataFrame:
    """Every customer x action with a seeded expected value, ranked by value per customer."""
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 20.0, size=(customers, actions)) * rng.uniform(0.5, 1.5, actions)
    order = np.argsort(np.argsort(-values, axis=1), axis=1) + 1
    return pd.DataFrame(
        {
            "customer_id": np.repeat([f"C{i:07d}" for i in range(customers)], actions),
            "action": np.tile([f"a{j}" for j in range(actions)], customers),
            "expected_value": values.ravel(),
            "order": order.ravel(),
        }
    )


def greedy(c: pd.DataFrame, capacity: CapacityConfig, channel: str, top: int) -> np.ndarray:
    """Each customer's offers in the policy's order while their caps have room (a baseline)."""
    left: dict[str, float] = {}
    taken = np.zeros(len(c), dtype=bool)
    count: dict[str, int] = {}
    ordered = c.sort_values(["order", "expected_value"], ascending=[True, False])
    rows = zip(ordered.index, ordered["customer_id"], ordered["action"], strict=True)
    for i, customer, action in rows:
        if count.get(customer, 0) >= top:
            continue
        caps = caps_of(action, channel, capacity)
        if all(left.get(k.key, k.limit) >= k.amount for k in caps):
            for k in caps:
                left[k.key] = left.get(k.key, k.limit) - k.amount
            taken[i] = True
            count[customer] = count.get(customer, 0) + 1
    return taken


def run_case(c: pd.DataFrame, capacity: CapacityConfig, top: int) -> dict:
    tracemalloc.start()
    start = time.perf_counter()
    mask = allocate(c, capacity, "batch", top)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    value = c["expected_value"].to_numpy()
    offered = c[mask]
    use = {}
    for action, rule in capacity.actions.items():
        n = int((offered["action"] == action).sum())
        use[action] = {"offered": n, **rule.model_dump(exclude_none=True)}
    return {
        "seconds": round(seconds, 2),
        "traced_peak_mb": round(peak / 2**20, 1),
        "offers": int(mask.sum()),
        "objective": round(float(value[mask].sum()), 2),
        "uncapped_top_k": round(float(value[c["order"].to_numpy() <= top].sum()), 2),
        "greedy_fill": round(float(value[greedy(c, capacity, "batch", top)].sum()), 2),
        "cap_use": use,
        "channel_offers": {"batch": int(mask.sum()), "cap": capacity.channels.get("batch")},
        "max_per_customer": int(offered.groupby("customer_id").size().max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--actions", type=int, default=6)
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = args.customers
    c = candidates(n, args.actions, args.seed)
    counts = {"a0": {"offers": n // 10}, "a1": {"offers": n // 20}}
    channel = {"batch": n * args.top // 2}
    cases = {
        "counts": CapacityConfig.model_validate({"actions": counts, "channels": channel}),
        "counts_and_budget": CapacityConfig.model_validate(
            {
                "actions": {**counts, "a2": {"budget": n * 1.25, "cost": 12.5}},
                "channels": channel,
            }
        ),
    }
    results = {k: run_case(c, v, args.top) for k, v in cases.items()}
    out = {
        "customers": n,
        "actions": args.actions,
        "candidates": len(c),
        "top": args.top,
        "seed": args.seed,
        "solver": "scipy.optimize.milp (HiGHS)",
        "cases": results,
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }
    print(json.dumps(out, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
