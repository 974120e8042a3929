"""Simulate agents showing suggestions and customers answering: does learning from answers pay?

Issue 16's goals, in a simulation reproducible by seed: after 20,000 calls the adaptive
ranking (``serving.adaptive``: a learned acceptance ratio per action and tier, Thompson
exploration) reaches at least 90% of the oracle's accepted value, with the static ranking
beside it; the regret curve is plotted; a new action reaches a stable estimate within 2,000
calls of being added.

The world: a demo bank (``tierwise demo-data``) with champions trained and promoted through
the ``tierwise`` CLI (``bench.uplift.prepare_home``, or an existing home with ``--home`` and
``--data``), a fresh online store (``tierwise materialize``) and fresh decision logs in a
temporary folder. Customers answer by ``features.demo.HiddenAcceptance``: a shown action is
accepted with the offline propensity x a hidden multiplier per action and tier that the
offline model does not know and that drifts per period (``--calls-per-period`` calls); agents
skip some suggestions (more under high queue pressure, more lower in the list; a skip is no
answer); ``features.demo.NEW_ACTION``, a product no model knows, is added halfway through.

Every call (a random open customer, channel, queue pressure and time) is ranked by three
arms on the same call and the same draws: one pair of uniforms per (call, action), the skip
and the answer, that every arm's showing of that action meets, so the arms differ only in
what they show:

- ``static``: the policy as shipped before learning (``serving.suggest.rank`` with no
  adaptive state, its control group; it cannot offer the new action, having no model of it);
- ``adaptive``: the service's path in process: the policy's ranking with the adaptive
  state (``serving.suggest.rank``: ``suggest`` without the reasons and talking points, whose
  TreeSHAP nothing here reads), the decision logged (``DecisionLog.record``, with its logged
  propensities and mode), the customer's declines read back from the log, every answer or
  skip recorded (``DecisionLog.add_feedback``, which updates the counts in its transaction)
  and the state re-read (``DecisionLog.adaptive_state``) every ``refresh_calls`` calls, as
  a worker's watch thread does every second; exploration at ``exploration_share``, the new
  action in ``adaptive.new_actions`` from halfway;
- ``oracle``: the same policy handed the truth: an adaptive state whose every cell's ratio
  (and the new action's acceptance) is the hidden one of the period, with no control group
  and no exploration: rank by true acceptance x value under the same rules (the cap of
  ``HiddenAcceptance.MAX_ACCEPTANCE`` aside, which binds only where q x m > 0.95).

The static and oracle arms learn nothing, so their declines (the contact policy's pauses)
are kept in memory by the same rule (``serving.policy``'s window, declines only).

Reported per seed: each arm's accepted value (drawn, and expected: acceptance x (1 - skip)
x value, the same figure without the answer draws' noise), adaptive and static as a share
of the oracle, the regret curve (cumulative oracle - arm accepted value every
``checkpoint_calls`` calls, also plotted to ``bench/results/adaptive-regret.png``) and the
new action's estimate against its truth. Stable: the answer-weighted mean of its per-tier
posterior means within ``tolerance`` (10%) of the answer-weighted truth at a checkpoint and
at every later one; reported as calls after it was added (per tier too, where reached).
Off-policy checks: three candidate policies (``_candidates``) are evaluated on the
adaptive arm's log by ``monitoring.evaluation.evaluate`` (IPS, SNIPS, DR, 95% bootstrap
intervals) and each estimate is set beside the candidate's true value on the same logged
calls (``_off_policy``). Caps: a separate run of ``--caps-calls`` calls puts ``CAPS`` on the
adaptive arm, as the service applies them when it logs a decision, and checks from the log
and from the store's counters that no cap was exceeded in any period.

Over the seeds: each figure side by side with the median and the goals per seed. Writes
``bench/results/adaptive.json``.

    python bench/adaptive.py                         # 20,000 calls, seeds 0-2
    python bench/adaptive.py --calls 4000 --seed 5
    python bench/adaptive.py --home H --data D       # champions of an existing home
    python bench/adaptive.py --max-suggestions 1 --caps-calls 0 \
        --out bench/results/adaptive-top1.json --plot bench/results/adaptive-top1-regret.png

With the queue pressure's lists (3 at normal pressure) nearly every eligible action is
shown whatever the order, so before the new action the three arms show the same and only
the new action separates them; one suggestion per call (``--max-suggestions 1``) makes the
order decide, and so measures what the learned per-tier ratios are worth.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "adaptive.json"
PLOT = ROOT / "bench" / "results" / "adaptive-regret.png"
CHANNELS = (("phone", 0.6), ("branch", 0.25), ("web", 0.15))
PRESSURES = (("low", 0.2), ("normal", 0.5), ("high", 0.3))
ARMS = ("static", "adaptive", "oracle")
SEEDS = (0, 1, 2)  # 0: the seed the simulation was built on; 1 and 2 held out
GOAL_SHARE, GOAL_STABLE_CALLS = 0.9, 2000
_TRUTH_ANSWERS = 10**9  # the oracle's cells: so many answers that the prior does not count


@dataclass(frozen=True)
class SimulationConfig:
    """One run's size, seed and learning settings."""

    calls: int = 20_000
    seed: int = 0
    customers: int = 5000
    calls_per_period: int = 1000  # a day of calls: the hidden acceptance drifts per period
    refresh_calls: int = 50  # calls between re-reads of the adaptive state (a worker: 1 s)
    exploration_share: float = 0.1
    new_action_at: float = 0.5  # the new action is added after this share of the calls
    checkpoint_calls: int = 100  # the step of the regret curve and the new action's estimate
    tolerance: float = 0.1  # the new action's estimate is stable within this relative error
    # the request's max_suggestions for every call (None: the queue pressure's list, 1 to 5);
    # 1 makes the order, and so what answers teach, decide what an agent shows
    max_suggestions: int | None = None
    # ``PolicyConfig.capacity`` of the adaptive arm, as the service applies it (the running
    # caps taken as the decision is logged); None: no caps. The caps check's run, apart:
    # the static and oracle arms rank without running caps, so the main run has none.
    capacity: dict | None = None


