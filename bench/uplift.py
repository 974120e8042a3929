"""Simulate agents calling Tierwise and customers responding: does uplift ranking pay?

Issue 15's goal: in a simulation, ranking by uplift (priority = uplift x value - cost, no
offer where the predicted uplift is negative) brings at least 20% more incremental value per
1,000 calls than ranking by propensity, with a 95% interval excluding 0, by seed.

The world: a demo bank (``tierwise demo-data``) whose customers respond to offers by the
hidden response model of ``features.demo.ResponseModel`` (persuadables, sure things, lost
causes, sleeping dogs, by observable features). Champions are trained once on the demo data
through the ``tierwise`` CLI (``demo-data``, ``train``, ``promote``, ``materialize``) under a
temporary home. Then each period, in process (no HTTP, for speed):

1. ``--calls-per-period`` calls: a random open customer of the online store, a random
   channel and queue pressure; ``serving.suggest.suggest`` ranks by propensity with the
   policy's no-offer holdouts at ``--holdout-share`` (the exploration that uplift models
   learn from; the policy allows at most 0.5), and the decision goes into the decision log
   (``serving.decisions.DecisionLog``);
2. every action offered or held out gets an outcome from the response model, written to
   ``decision_outcomes`` (``DecisionLog.write_outcomes``) in the outcome schema, straight from
   the simulator: the demo tables end on their ``data_end`` and are not extended, so
   ``monitoring.outcomes``'s attribution has no rows to attribute (the value column is the
   action's value when the outcome happened);
3. from the second period on, an uplift model per action (``training.uplift.fit_uplift``,
   the two-model learner, on every outcome so far, features from the online store) ranks the
   same calls again through the policy's own uplift ranking, and both policies are scored on them with the simulator's
   counterfactual: for each action a policy offers, its value x (outcome if offered -
   outcome if not), both drawn with one uniform per (call, action).

Reported: incremental value per 1,000 calls of each policy with a seeded bootstrap 95%
interval over calls, their ratio and difference, and the effects measured against the
holdout per action and tier (``monitoring.effects``) beside the true ones. Writes
``bench/results/uplift.json``.

    python bench/uplift.py                                 # 4 periods x 3,000 calls, seed 0
    python bench/uplift.py --periods 3 --calls-per-period 1000 --seed 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "uplift.json"
CHANNELS = (("phone", 0.6), ("branch", 0.25), ("web", 0.15))
PRESSURES = (("low", 0.2), ("normal", 0.5), ("high", 0.3))


@dataclass(frozen=True)
class SimulationConfig:
    """One simulation run's size and seed."""

    periods: int = 4
    calls_per_period: int = 3000
    seed: int = 0
    customers: int = 8000
    holdout_share: float = 0.5  # every kind's no-offer holdout while the loop explores
    bootstrap: int = 1000


@dataclass(frozen=True)
class World:
    """What the calls need: models, policy, stores and the customers as the model sees them."""

    scorer: object  # serving.suggest.Scorer
    policy: object  # serving.policy.PolicyConfig
    store: object  # serving.store.OnlineStore
    log: object  # serving.decisions.DecisionLog
    customers: pd.DataFrame  # open customers: customer_id, tier and every feature
    as_of: dt.date


