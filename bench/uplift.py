"""Simulate agents calling Tierwise and customers responding: does uplift ranking pay?

Issue 15's goal: in a simulation, ranking by uplift (priority = uplift x value - cost, no
offer where the predicted uplift is negative) brings at least 20% more incremental value per
1,000 calls than ranking by propensity, with a 95% interval excluding 0, on every seed; and
the effects measured against the holdout recover the simulator's true ones in at least 90%
of action x tier cells.

The world: a demo bank (``tierwise demo-data``) whose customers respond to offers by the
hidden response model of ``features.demo.ResponseModel`` (persuadables, sure things, lost
causes, sleeping dogs, by observable features). Champions are trained once on the demo data
through the ``tierwise`` CLI (``demo-data``, ``train``, ``promote``) under a temporary home,
or taken from an existing home (``--home`` and ``--data``); ``tierwise materialize`` fills a
fresh online store and a fresh decision log takes the run's decisions, both in a temporary
folder. Then each period, in process (no HTTP, for speed):

1. ``--calls-per-period`` calls: a random open customer of the online store, a random
   channel and queue pressure; ``serving.suggest.suggest`` ranks by propensity with the
   policy's no-offer holdouts at ``SimulationConfig.holdout_share`` (the exploration that
   uplift models learn from; the policy allows at most 0.5), and the decision goes into the
   decision log (``serving.decisions.DecisionLog``);
2. every action offered or held out gets an outcome from the response model, written to
   ``decision_outcomes`` (``DecisionLog.write_outcomes``) in the outcome schema, straight from
   the simulator: the demo tables end on their ``data_end`` and are not extended, so
   ``monitoring.outcomes``'s attribution has no rows to attribute (the value column is the
   action's value when the outcome happened);
3. from the second period on, the uplift models fitted on the earlier periods' outcomes
   (``training.uplift.fit_uplift``, the two-model learner, features from the online store;
   only those past the Qini gate, as ``tierwise train-uplift`` would promote) rank the same
   calls again, and every arm is scored on them by the simulator's counterfactual: for each
   action an arm offers, its value x (outcome if offered - outcome if not), both drawn with
   one uniform per (call, action) that every arm shares.

The comparison is fair by construction: the arms rank the same calls (customer, channel,
queue pressure, time, decision id and so its control group) through the same function,
``serving.suggest.rank``, with the same probabilities, the same policy (list length by queue
pressure, churn gate, expected-value bar, contact policy with no declines, holdouts off for
every arm) and the same draws. What differs is only the ranking signal:

- ``propensity``: the policy as shipped (probability x value, the minimum probability);
- ``propensity_no_min``: the same with ``min_probability`` 0, so it offers about as much as
  uplift does: the gap from ``propensity`` is what offering more brings, the gap to
  ``uplift`` what the signal brings;
- ``uplift``: the policy's uplift branch where an action has a model past the gate
  (``serving.eligibility._Screening.consider_uplift``: worth = uplift x value - contact
  cost, no minimum probability, a negative uplift not offered as ``predicted_harm``),
  propensity for the other actions: what the loop would run. The goals are judged on it;
- ``uplift_ungated``: the same with every fitted model, past the gate or not: what the
  signal is worth before the gate trusts it (a diagnostic, never what the service runs).

The goal's figure charges no contact cost to any arm, so an arm that offers more is not
penalised for it; each arm's value net of the policy's ``contact_cost`` per offer is
reported beside it.

Reported per seed: incremental value per 1,000 calls of each arm with a seeded bootstrap 95%
interval over calls, the uplift - propensity difference and the ratio with theirs, offers per
1,000 calls, and the effects measured against the holdout per action and tier
(``monitoring.effects``) beside the true ones; over the seeds, each figure side by side with
the median and the goals checked on every seed. Writes ``bench/results/uplift.json``. The
simulation repeats by seed on given champions; the champions a seed's home trains can
differ on a loaded machine (training's search has a time budget), so use ``--home`` and
``--data`` for exact repeats.

    python bench/uplift.py                      # 3 periods x 1,500 calls, seeds 0-3: 12-23 min
    python bench/uplift.py --periods 2 --calls-per-period 500 --seed 1
    python bench/uplift.py --home H --data D    # champions of an existing home (no training)
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
ARMS = ("propensity", "propensity_no_min", "uplift", "uplift_ungated")
SEEDS = (0, 1, 2, 3)  # 0: the seed the simulation was built on; 1-3 held out
GOAL_RATIO, GOAL_COVERED = 1.2, 0.9


@dataclass(frozen=True)
class SimulationConfig:
    """One simulation run's size and seed."""

    periods: int = 3
    calls_per_period: int = 1500
    seed: int = 0
    customers: int = 5000
    holdout_share: float = 0.5  # every kind's no-offer holdout while the loop explores
    bootstrap: int = 1000
    min_uplift_decisions: int = 150  # an action's outcome rows before it gets a model...
    min_holdout_rows: int = 50  # ...of which held out: lowered to the simulation's size