CAPS = {  # the caps check's: a stock, a budget and a channel cap, per simulated day
    "actions": {
        "investment": {"per": "day", "offers": 30},
        "upgrade": {"per": "day", "budget": 1500.0, "cost": 25.0},
    },
    "channels": {"branch": 150},
}


@dataclass(frozen=True)
class Call:
    index: int
    decision_id: str
    customer_id: str
    channel: str
    pressure: str
    at: dt.datetime
    limit: int | None = None  # the request's max_suggestions


@dataclass
class Tally:
    """One arm's running figures."""

    accepted_value: float = 0.0
    expected_value: float = 0.0
    shown: int = 0
    accepted: int = 0
    declined: int = 0
    skipped: int = 0
    new_action_shown: int = 0
    declines: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))


def simulate(world, config: SimulationConfig) -> dict:
    """Run the calls through the three arms; return the figures (the module docstring).

    ``world`` is ``bench.uplift.open_world``'s (its decision log takes the adaptive arm's
    decisions and answers).
    """
    from features.demo import NEW_ACTION, HiddenAcceptance
    from serving.capacity import CapacityConfig
    from serving.policy_config import AdaptiveConfig

    hidden = HiddenAcceptance(config.seed)
    rng = np.random.default_rng(config.seed)
    calls = _calls(rng, world.customers.index.to_numpy(), config, world.as_of)
    new_at = int(config.calls * config.new_action_at)
    base = world.policy.model_copy(update={"holdout_shares": {}})
    learn = AdaptiveConfig(exploration_share=config.exploration_share)
    capped = base.model_copy(update={"capacity": CapacityConfig(**(config.capacity or {}))})
    policies = {
        "static": base.model_copy(
            update={"adaptive": learn.model_copy(update={"exploration_share": 0.0})}
        ),
        "adaptive": capped.model_copy(update={"adaptive": learn}),
        "oracle": base.model_copy(
            update={
                "control_share": 0.0,
                "adaptive": AdaptiveConfig(exploration_share=0.0, min_answers=0),
            }
        ),
    }
    with_new = {
        arm: p.model_copy(
            update={"adaptive": p.adaptive.model_copy(update={"new_actions": (NEW_ACTION,)})}
        )
        for arm, p in policies.items()
        if arm != "static"  # no model of it, and no learning: static cannot offer it
    }
    tallies = {arm: Tally() for arm in ARMS}
    curve: list[dict] = []
    estimates: list[dict] = []
    customers: dict = {}
    known = _probabilities(world)
    truths: dict = {}  # (period, new action added) -> the oracle's state
    state = world.log.adaptive_state()
    for call in calls:
        new = call.index >= new_at
        period = call.index // config.calls_per_period
        if call.index % config.refresh_calls == 0:
            state = world.log.adaptive_state()
        customer, probabilities = _customer(world, call.customer_id, known, customers)
        policy = {a: (with_new[a] if new and a in with_new else p) for a, p in policies.items()}
        if (period, new) not in truths:
            truths[(period, new)] = _truth_state(world, hidden, period, new)
        truth = truths[(period, new)]
        shown = {
            "static": _ranked(
                world, customer, policy["static"], call, probabilities, None, tallies["static"]
            ),
            "adaptive": _suggested(world, customer, policy["adaptive"], call, probabilities, state),
            "oracle": _ranked(
                world, customer, policy["oracle"], call, probabilities, truth, tallies["oracle"]
            ),
        }
        tier = customer.tier
        for arm in ARMS:
            for s in shown[arm]:
                p = hidden.acceptance(s.action, tier, s.probability, period)
                skip = hidden.skip(call.pressure, s.rank)
                u_skip, u_answer = _uniforms(config.seed, call.index, s.action)
                response = (
                    "skipped" if u_skip < skip else "accepted" if u_answer < p else "declined"
                )
                _tally(tallies[arm], s, response, p * (1 - skip), call, NEW_ACTION)
                if arm == "adaptive":
                    world.log.add_feedback(
                        call.decision_id,
                        s.suggestion_id,
                        response,
                        "sim-agent",
                        now=call.at + dt.timedelta(minutes=1),
                    )
        if (call.index + 1) % config.checkpoint_calls == 0:
            curve.append(_point(call.index + 1, tallies))
            if new:
                estimates.append(
                    _estimate(call.index + 1 - new_at, world.log.adaptive_state(), hidden, period)
                )
    learned = world.log.adaptive_state()
    rank_of = {
        c.decision_id: (c, *_customer(world, c.customer_id, known, customers)) for c in calls
    }
    # Caps take suggestions off after the logged propensities were computed: no estimator
    # could use such a log, so the caps check's run has no off-policy section.
    off_policy = (
        {}
        if config.capacity
        else _off_policy(world, policies["adaptive"], learned, rank_of, hidden, config)
    )
    return {
        **({"caps": _caps_check(world, calls, config)} if config.capacity else {}),
        "off_policy": off_policy,
        "off_policy_covered": {  # the truth of accepted value per decision, every estimator
            name: all(c["value"] for c in figures["covered"].values())
            for name, figures in off_policy.items()
        },
        "arms": {arm: _figures(t) for arm, t in tallies.items()},
        "share_of_oracle": _shares(tallies),
        "share_of_oracle_before_new_action": _shares_at(curve, new_at),
        "regret_curve": curve,
        "new_action": _stability(estimates, config.tolerance),
    }


