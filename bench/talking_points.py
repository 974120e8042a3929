"""How often suggestions fall back to a generic talking point, and example responses.

For each demo flavour (bank, saas): demo data -> train -> promote -> online store, then the
service's own inference path (``serving.suggest``, in process, no HTTP) for every stored
customer at normal queue pressure. Counts the suggestions whose first talking point is a
generic opener (``serving.reasons.GENERIC_POINTS``) and keeps, for the closing note, the
full response (suggestions, not-shown list, card) of five customers of different tiers and
risks per flavour.

Run: ``python bench/talking_points.py [--customers 20000] [--snapshots 6]``; writes
``bench/results/talking_points.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from batch.online import materialize
from features.contract import load_dataset
from features.demo import generate_demo_data
from features.demo_saas import generate_saas_data
from features.labels import default_as_of
from models.scoring import load_champions
from serving.api import scores_response, suggestion_response
from serving.policy import Context, PolicyConfig
from serving.reasons import GENERIC_POINTS
from serving.store import OnlineStore
from serving.suggest import Scorer, assess, card_of, suggest
from tierwise.settings import Settings
from training.registry import promote
from training.train import TrainingConfig, train_models

FLAVOURS = {"bank": generate_demo_data, "saas": generate_saas_data}
OUT = Path(__file__).parent / "results" / "talking_points.json"


def run_flavour(flavour: str, customers: int, snapshots: int, root: Path) -> dict:
    """Prepare a home for one flavour and measure its talking points."""
    started = time.perf_counter()
    home = root / flavour
    settings = Settings(home=home, mlflow_tracking_uri=None, threads=2)
    data = FLAVOURS[flavour](home / "data", customers=customers, seed=0)
    ds = load_dataset(data)
    train_models(ds, settings, default_as_of(ds, snapshots), TrainingConfig())
    decisions = promote(settings)
    models = load_champions(settings)
    policy = PolicyConfig(winback_rate=0.05)
    store = OnlineStore(settings.online_url())
    materialize(ds, ds.settings.data_end, models, store, policy.winback_days)
    scorer = Scorer.from_models(models)
    now = dt.datetime.now(dt.UTC)
    counts: Counter[str] = Counter()
    examples: dict[str, dict] = {}
    for customer_id in store.customer_ids(limit=10**9):
        customer = store.get(customer_id)
        context = Context("phone", None, "normal", "bench")
        decision = suggest(customer, scorer, policy, context, {}, now, None, f"bench:{customer_id}")
        for s in decision.suggestions:
            counts["suggestions"] += 1
            counts["generic"] += bool(s.talking_points) and s.talking_points[0] in GENERIC_POINTS
        band = decision.assessment.churn.risk_band
        closed = "closed" if customer.history.get("closed_date") else "open"
        key = f"{customer.tier}/{band}/{closed}"
        if key not in examples and (decision.suggestions or closed == "closed"):
            card = card_of(customer, scorer)
            examples[key] = {
                "suggestions": suggestion_response(decision).model_dump(mode="json"),
                "scores": scores_response(assess(customer, scorer, policy), card).model_dump(
                    mode="json"
                ),
            }
    picked = _pick(examples)
    share = counts["generic"] / max(counts["suggestions"], 1)
    return {
        "customers": customers,
        "snapshots": snapshots,
        "champions": [d.name for d in decisions if d.promoted],
        "unpromoted": [d.message for d in decisions if not d.promoted],
        "suggestions": counts["suggestions"],
        "generic_first_points": counts["generic"],
        "generic_share": share,
        "seconds": time.perf_counter() - started,
        "examples": picked,
    }


def _pick(examples: dict[str, dict], n: int = 5) -> dict[str, dict]:
    """Open customers of as many tiers and risk bands as there are, and one who closed."""
    open_ = sorted(k for k in examples if k.endswith("/open"))
    closed = sorted(k for k in examples if k.endswith("/closed"))
    chosen: list[str] = []
    for band in ("high", "medium", "low"):  # the riskiest first, a different tier each time
        for key in open_:
            tier = key.split("/")[0]
            if f"/{band}/" in key and all(not c.startswith(f"{tier}/") for c in chosen):
                chosen.append(key)
                break
    chosen += [k for k in open_ if k not in chosen][: max(n - 1 - len(chosen), 0)]
    chosen = chosen[: n - 1] + closed[:1]
    return {k: examples[k] for k in chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--snapshots", type=int, default=6)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for flavour in FLAVOURS:
            results[flavour] = run_flavour(flavour, args.customers, args.snapshots, Path(tmp))
            r = results[flavour]
            print(
                f"{flavour}: {r['suggestions']:,} suggestions, {r['generic_first_points']:,} "
                f"with a generic first talking point ({100 * r['generic_share']:.1f}%), "
                f"{r['seconds']:.0f} s",
                flush=True,
            )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1, sort_keys=True, default=str) + "\n")
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