@dataclass(frozen=True)
class World:
    """What the calls need: models, policy, stores and the customers as the model sees them."""

    scorer: object  # serving.suggest.Scorer
    policy: object  # serving.policy.PolicyConfig
    store: object  # serving.store.OnlineStore
    log: object  # serving.decisions.DecisionLog
    customers: pd.DataFrame  # open customers: customer_id, tier and every feature
    as_of: dt.date


def _tierwise(home: Path, *step: str, **env: str) -> None:
    """Run one ``tierwise`` command in its own process, from the project folder."""
    environ = {**os.environ, "TIERWISE_HOME": str(home), **env}
    environ.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-m", "tierwise", *step],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tierwise {step[0]} failed:\n{done.stdout}{done.stderr}")


def prepare_home(home: Path, customers: int, seed: int) -> Path:
    """Demo data and promoted champions under ``home`` through the ``tierwise`` CLI; returns
    the data folder."""
    data = home / "demo-data"
    _tierwise(
        home, "demo-data", "--out", str(data), "--customers", str(customers), "--seed", str(seed)
    )
    _tierwise(home, "train", "--data", str(data), "--snapshots", "6", "--seed", str(seed))
    _tierwise(home, "promote")
    return data


def materialize_store(home: Path, data: Path, online_url: str) -> None:
    """``tierwise materialize`` of the home's champions on ``data`` at its end into ``online_url``."""
    from features.contract import load_dataset

    as_of = load_dataset(data).settings.data_end
    _tierwise(
        home,
        "materialize",
        "--data",
        str(data),
        "--as-of",
        as_of.isoformat(),
        TIERWISE_ONLINE_STORE_URL=online_url,
    )


def open_world(home: Path, online_url: str, decisions_url: str, holdout_share: float) -> World:
    """Load the home's target champions (not its uplift champions: the propensity arm is the
    policy without them), the policy with exploration holdouts and every open customer."""
    from models.scoring import ModelSet, load_champions
    from serving.decisions import DecisionLog
    from serving.policy import KINDS, PolicyConfig
    from serving.store import OnlineStore
    from serving.suggest import Scorer
    from tierwise.settings import Settings

    settings = Settings(home=home, mlflow_tracking_uri=None, threads=2)
    scorer = Scorer.from_models(ModelSet(load_champions(settings).models))
    policy = PolicyConfig(holdout_shares=dict.fromkeys(KINDS, holdout_share))
    store = OnlineStore(online_url)
    rows = []
    for customer_id in store.customer_ids(limit=10**9):
        c = store.get(customer_id)
        if c is not None and not c.history.get("closed_date"):
            rows.append({**c.features, "customer_id": customer_id, "tier": c.tier})
    customers = pd.DataFrame(rows).set_index("customer_id", drop=False)
    return World(scorer, policy, store, DecisionLog(decisions_url), customers, store.info().as_of)