def _calls(rng: np.random.Generator, ids: np.ndarray, config: SimulationConfig, as_of: dt.date):
    """The run's calls: random open customers, channels and pressures, in time order, a
    period (``calls_per_period`` calls) per day from the day after the data's end."""
    n = config.calls
    who = rng.choice(ids, n)
    channel = rng.choice([c for c, _ in CHANNELS], n, p=[p for _, p in CHANNELS])
    pressure = rng.choice([c for c, _ in PRESSURES], n, p=[p for _, p in PRESSURES])
    start = dt.datetime.combine(as_of, dt.time(), dt.UTC) + dt.timedelta(days=1)
    step = 86_400 / config.calls_per_period
    return [
        Call(
            i,
            f"sim:{config.seed}:{i}",
            str(who[i]),
            str(channel[i]),
            str(pressure[i]),
            start + dt.timedelta(seconds=i * step),
            config.max_suggestions,
        )
        for i in range(n)
    ]


def _uniforms(seed: int, index: int, action: str) -> tuple[float, float]:
    """The (skip, answer) uniforms of a call's action: the same for every arm that shows it."""
    digest = hashlib.sha256(f"{seed}:{index}:{action}".encode()).digest()
    a, b = np.frombuffer(digest[:16], "<u8")
    return float(a) / 2.0**64, float(b) / 2.0**64