def prepare_home(home: Path, customers: int, seed: int) -> Path:
    """Demo data, champions and the online store under ``home`` through the ``tierwise`` CLI
    (each step in its own process, from the project folder); returns the data folder."""
    from features.demo import DATA_END

    data = home / "demo-data"
    env = {**os.environ, "TIERWISE_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    steps = [
        ["demo-data", "--out", str(data), "--customers", str(customers), "--seed", str(seed)],
        ["train", "--data", str(data), "--snapshots", "6", "--seed", str(seed)],
        ["promote"],
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
            raise RuntimeError(f"tierwise {step[0]} failed:\n{done.stdout}{done.stderr}")
    return data


def open_world(home: Path, holdout_share: float) -> World:
    """Load the champions, the policy with exploration holdouts and every open customer."""
    from models.scoring import load_champions
    from serving.decisions import DecisionLog
    from serving.policy import KINDS, PolicyConfig
    from serving.store import OnlineStore
    from serving.suggest import Scorer
    from tierwise.settings import Settings

    settings = Settings(home=home, mlflow_tracking_uri=None, threads=2)
    scorer = Scorer.from_models(load_champions(settings))
    policy = PolicyConfig(holdout_shares=dict.fromkeys(KINDS, holdout_share))
    store = OnlineStore(settings.online_url())
    rows = []
    for customer_id in store.customer_ids(limit=10**9):
        c = store.get(customer_id)
        if c is not None and not c.history.get("closed_date"):
            rows.append({**c.features, "customer_id": customer_id, "tier": c.tier})
    customers = pd.DataFrame(rows).set_index("customer_id", drop=False)
    return World(
        scorer, policy, store, DecisionLog(settings.decisions_url()), customers, store.info().as_of
    )


def simulate(world: World, config: SimulationConfig) -> dict:
    """Run the periods; return the figures (see the module docstring)."""
    from features.demo import ResponseModel

    response = ResponseModel(config.seed)
    rng = np.random.default_rng(config.seed)
    ids = world.customers.index.to_numpy()
    evaluated: list[pd.DataFrame] = []
    per_period = []
    uplift_models: dict = {}
    fit_figures: dict = {}
    for period in range(config.periods):
        start = dt.datetime.combine(world.as_of, dt.time()) + dt.timedelta(days=1 + 30 * period)
        calls = _calls(rng, ids, config.calls_per_period, start, period, config.seed)
        decided = [_decide(world, call) for call in calls]
        rows = _outcome_rows(world, response, calls, decided, rng)
        world.log.write_outcomes(rows)
        if uplift_models:
            frame = _compare(world, response, calls, uplift_models, rng)
            evaluated.append(frame)
            per_period.append({"period": period, **_per_1000(frame)})
        uplift_models, fit_figures = _fit_uplift(world, config.seed)
        print(f"  period {period}: uplift models {fit_figures}", flush=True)
    from serving.decisions import read_outcomes

    outcomes = read_outcomes(world.log.url)
    frame = pd.concat(evaluated, ignore_index=True)
    return {
        "policies": _bootstrap(frame, config.bootstrap, config.seed),
        "per_period": per_period,
        "uplift_models": fit_figures,
        "effects": _effects(outcomes, world.customers, response),
        "decisions": int(outcomes["decision_id"].nunique()),
        "outcome_rows": len(outcomes),
    }


@dataclass(frozen=True)
class Call:
    decision_id: str
    customer_id: str
    channel: str
    pressure: str
    at: dt.datetime


def _calls(
    rng: np.random.Generator, ids: np.ndarray, n: int, start: dt.datetime, period: int, seed: int
) -> list[Call]:
    """A period's calls: random open customers, channels, pressures and times in 30 days."""
    who = rng.choice(ids, n)
    channel = rng.choice([c for c, _ in CHANNELS], n, p=[p for _, p in CHANNELS])
    pressure = rng.choice([c for c, _ in PRESSURES], n, p=[p for _, p in PRESSURES])
    seconds = np.sort(rng.integers(0, 30 * 86_400, n))
    return [
        Call(
            f"sim:{seed}:{period}:{i}",
            str(who[i]),
            str(channel[i]),
            str(pressure[i]),
            start + dt.timedelta(seconds=int(seconds[i])),
        )
        for i in range(n)
    ]


def _context(call: Call):
    from serving.policy import Context

    return Context(call.channel, None, call.pressure, "sim-agent")  # type: ignore[arg-type]


def _decide(world: World, call: Call):
    """The propensity policy's decision for a call, logged; its holdouts included."""
    from serving.decisions import record_of
    from serving.suggest import suggest

    customer = world.store.get(call.customer_id)
    context = _context(call)
    decision = suggest(
        customer, world.scorer, world.policy, context, {}, call.at, None, call.decision_id
    )
    world.log.record(record_of(decision, context, call.at))
    return decision


def _outcome_rows(world: World, response, calls, decided, rng) -> pd.DataFrame:
    """One outcome row per action a decision offered or held out, drawn from the response model."""
    from serving.decisions import OUTCOME_COLUMNS

    rows = []
    for call, d in zip(calls, decided, strict=True):
        arms = [(s, "offered") for s in d.suggestions]
        arms += [(n, "holdout") for n in d.not_shown if n.reason == "holdout"]
        value_of = {c.action: c.value for c in d.suggestions}
        for item, arm in arms:
            rows.append(
                {
                    "decision_id": call.decision_id,
                    "action": item.action,
                    "kind": item.kind,
                    "product": item.product,
                    "arm": arm,
                    "control": d.control,
                    "source": "service",
                    "customer_id": call.customer_id,
                    "decided_at": call.at,
                    "tier": d.assessment.tier.name,
                    "channel": call.channel,
                    "probability": item.probability,
                    "horizon_end": call.at.date() + dt.timedelta(days=90),
                    "value_of": value_of.get(item.action),
                }
            )
    frame = pd.DataFrame(rows)
    frame["outcome"] = 0
    for action, part in frame.groupby("action"):
        who = world.customers.loc[part["customer_id"]]
        frame.loc[part.index, "outcome"] = response.respond(
            who, action, (part["arm"] == "offered").to_numpy(), rng
        )
    # The value an outcome brings: the action's own (a held-out row's from its decision's
    # probability-free value is unknown to it, so the simulator's value of the action is used).
    values = frame["value_of"].fillna(frame.groupby("action")["value_of"].transform("median"))
    frame["value"] = frame["outcome"] * values.fillna(0.0)
    frame["computed_at"] = pd.NaT
    return frame[list(OUTCOME_COLUMNS)]


def _fit_uplift(world: World, seed: int) -> tuple[dict, dict]:
    """An uplift model per action from every outcome so far (features from the online store)."""
    from serving.decisions import read_outcomes
    from training.uplift import UpliftConfig, UpliftTask, fit_uplift

    outcomes = read_outcomes(world.log.url)
    features = [c for c in world.customers.columns if c not in ("customer_id", "tier")]
    categorical = [c for c in features if world.customers[c].dtype == object]
    config = UpliftConfig(seed=seed, min_uplift_decisions=150, min_holdout_rows=50)
    models, figures = {}, {}
    for action, part in outcomes.groupby("action"):
        rows = part.drop(columns=["value"]).join(world.customers[features], on="customer_id")
        kind, product = part["kind"].iloc[0], part["product"].iloc[0]
        task = UpliftTask(action, kind, product, features, categorical, 2, config)
        fitted = fit_uplift(rows.reset_index(drop=True), task)
        if isinstance(fitted, str):
            figures[action] = {"model": None, "why": fitted}
            continue
        models[action] = fitted.model
        figures[action] = {
            k: round(fitted.metrics[k], 5) for k in ("qini", "qini_low", "qini_high", "rows")
        }
    return models, figures


def _compare(world: World, response, calls, models, rng) -> pd.DataFrame:
    """Per call, the incremental value of what each policy offers (holdouts off for both)."""
    from serving.suggest import rank

    policy = world.policy.model_copy(update={"holdout_shares": {}})  # both offer all they list
    scored: dict = {}
    records = []
    for call in calls:
        customer = world.store.get(call.customer_id)
        context = _context(call)
        probabilities = _probabilities(world, customer, scored)
        ranking = rank(
            customer,
            world.scorer,
            policy,
            context,
            {},
            call.at,
            None,
            call.decision_id,
            probabilities,
        )
        by_uplift = _uplift_order(world, customer, policy, context, call, probabilities, models)
        records.append((call, ranking.suggestions, by_uplift))
    # One uniform per (call, action): both policies' offers of it see the same customer.
    out = []
    for call, by_propensity, by_uplift in records:
        who = world.customers.loc[[call.customer_id]]
        row = {"decision_id": call.decision_id, "propensity": 0.0, "uplift": 0.0}
        actions = {s.action: s for s in (*by_propensity, *by_uplift)}
        for action, s in sorted(actions.items()):
            p0, p1 = response.probabilities(who, action)
            u = rng.random()
            gain = s.value * (float(u < p1[0]) - float(u < p0[0]))
            row["propensity"] += gain * any(x.action == action for x in by_propensity)
            row["uplift"] += gain * any(x.action == action for x in by_uplift)
        out.append(row)
    return pd.DataFrame(out)


def _probabilities(world: World, customer, cache: dict) -> dict:
    from serving.suggest import assess

    if customer.customer_id not in cache:
        cache[customer.customer_id] = dict(
            assess(customer, world.scorer, world.policy).probabilities
        )
    return cache[customer.customer_id]


def _uplift_order(world, customer, policy, context, call, probabilities, models) -> tuple:
    """The uplift ranking of a call: the policy's own (``serving.suggest.rank`` with each
    action's predicted uplift: uplift x value - contact cost, ``predicted_harm`` below 0)."""
    from serving.suggest import rank

    uplift = {a: m.predict_row(dict(customer.features)) for a, m in models.items()}
    ranking = rank(
        customer,
        world.scorer,
        policy,
        context,
        {},
        call.at,
        None,
        call.decision_id,
        probabilities,
        uplift,
    )
    return ranking.suggestions


def _per_1000(frame: pd.DataFrame) -> dict:
    return {p: round(float(frame[p].mean() * 1000), 1) for p in ("propensity", "uplift")}


def _bootstrap(frame: pd.DataFrame, replicates: int, seed: int) -> dict:
    """Incremental value per 1,000 calls of each policy, their difference and ratio, with
    percentile 95% intervals from a seeded bootstrap over calls."""
    rng = np.random.default_rng(seed)
    a, b = frame["propensity"].to_numpy(), frame["uplift"].to_numpy()
    idx = rng.integers(0, len(a), (replicates, len(a)))
    ma, mb = a[idx].mean(axis=1) * 1000, b[idx].mean(axis=1) * 1000
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = mb / ma

    def figure(point: float, draws: np.ndarray) -> dict:
        low, high = np.nanpercentile(draws, [2.5, 97.5])
        return {
            "value": round(point, 3),
            "low": round(float(low), 3),
            "high": round(float(high), 3),
        }

    pa, pb = a.mean() * 1000, b.mean() * 1000
    return {
        "calls": len(a),
        "propensity_per_1000_calls": figure(pa, ma),
        "uplift_per_1000_calls": figure(pb, mb),
        "difference_per_1000_calls": figure(pb - pa, mb - ma),
        "ratio": figure(pb / pa if pa else float("nan"), ratio),
    }


def _effects(outcomes: pd.DataFrame, customers: pd.DataFrame, response) -> dict:
    """Measured effects (offered - holdout rate, Newcombe 95%) per action and tier beside
    the true mean effect over the same rows' customers; the share of cells covered."""
    from monitoring.effects import offer_effects

    cells = []
    for row in offer_effects(outcomes, by="tier"):
        part = outcomes[(outcomes["action"] == row["action"]) & (outcomes["tier"] == row["tier"])]
        who = customers.loc[part["customer_id"]]
        p0, p1 = response.probabilities(who, row["action"])
        true = float(np.mean(p1 - p0))
        low, high = row["effect_low"], row["effect_high"]
        cells.append(
            {
                "action": row["action"],
                "tier": row["tier"],
                "offered_n": row["offered_n"],
                "holdout_n": row["holdout_n"],
                "measured": round(row["effect"], 4),
                "low": round(low, 4),
                "high": round(high, 4),
                "true": round(true, 4),
                "covered": bool(low <= true <= high),
            }
        )
    covered = [c["covered"] for c in cells]
    return {"cells": cells, "covered_share": round(float(np.mean(covered)), 3) if cells else None}


def run(config: SimulationConfig, home: Path | None = None) -> dict:
    """Prepare a home (a temporary one unless given), simulate, return the report."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tierwise-uplift-") as tmp:
        home = home or Path(tmp)
        prepare_home(home, config.customers, config.seed)
        prepared = time.perf_counter() - started
        world = open_world(home, config.holdout_share)
        try:
            figures = simulate(world, config)
        finally:
            world.log.close()
    return {
        "config": asdict(config),
        "in_process": "policy, suggestions, holdouts, decision log and uplift fits called in "
        "process (no HTTP), for speed",
        "seconds": {
            "prepare": round(prepared, 1),
            "total": round(time.perf_counter() - started, 1),
        },
        **figures,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods", type=int, default=SimulationConfig.periods)
    parser.add_argument("--calls-per-period", type=int, default=SimulationConfig.calls_per_period)
    parser.add_argument("--seed", type=int, nargs="+", default=[SimulationConfig.seed])
    parser.add_argument("--customers", type=int, default=SimulationConfig.customers)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.periods < 2:
        parser.error("--periods must be at least 2: one to learn from, one to compare on")
    runs = []
    for seed in args.seed:
        config = SimulationConfig(args.periods, args.calls_per_period, seed, args.customers)
        report = run(config)
        runs.append(report)
        p = report["policies"]
        print(
            f"seed {seed}: per 1,000 calls, propensity {_text(p['propensity_per_1000_calls'])}, "
            f"uplift {_text(p['uplift_per_1000_calls'])}; ratio {_text(p['ratio'])}; effects "
            f"covered in {report['effects']['covered_share']:.0%} of cells "
            f"({report['seconds']['total']:.0f} s)",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs}, indent=2, default=str) + "\n")
    print(f"written to {args.out}")


def _text(f: dict) -> str:
    return f"{f['value']:,.2f} [{f['low']:,.2f}, {f['high']:,.2f}]"


if __name__ == "__main__":
    sys.path.remove(str(Path(__file__).resolve().parent))  # bench/batch.py is not the package
    main()