def simulate(world: World, config: SimulationConfig) -> dict:
    """Run the periods; return the figures (see the module docstring)."""
    from features.demo import ResponseModel
    from serving.decisions import read_outcomes

    response = ResponseModel(config.seed)
    rng = np.random.default_rng(config.seed)
    ids = world.customers.index.to_numpy()
    evaluated: list[pd.DataFrame] = []
    per_period = []
    fitted: dict = {}  # action -> (model, passed the gate), fitted on the earlier periods
    for period in range(config.periods):
        start = dt.datetime.combine(world.as_of, dt.time()) + dt.timedelta(days=1 + 30 * period)
        calls = _calls(rng, ids, config.calls_per_period, start, period, config.seed)
        decided = [_decide(world, call) for call in calls]
        world.log.write_outcomes(_outcome_rows(world, response, calls, decided, rng))
        if period > 0:  # an action without a model yet: propensity in every arm
            frame = _compare(world, response, calls, fitted, rng)
            evaluated.append(frame)
            per_period[-1].update(_per_1000(frame))
        if period < config.periods - 1:
            fitted, figures = _fit_uplift(world, config)
            per_period.append({"period": period + 1, "uplift_models": figures})
    outcomes = read_outcomes(world.log.url)
    frame = pd.concat(evaluated, ignore_index=True)
    return {
        "arms": _bootstrap(frame, config.bootstrap, config.seed, world.policy.contact_cost),
        "per_period": per_period,
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
    # A held-out row has no value of its own (the not-shown entry keeps none), so it takes
    # the action's median value among the offered rows of the period.
    values = frame["value_of"].fillna(frame.groupby("action")["value_of"].transform("median"))
    frame["value"] = frame["outcome"] * values.fillna(0.0)
    frame["computed_at"] = pd.NaT
    return frame.reindex(columns=list(OUTCOME_COLUMNS))  # a column the simulator lacks: null


def _fit_uplift(world: World, config: SimulationConfig) -> tuple[dict, dict]:
    """An uplift model per action from every outcome so far (features from the online store):
    action -> (model, whether it passed the Qini gate), and each action's figures."""
    from serving.decisions import read_outcomes
    from training.uplift import UpliftConfig, UpliftTask, fit_uplift

    outcomes = read_outcomes(world.log.url)
    features = [c for c in world.customers.columns if c not in ("customer_id", "tier")]
    categorical = [c for c in features if world.customers[c].dtype == object]
    settings = UpliftConfig(
        seed=config.seed,
        min_uplift_decisions=config.min_uplift_decisions,
        min_holdout_rows=config.min_holdout_rows,
    )
    models, figures = {}, {}
    for action, part in outcomes.groupby("action"):
        rows = part.drop(columns=["value", "uplift"], errors="ignore").join(
            world.customers[features], on="customer_id"
        )
        kind, product = part["kind"].iloc[0], part["product"].iloc[0]
        task = UpliftTask(action, kind, product, features, categorical, 2, settings)
        fitted = fit_uplift(rows.reset_index(drop=True), task)
        if isinstance(fitted, str):
            figures[action] = {"model": False, "why": fitted}
            continue
        failures = fitted.failures
        models[action] = (fitted.model, not failures)
        figures[action] = {
            "model": True,
            "gate": not failures,
            **{k: round(fitted.metrics[k], 5) for k in ("qini", "qini_low", "qini_high", "rows")},
            **({"why": "; ".join(failures)} if failures else {}),
        }
    return models, figures


def _compare(world: World, response, calls, fitted: dict, rng) -> pd.DataFrame:
    """Per call, the incremental value and the offers of each arm (holdouts off for all)."""
    policy = world.policy.model_copy(update={"holdout_shares": {}})  # every arm offers all it lists
    no_min = policy.model_copy(update={"min_probability": 0.0})
    scored: dict = {}
    out = []
    for call in calls:
        customer = world.store.get(call.customer_id)
        probabilities = _probabilities(world, customer, scored)
        uplift = {a: m.predict_row(dict(customer.features)) for a, (m, _) in fitted.items()}
        gated = {a: u for a, u in uplift.items() if fitted[a][1]}
        offers = {
            "propensity": _rank(world, customer, policy, call, probabilities, None),
            "propensity_no_min": _rank(world, customer, no_min, call, probabilities, None),
            "uplift": _rank(world, customer, policy, call, probabilities, gated),
            "uplift_ungated": _rank(world, customer, policy, call, probabilities, uplift),
        }
        who = world.customers.loc[[call.customer_id]]
        row: dict = {"decision_id": call.decision_id}
        for arm in ARMS:
            row[arm] = 0.0
            row[f"{arm}_offers"] = len(offers[arm])
        values = {s.action: s.value for arm in ARMS for s in offers[arm]}
        # One uniform per (call, action): every arm's offer of it meets the same customer.
        for action, value in sorted(values.items()):
            p0, p1 = response.probabilities(who, action)
            u = rng.random()
            gain = value * (float(u < p1[0]) - float(u < p0[0]))
            for arm in ARMS:
                row[arm] += gain * any(s.action == action for s in offers[arm])
        out.append(row)
    return pd.DataFrame(out)


def _rank(world: World, customer, policy, call: Call, probabilities, uplift) -> tuple:
    """An arm's suggestions for a call: the policy's own ranking (``serving.suggest.rank``)."""
    from serving.suggest import rank

    context = _context(call)
    args = (customer, world.scorer, policy, context, {}, call.at, None, call.decision_id)
    return rank(*args, probabilities, uplift).suggestions


def _probabilities(world: World, customer, cache: dict) -> dict:
    from serving.suggest import assess

    if customer.customer_id not in cache:
        cache[customer.customer_id] = dict(
            assess(customer, world.scorer, world.policy).probabilities
        )
    return cache[customer.customer_id]


def _per_1000(frame: pd.DataFrame) -> dict:
    return {arm: round(float(frame[arm].mean() * 1000), 1) for arm in ARMS}


def _bootstrap(frame: pd.DataFrame, replicates: int, seed: int, contact_cost: float) -> dict:
    """Incremental value per 1,000 calls of each arm, the uplift - propensity difference and
    ratio, with percentile 95% intervals from a seeded bootstrap over calls; offers per 1,000
    calls; and each arm's value net of the policy's contact cost per offer (beside the goal's
    figure: an arm that offers more pays for it there)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(frame), (replicates, len(frame)))
    net = {arm: (frame[arm] - contact_cost * frame[f"{arm}_offers"]).to_numpy() for arm in ARMS}
    net_draws = {arm: v[idx].mean(axis=1) * 1000 for arm, v in net.items()}
    values = {arm: frame[arm].to_numpy() for arm in ARMS}
    draws = {arm: v[idx].mean(axis=1) * 1000 for arm, v in values.items()}
    point = {arm: float(v.mean() * 1000) for arm, v in values.items()}
    base = point["propensity"]
    out: dict = {
        "calls": len(frame),
        **{f"{arm}_per_1000_calls": _figure(point[arm], draws[arm]) for arm in ARMS},
    }
    for arm, prefix in (("uplift", ""), ("uplift_ungated", "ungated_")):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = draws[arm] / draws["propensity"]
        out[f"{prefix}difference_per_1000_calls"] = _figure(
            point[arm] - base, draws[arm] - draws["propensity"]
        )
        out[f"{prefix}ratio"] = _figure(point[arm] / base if base else float("nan"), ratio)
    return {
        **out,
        "offers_per_1000_calls": {
            arm: round(float(frame[f"{arm}_offers"].mean() * 1000), 1) for arm in ARMS
        },
        "contact_cost": contact_cost,
        "net_per_1000_calls": {
            arm: _figure(float(net[arm].mean() * 1000), net_draws[arm]) for arm in ARMS
        },
    }


def _figure(point: float, draws: np.ndarray) -> dict:
    low, high = np.nanpercentile(draws, [2.5, 97.5])
    return {"value": round(point, 3), "low": round(float(low), 3), "high": round(float(high), 3)}


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


def run(config: SimulationConfig, home: Path | None = None, data: Path | None = None) -> dict:
    """Simulate one seed: on the champions of ``home`` and its demo ``data`` if given (both
    or neither), else on a home prepared for the seed in a temporary folder; the online store
    and the decision log are always fresh. Returns the report."""
    if (home is None) != (data is None):
        raise ValueError("give both home and data, or neither")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tierwise-uplift-") as tmp:
        work = Path(tmp)
        if home is None:
            home = work / "home"
            data = prepare_home(home, config.customers, config.seed)
        online_url, decisions_url = (
            f"sqlite:///{work / 'online.db'}",
            f"sqlite:///{work / 'decisions.db'}",
        )
        materialize_store(home, data, online_url)
        prepared = time.perf_counter() - started
        world = open_world(home, online_url, decisions_url, config.holdout_share)
        try:
            figures = simulate(world, config)
        finally:
            world.log.close()
    return {
        "config": asdict(config),
        "customers_open": len(world.customers),
        "in_process": "policy, suggestions, holdouts, decision log and uplift fits called in "
        "process (no HTTP), for speed",
        "seconds": {
            "prepare": round(prepared, 1),
            "total": round(time.perf_counter() - started, 1),
        },
        **figures,
    }


def summarize(runs: list[dict]) -> dict:
    """The seeds' figures side by side with their median, and the goals checked per seed."""
    seeds = [r["config"]["seed"] for r in runs]
    names = [
        *(f"{arm}_per_1000_calls" for arm in ARMS),
        *(f"{p}{n}" for p in ("", "ungated_") for n in ("difference_per_1000_calls", "ratio")),
    ]
    out: dict = {"seeds": seeds}
    for name in names:
        side = {str(s): r["arms"][name] for s, r in zip(seeds, runs, strict=True)}
        out[name] = {"by_seed": side, "median": _median([f["value"] for f in side.values()])}
    out["offers_per_1000_calls"] = {
        arm: {
            "by_seed": {
                str(s): r["arms"]["offers_per_1000_calls"][arm]
                for s, r in zip(seeds, runs, strict=True)
            },
            "median": _median([r["arms"]["offers_per_1000_calls"][arm] for r in runs]),
        }
        for arm in ARMS
    }
    out["net_per_1000_calls"] = {
        arm: {
            "by_seed": {
                str(s): r["arms"]["net_per_1000_calls"][arm]
                for s, r in zip(seeds, runs, strict=True)
            },
            "median": _median([r["arms"]["net_per_1000_calls"][arm]["value"] for r in runs]),
        }
        for arm in ARMS
    }
    covered = {str(s): r["effects"]["covered_share"] for s, r in zip(seeds, runs, strict=True)}
    out["effects_covered_share"] = {"by_seed": covered, "median": _median(list(covered.values()))}
    out["goals"] = {
        str(s): {
            "uplift_at_least_1.2x_propensity": r["arms"]["ratio"]["value"] >= GOAL_RATIO,
            "difference_interval_excludes_0": r["arms"]["difference_per_1000_calls"]["low"] > 0,
            "effects_covered_in_90pct_of_cells": (r["effects"]["covered_share"] or 0)
            >= GOAL_COVERED,
        }
        for s, r in zip(seeds, runs, strict=True)
    }
    out["all_goals_met"] = all(all(g.values()) for g in out["goals"].values())
    return out


def _median(values: list[float]) -> float:
    return round(float(np.median(values)), 3)


def table(runs: list[dict]) -> str:
    """The figures of every seed as a short text table: value [95% interval] per 1,000 calls."""
    head = ["seed", *ARMS, "uplift / propensity", "offers per 1,000", "net of cost", "covered"]
    rows = [head]
    for r in runs:
        a = r["arms"]
        rows.append(
            [
                str(r["config"]["seed"]),
                *(_text(a[f"{arm}_per_1000_calls"]) for arm in ARMS),
                _text(a["ratio"], 2),
                " / ".join(f"{a['offers_per_1000_calls'][arm]:,.0f}" for arm in ARMS),
                " / ".join(f"{a['net_per_1000_calls'][arm]['value']:,.0f}" for arm in ARMS),
                f"{r['effects']['covered_share']:.0%}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def _text(f: dict, digits: int = 0) -> str:
    return f"{f['value']:,.{digits}f} [{f['low']:,.{digits}f}, {f['high']:,.{digits}f}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods", type=int, default=SimulationConfig.periods)
    parser.add_argument("--calls-per-period", type=int, default=SimulationConfig.calls_per_period)
    parser.add_argument("--seed", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--customers", type=int, default=SimulationConfig.customers)
    parser.add_argument("--home", type=Path, help="an existing home with promoted champions")
    parser.add_argument("--data", type=Path, help="the demo data the home was trained on")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.periods < 2:
        parser.error("--periods must be at least 2: one to learn from, one to compare on")
    if (args.home is None) != (args.data is None):
        parser.error("--home and --data go together")
    runs = []
    for seed in args.seed:
        config = SimulationConfig(args.periods, args.calls_per_period, seed, args.customers)
        runs.append(run(config, args.home, args.data))
        print(f"seed {seed} done in {runs[-1]['seconds']['total']:.0f} s", flush=True)
    print("incremental value per 1,000 calls [95% interval]")
    print(table(runs))
    summary = summarize(runs)
    print(f"all goals met on every seed: {summary['all_goals_met']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"summary": summary, "runs": runs}, indent=2, default=str) + "\n"
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    sys.path.remove(str(Path(__file__).resolve().parent))  # bench/batch.py is not the package
    main()