def _probabilities(world) -> dict:
    """Customer id -> every target's calibrated probability, predicted for all open customers
    at once (the batch's ``encode`` and ``predict_probabilities``): the models and features
    are fixed for the run, so each customer's are computed once, not per call."""
    from models.scoring import encode, predict_probabilities

    ids = world.customers.index.tolist()
    held = [world.store.get(c).held for c in ids]
    found = predict_probabilities(
        world.scorer.predictors, encode(world.scorer.encodings, world.customers), held
    )
    return {
        c: {t: (float(p[i]) if np.isfinite(p[i]) else None) for t, p in found.items()}
        for i, c in enumerate(ids)
    }


def _customer(world, customer_id: str, probabilities: dict, cache: dict):
    """The stored customer and its probabilities (the store is read once per customer)."""
    if customer_id not in cache:
        cache[customer_id] = world.store.get(customer_id)
    return cache[customer_id], probabilities[customer_id]


def _context(call: Call):
    from serving.policy import Context

    return Context(call.channel, None, call.pressure, "sim-agent")  # type: ignore[arg-type]


def _ranked(world, customer, policy, call: Call, probabilities, adaptive, tally: Tally):
    """The static or oracle arm's suggestions: the policy's ranking with in-memory declines."""
    from serving.adaptive import EMPTY
    from serving.policy import decline_window
    from serving.suggest import rank

    since, _ = decline_window(call.at, policy)
    declines = {
        a: [t for t in times if t >= since] for a, times in tally.declines[call.customer_id].items()
    }
    args = (customer, world.scorer, policy, _context(call), declines, call.at, call.limit)
    ranking = rank(*args, call.decision_id, probabilities, None, adaptive or EMPTY)
    return ranking.suggestions


def _suggested(world, customer, policy, call: Call, probabilities, state):
    """The adaptive arm's suggestions, logged as the service logs them.

    The service's ``suggest`` is ``rank`` on the customer's predicted probabilities plus the
    reasons and talking points of what is shown; here ``rank`` gets the probabilities
    predicted once per customer, and the decision logged (``record_of``) is the one
    ``suggest`` makes without reasons and talking points (their TreeSHAP would be most of
    the run's time, and nothing here reads them).
    """
    from serving.capacity import caps_of
    from serving.decisions import record_of, without_capped
    from serving.policy import decline_window
    from serving.replay import policy_inputs
    from serving.suggest import Decision, _Work, rank, suggestion_id

    since, _ = decline_window(call.at, policy)
    declines = world.log.declines(call.customer_id, since)
    context = _context(call)
    args = (customer, world.scorer, policy, context, declines, call.at, call.limit)
    ranking = rank(*args, call.decision_id, probabilities, None, state)
    suggestions = tuple(
        replace(s, suggestion_id=suggestion_id(call.decision_id, s.action))
        for s in ranking.suggestions
    )
    decision = Decision(
        call.decision_id,
        _assessment(world, customer, probabilities, policy),
        suggestions,
        ranking.control,
        ranking.eligible,
        ranking.not_shown,
        ranking.mode,
        policy_inputs(  # the Customer ``suggest`` ranks (``_Work``: the one that builds it)
            _Work(customer, world.scorer, policy, probabilities).policy_customer(),
            world.scorer.product_by_target,
            world.scorer.known_products,
            call.limit,
        ),
    )
    caps = {s.action: caps_of(s.action, call.channel, policy.capacity) for s in suggestions}
    refused = world.log.record(record_of(decision, context, call.at), caps)
    return without_capped(decision, refused).suggestions


def _assessment(world, customer, probabilities, policy):
    """The parts of ``suggest``'s assessment that the decision log keeps."""
    from serving.suggest import Assessment, ChurnView, TierView, UpgradeView, risk_band

    churn = probabilities.get("churn")
    c = customer
    return Assessment(
        customer_id=c.customer_id,
        as_of=c.as_of,
        tier=TierView.of(c),
        churn=ChurnView(churn, risk_band(churn, policy), ()),
        upgrade=UpgradeView(probabilities.get("upgrade"), c.next_tier, c.gap_to_next_tier),
        cross_sell=(),
        probabilities=dict(probabilities),
        talking_points=(),
        model_versions=world.scorer.versions,
    )


def _truth_state(world, hidden, period: int, new: bool):
    """An adaptive state that knows the period's hidden acceptance: every (action, tier)
    cell's ratio is its true multiplier, the new action's acceptance its true rate."""
    from features.demo import NEW_ACTION, TIER_ORDER
    from serving.adaptive import AdaptiveState, Cell

    n = _TRUTH_ANSWERS
    actions = ["retention", "upgrade", *sorted(world.scorer.product_by_target.values())]
    cells = {}
    for tier in TIER_ORDER:
        for action in actions:
            m = hidden.multiplier(action, tier, period)
            cells[(action, tier)] = Cell(n, round(m * n), float(n))
        if new:
            rate = hidden.acceptance(NEW_ACTION, tier, None, period)
            cells[(NEW_ACTION, tier)] = Cell(n, round(rate * n), 0.0)
    return AdaptiveState(cells)


def _tally(t: Tally, s, response: str, expected: float, call: Call, new_action: str) -> None:
    t.shown += 1
    t.new_action_shown += s.action == new_action
    t.expected_value += expected * s.value
    if response == "accepted":
        t.accepted += 1
        t.accepted_value += s.value
    elif response == "declined":
        t.declined += 1
        t.declines[call.customer_id][s.action].append(call.at + dt.timedelta(minutes=1))
    else:
        t.skipped += 1


def _point(calls: int, tallies: dict[str, Tally]) -> dict:
    """A point of the regret curve: cumulative oracle - arm accepted value after ``calls``."""
    oracle = tallies["oracle"]
    out: dict = {
        "calls": calls,
        "oracle": round(oracle.accepted_value, 2),
        "oracle_expected": round(oracle.expected_value, 2),
    }
    for arm in ("static", "adaptive"):
        out[arm] = round(oracle.accepted_value - tallies[arm].accepted_value, 2)
        out[f"{arm}_expected"] = round(oracle.expected_value - tallies[arm].expected_value, 2)
    return out


def _estimate(calls: int, state, hidden, period: int) -> dict:
    """The new action's posterior mean per tier against its truth, ``calls`` after it came."""
    from features.demo import NEW_ACTION, TIER_ORDER

    tiers = {}
    for tier in TIER_ORDER:
        cell = state.cell(NEW_ACTION, tier)
        tiers[tier] = {
            "answers": cell.answers,
            "estimate": state.acceptance(NEW_ACTION, tier),
            "truth": hidden.acceptance(NEW_ACTION, tier, None, period),
        }
    answers = sum(t["answers"] for t in tiers.values())
    pooled = (
        {
            k: sum(t["answers"] * t[k] for t in tiers.values()) / answers
            for k in ("estimate", "truth")
        }
        if answers
        else {"estimate": None, "truth": None}
    )
    return {"calls": calls, "answers": answers, **pooled, "tiers": tiers}


def _stability(estimates: list[dict], tolerance: float) -> dict:
    """Calls after the new action came until its estimate was within ``tolerance`` of the
    truth and stayed there (None: not by the end), pooled over tiers and per tier."""

    def within(e: dict) -> bool:
        return e["estimate"] is not None and abs(e["estimate"] / e["truth"] - 1) <= tolerance

    def settled(points: list[tuple[int, bool]]) -> int | None:
        stable = None
        for calls, ok in points:
            stable = (stable if stable is not None else calls) if ok else None
        return stable

    pooled = settled([(e["calls"], within(e)) for e in estimates])
    tiers = {}
    for tier in estimates[0]["tiers"] if estimates else ():
        points = [(e["calls"], within(e["tiers"][tier])) for e in estimates]
        tiers[tier] = settled(points)
    last = estimates[-1] if estimates else {}
    return {
        "stable_after_calls": pooled,
        "stable_after_calls_by_tier": tiers,
        "tolerance": tolerance,
        "final": {
            k: (round(v, 4) if isinstance(v, float) else v) for k, v in last.items() if k != "tiers"
        },
        "final_by_tier": {
            tier: {k: round(v, 4) if isinstance(v, float) else v for k, v in t.items()}
            for tier, t in last.get("tiers", {}).items()
        },
    }


def _caps_check(world, calls: list[Call], config: SimulationConfig) -> dict:
    """Every running cap's most used share of its limit in any period, from the adaptive
    arm's logged suggestions (counted here) and from the store's counters; exceeded: any
    above 1."""
    from serving.capacity import CapacityConfig, caps_of

    capacity = CapacityConfig(**(config.capacity or {}))
    at = {c.decision_id: c for c in calls}
    used: dict = defaultdict(float)
    limits = {}
    for d in read_logged(world):
        call = at[d.decision_id]
        for s in d.suggestions:
            for cap in caps_of(str(s["action"]), call.channel, capacity):
                used[(cap.key, cap.period_start(call.at))] += cap.amount
                limits[cap.key] = cap.limit
    counted = {
        k: round(max(v for (key, _), v in used.items() if key == k) / limits[k], 4) for k in limits
    }
    stored = {}
    for (key, _), v in world.log.capacity_used().items():
        stored[key] = max(stored.get(key, 0.0), round(v / limits.get(key, float("inf")), 4))
    return {
        "capacity": config.capacity,
        "most_used_share_logged": counted,
        "most_used_share_counters": stored,
        "exceeded": any(v > 1 for v in (*counted.values(), *stored.values())),
        "capped_off": sum(
            n.get("reason") == "capacity" for d in read_logged(world) for n in d.not_shown
        ),
    }


def read_logged(world) -> list:
    """The adaptive arm's logged decisions, with their not-shown lists."""
    from serving.decisions import read_decisions

    return read_decisions(world.log.url) or []


def _candidates(logging, learned) -> dict:
    """Three candidate policies, each with the state it ranks with: the logging policy
    greedy with what the run learned, the same with nothing learned (the offline model's
    ranking), and the learned one with levers that favour investment and hold retention
    back. None offers the new action: the first half of the log could not show it, so no
    estimator could see what it would bring there."""
    from serving.adaptive import EMPTY

    levers = {"investment": 2.0, "retention": 0.5}
    return {
        "learned": (logging, learned),
        "offline": (logging, EMPTY),
        "favour_investment": (logging.model_copy(update={"levers": levers}), learned),
    }


def _off_policy(world, logging, learned, rank_of: dict, hidden, config: SimulationConfig) -> dict:
    """Each candidate's off-policy estimates on the adaptive arm's log
    (``monitoring.evaluation.evaluate``: IPS, SNIPS, DR with 95% intervals) beside its true
    value: the candidate's greedy slate for every logged call (its customer, context, time
    and the declines recorded before it, as the estimator replays it), each suggestion
    worth its true acceptance x (1 - the agent's skip chance) x value. That is the very
    quantity the estimators estimate (the same decisions, not fresh ones: fresh calls
    would bring other declines and another sample of contexts into the comparison)."""
    from monitoring.evaluation import ESTIMATORS, evaluate
    from serving.decisions import read_decision_log, read_decisions

    decisions = read_decisions(world.log.url)
    feedback = read_decision_log(world.log.url)[1]
    out = {}
    for name, (candidate, state) in _candidates(logging, learned).items():
        found = evaluate(decisions, feedback, candidate, logging, adaptive=state, seed=config.seed)
        truth = _true_value(world, candidate, state, rank_of, hidden, config)
        est = found["estimates"]
        out[name] = {
            "truth": truth,
            "estimates": est,
            "covered": {
                e: {r: bool(est[e][r]["low"] <= truth[r] <= est[e][r]["high"]) for r in truth}
                for e in ESTIMATORS
                if e != "current"
            },
            "effective_sample_size": round(found["effective_sample_size"], 1),
            "decisions": found["decisions"],
            "warnings": found["warnings"],
        }
    return out


def _true_value(world, candidate, state, rank_of: dict, hidden, config: SimulationConfig) -> dict:
    """A candidate's true accepted suggestions and value per decision on the logged calls."""
    from serving.policy import decline_window
    from serving.suggest import rank

    greedy = candidate.model_copy(
        update={
            "control_share": 0.0,
            "adaptive": candidate.adaptive.model_copy(update={"exploration_share": 0.0}),
        }
    )
    accepted = value = 0.0
    for call, customer, probabilities in rank_of.values():
        since, _ = decline_window(call.at, greedy)
        declines = {
            a: [t for t in times if t < call.at]
            for a, times in world.log.declines(call.customer_id, since).items()
        }
        args = (customer, world.scorer, greedy, _context(call), declines, call.at, call.limit)
        period = call.index // config.calls_per_period
        for s in rank(*args, call.decision_id, probabilities, None, state).suggestions:
            p = hidden.acceptance(s.action, customer.tier, s.probability, period)
            p *= 1 - hidden.skip(call.pressure, s.rank)
            accepted += p
            value += p * s.value
    n = max(len(rank_of), 1)
    return {"accepted": accepted / n, "value": value / n}


def _figures(t: Tally) -> dict:
    return {
        "accepted_value": round(t.accepted_value, 2),
        "expected_value": round(t.expected_value, 2),
        "shown": t.shown,
        "accepted": t.accepted,
        "declined": t.declined,
        "skipped": t.skipped,
        "new_action_shown": t.new_action_shown,
    }


def _shares(tallies: dict[str, Tally]) -> dict:
    oracle = tallies["oracle"]
    return {
        arm: {
            "accepted_value": round(tallies[arm].accepted_value / oracle.accepted_value, 4),
            "expected_value": round(tallies[arm].expected_value / oracle.expected_value, 4),
        }
        for arm in ("static", "adaptive")
    }


def _shares_at(curve: list[dict], calls: int) -> dict:
    """Each arm's share of the oracle at the last curve point by ``calls`` (before the new
    action: only the hidden per-tier multipliers tell the arms apart there)."""
    points = [p for p in curve if p["calls"] <= calls]
    if not points:
        return {}
    p = points[-1]
    return {
        arm: {
            "calls": p["calls"],
            "accepted_value": round(1 - p[arm] / p["oracle"], 4) if p["oracle"] else None,
            "expected_value": round(1 - p[f"{arm}_expected"] / p["oracle_expected"], 4)
            if p["oracle_expected"]
            else None,
        }
        for arm in ("static", "adaptive")
    }


def run(config: SimulationConfig, home: Path | None = None, data: Path | None = None) -> dict:
    """Simulate one seed on the champions of ``home`` and its demo ``data`` (both or
    neither: a home prepared for the seed in a temporary folder); the online store and the
    decision log are always fresh. Returns the report."""
    from bench.uplift import materialize_store, open_world, prepare_home

    if (home is None) != (data is None):
        raise ValueError("give both home and data, or neither")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tierwise-adaptive-") as tmp:
        work = Path(tmp)
        if home is None:
            home = work / "home"
            data = prepare_home(home, config.customers, config.seed)
        online_url = f"sqlite:///{work / 'online.db'}"
        materialize_store(home, data, online_url)
        prepared = time.perf_counter() - started
        world = open_world(home, online_url, f"sqlite:///{work / 'decisions.db'}", 0.0)
        try:
            figures = simulate(world, config)
        finally:
            world.log.close()
    return {
        "config": asdict(config),
        "customers_open": len(world.customers),
        "in_process": "policy, suggestions, decision log and feedback called in process (no "
        "HTTP), for speed",
        "seconds": {
            "prepare": round(prepared, 1),
            "total": round(time.perf_counter() - started, 1),
        },
        **figures,
    }


def summarize(runs: list[dict]) -> dict:
    """The seeds' figures side by side with their median, and the goals checked per seed."""
    seeds = [str(r["config"]["seed"]) for r in runs]
    out: dict = {"seeds": [r["config"]["seed"] for r in runs], "built_on_seed": SEEDS[0]}
    for arm in ("static", "adaptive"):
        for figure in ("accepted_value", "expected_value"):
            side = {s: r["share_of_oracle"][arm][figure] for s, r in zip(seeds, runs, strict=True)}
            out[f"{arm}_share_of_oracle_{figure}"] = {
                "by_seed": side,
                "median": _median(list(side.values())),
            }
    stable = {s: r["new_action"]["stable_after_calls"] for s, r in zip(seeds, runs, strict=True)}
    out["new_action_stable_after_calls"] = {
        "by_seed": stable,
        "median": _median([v if v is not None else float("inf") for v in stable.values()]),
    }
    out["off_policy_covered"] = {
        s: r["off_policy_covered"] for s, r in zip(seeds, runs, strict=True)
    }
    out["goals"] = {
        s: {
            "adaptive_at_least_90pct_of_oracle": r["share_of_oracle"]["adaptive"]["accepted_value"]
            >= GOAL_SHARE,
            "new_action_stable_within_2000_calls": r["new_action"]["stable_after_calls"] is not None
            and r["new_action"]["stable_after_calls"] <= GOAL_STABLE_CALLS,
            "off_policy_truth_within_every_interval": all(r["off_policy_covered"].values()),
        }
        for s, r in zip(seeds, runs, strict=True)
    }
    out["all_goals_met"] = all(all(g.values()) for g in out["goals"].values())
    return out


def _median(values: list[float]) -> float:
    return round(float(np.median(values)), 4)


def plot(runs: list[dict], path: Path) -> None:
    """The regret curves of every seed (adaptive solid, static dashed) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, r in enumerate(runs):
        calls = [p["calls"] for p in r["regret_curve"]]
        color = f"C{i}"
        seed = r["config"]["seed"]
        ax.plot(
            calls,
            [p["adaptive"] for p in r["regret_curve"]],
            color=color,
            label=f"adaptive, seed {seed}",
        )
        ax.plot(
            calls,
            [p["static"] for p in r["regret_curve"]],
            color=color,
            linestyle="--",
            label=f"static, seed {seed}",
        )
    new_at = runs[0]["config"]["calls"] * runs[0]["config"]["new_action_at"]
    ax.axvline(new_at, color="grey", linewidth=0.8, linestyle=":")
    ax.text(new_at, ax.get_ylim()[1] * 0.95, " new action", color="grey", fontsize=8, va="top")
    ax.set_xlabel("calls")
    ax.set_ylabel("cumulative regret (oracle - arm accepted value)")
    ax.set_title("Learning from answers: regret against the oracle")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(runs: list[dict]) -> str:
    """Per seed: accepted value of each arm, shares of the oracle, the new action's calls."""
    head = [
        "seed",
        *ARMS,
        "adaptive / oracle",
        "static / oracle",
        "new action stable after",
        "off-policy truth covered",
    ]
    rows = [head]
    for r in runs:
        shares = r["share_of_oracle"]
        stable = r["new_action"]["stable_after_calls"]
        rows.append(
            [
                str(r["config"]["seed"]),
                *(f"{r['arms'][arm]['accepted_value']:,.0f}" for arm in ARMS),
                f"{shares['adaptive']['accepted_value']:.1%}",
                f"{shares['static']['accepted_value']:.1%}",
                "not stable" if stable is None else f"{stable:,} calls",
                f"{sum(r['off_policy_covered'].values())} of {len(r['off_policy_covered'])}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=SimulationConfig.calls)
    parser.add_argument("--seed", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--customers", type=int, default=SimulationConfig.customers)
    parser.add_argument(
        "--max-suggestions", type=int, help="every call's list length (default: by pressure)"
    )
    parser.add_argument("--home", type=Path, help="an existing home with promoted champions")
    parser.add_argument("--data", type=Path, help="the demo data the home was trained on")
    parser.add_argument(
        "--caps-calls",
        type=int,
        default=5000,
        help="calls of the caps check's run (the first seed, CAPS on the adaptive arm; 0: none)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args(argv)
    if (args.home is None) != (args.data is None):
        parser.error("--home and --data go together")
    runs = []
    for seed in args.seed:
        config = replace(
            SimulationConfig(),
            calls=args.calls,
            seed=seed,
            customers=args.customers,
            max_suggestions=args.max_suggestions,
        )
        runs.append(run(config, args.home, args.data))
        print(f"seed {seed} done in {runs[-1]['seconds']['total']:.0f} s", flush=True)
    print("accepted value after", f"{args.calls:,}", "calls")
    print(table(runs))
    summary = summarize(runs)
    caps = None
    if args.caps_calls:
        config = replace(
            SimulationConfig(),
            calls=args.caps_calls,
            seed=args.seed[0],
            customers=args.customers,
            max_suggestions=args.max_suggestions,
            capacity=CAPS,
        )
        caps = run(config, args.home, args.data)["caps"]
        summary["caps_never_exceeded"] = not caps["exceeded"]
        summary["all_goals_met"] = summary["all_goals_met"] and not caps["exceeded"]
        print(
            f"caps check ({args.caps_calls:,} calls): most used shares {caps['most_used_share_counters']}"
        )
    print(f"all goals met on every seed: {summary['all_goals_met']}")
    plot(runs, args.plot)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"summary": summary, "caps_check": caps, "runs": runs}, indent=2, default=str)
        + "\n"
    )
    print(f"written to {args.out} and {args.plot}")


if __name__ == "__main__":
    sys.path.remove(str(Path(__file__).resolve().parent))  # bench/batch.py is not the package
    sys.path.insert(0, str(ROOT))  # bench.uplift, as a package module
    main()
