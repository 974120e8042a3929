"""Off-policy evaluation: what a candidate policy would have got on the logged decisions.

Each logged decision is ranked again by the candidate (``rank_actions`` on the policy's
inputs as logged, ``serving.replay``; the declines are those recorded in the feedback
before the decision, so the contact policy pauses as it did then), and the answers the
logged suggestions got are reweighed by the logged propensities. Estimates are per
decision, at the item-position level (the standard for slates whose propensities are
logged per position): for a logged suggestion of action a at rank k with propensity p and
reward r, the candidate's weight is ``w = 1[the candidate shows a at k] / p``, and

- IPS   = sum(w r) / N decisions: unbiased where the logging policy could show what the
  candidate shows (p > 0), but noisy when weights are large;
- SNIPS = per rank k, sum(w r) / sum(w) x the share of decisions whose candidate slate
  fills rank k (for one suggestion per decision: sum(w r) / sum(w)); a little biased,
  much steadier;
- DR    = mean over decisions of [r_hat of the candidate's slate + sum over logged
  suggestions of w (r - r_hat)], with the reward model r_hat(a, x) = the logged
  probability x a per-action calibration factor fitted on the log (accepted / sum of
  probabilities of the action's logged suggestions; 1 for an action never logged): right
  if either the propensities or the reward model is.

Two rewards: accepted suggestions per decision (accepted = 1; declined, skipped,
not_shown or no answer = 0), and accepted value per decision (the suggestion's value when
accepted). The logging policy's own figures are the observed means. Intervals: 95%
percentile bootstrap over decisions (``REPLICATES`` 500, seeded; the reward model is kept
fixed). The candidate ranks greedily: its control group and exploration measure a policy,
they are not part of what is evaluated. Decisions logged before the inputs or the
propensities were kept are left out and counted.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from features.urls import safe_url
from serving.adaptive import EMPTY, AdaptiveState
from serving.decisions import DecisionRecord, FeedbackRecord, read_decision_log, read_decisions
from serving.policy import Context, PolicyConfig, Suggestion, action_value, rank_actions
from serving.replay import replay_of

REPLICATES = 500
SMALL_SAMPLE = 100  # an effective sample size below this gets a warning
ESTIMATORS = ("current", "ips", "snips", "dr")
REWARDS = ("accepted", "value")


@dataclass(frozen=True)
class _Item:
    """One suggestion: its rank, action, the logged propensity (1 for the candidate's own),
    the reward model's acceptance and the suggestion's value."""

    rank: int
    action: str
    propensity: float
    probability: float
    value: float
    accepted: int = 0


@dataclass(frozen=True)
class _Replayed:
    """A logged decision beside the candidate's slate for it."""

    logged: tuple[_Item, ...]
    candidate: tuple[_Item, ...]


def evaluate(
    decisions: Sequence[DecisionRecord],
    feedback: Iterable[FeedbackRecord],
    candidate: PolicyConfig,
    current: PolicyConfig | None = None,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    adaptive: AdaptiveState = EMPTY,
    seed: int = 0,
    replicates: int = REPLICATES,
) -> dict:
    """IPS, SNIPS and DR estimates of a candidate policy on logged decisions, beside the
    logging policy's observed figures, with 95% bootstrap intervals.

    Args:
        decisions: logged decisions (``read_decisions``: with their inputs).
        feedback: every feedback row of the log (rewards, and the declines the contact
            policy paused on at each decision's time).
        candidate: the policy to evaluate (ranked greedily: no control group, no
            exploration).
        current: the logging policy, for the value of an action the candidate shows and
            the log did not (default: the default policy).
        since, until: keep decisions made on these UTC days or between them (inclusive).
        adaptive: learned acceptance the candidate ranks with (default: none, every ratio
            1).
        seed, replicates: the bootstrap's.

    Returns:
        a JSON-ready dict: ``decisions`` (read, used, left out without inputs or without
        propensities), ``estimates`` (estimator -> reward -> estimate, low, high; rewards
        ``accepted`` and ``value`` per decision), ``effective_sample_size`` (Kish's, of the
        logged suggestions' weights), ``calibration`` (action -> the reward model's
        factor), ``method`` (interval and assumptions in words) and ``warnings``.
    """
    kept = [d for d in decisions if _within(d.created_at, since, until)]
    rewards, declines = _answers(feedback)
    ready = [d for d in kept if d.inputs is not None and _has_propensities(d)]
    greedy = _greedy(candidate)
    valuation = current or PolicyConfig()
    logged = [_logged_items(d, rewards) for d in ready]
    factors = calibration(item for items in logged for item in items)
    replayed = [
        _Replayed(
            items,
            tuple(
                _candidate_item(s)
                for s in _slate(d, greedy, valuation, declines.get(d.customer_id, ()), adaptive)
            ),
        )
        for d, items in zip(ready, logged, strict=True)
    ]
    arrays = _Arrays.of(replayed, factors)
    no_inputs = sum(d.inputs is None for d in kept)
    counts = {
        "read": len(kept),
        "used": len(ready),
        "no_inputs": no_inputs,
        "no_propensity": len(kept) - len(ready) - no_inputs,
    }
    ess = arrays.effective_sample_size()
    return {
        "decisions": counts,
        "estimates": _with_intervals(arrays, seed, replicates),
        "effective_sample_size": ess,
        "calibration": dict(sorted(factors.items())),
        "method": {
            "interval": f"95% percentile bootstrap over decisions, {replicates} replicates, "
            f"seed {seed}",
            "declines": "the declines recorded before each decision (the contact policy's "
            "pauses as they were)",
            "ranking": "the candidate ranks greedily (no control group, no exploration); "
            + ("with the given learned acceptance" if adaptive is not EMPTY else "every ratio 1"),
            "capacity": "the service's running caps are not replayed",
        },
        "warnings": _warnings(counts, ess),
    }


def evaluate_log(
    url: str,
    candidate: PolicyConfig,
    current: PolicyConfig | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    seed: int = 0,
) -> dict:
    """``evaluate`` on the decision log at ``url`` (read only).

    Raises:
        LookupError: no decision log at ``url``.
    """
    end = None if until is None else dt.datetime.combine(until, dt.time.max, dt.UTC)
    decisions = read_decisions(url, end)
    log = read_decision_log(url)
    if decisions is None or log is None:
        raise LookupError(f"no decision log at {safe_url(url)}")
    return evaluate(decisions, log[1], candidate, current, since=since, until=until, seed=seed)


def calibration(items: Iterable[_Item]) -> dict[str, float]:
    """Action -> accepted / sum of logged probabilities of its suggestions: the reward
    model's factor on the logged probability (1 where the probabilities sum to 0)."""
    accepted: dict[str, float] = {}
    expected: dict[str, float] = {}
    for item in items:
        accepted[item.action] = accepted.get(item.action, 0.0) + item.accepted
        expected[item.action] = expected.get(item.action, 0.0) + item.probability
    return {a: accepted[a] / e if e > 0 else 1.0 for a, e in expected.items()}


def evaluation_table(result: Mapping) -> str:
    """The estimates as a plain-text table, for the command line."""
    lines = [f"{'':10}{'accepted / decision':>34}{'accepted value / decision':>40}"]
    names = {"current": "current", "ips": "IPS", "snips": "SNIPS", "dr": "DR"}
    for estimator in ESTIMATORS:
        cells = [
            _cell(result["estimates"][estimator][reward], digits)
            for reward, digits in (("accepted", 4), ("value", 2))
        ]
        lines.append(f"{names[estimator]:10}{cells[0]:>34}{cells[1]:>40}")
    return "\n".join(lines)


def _cell(figure: Mapping[str, float], digits: int) -> str:
    return (
        f"{figure['estimate']:.{digits}f} [{figure['low']:.{digits}f}, {figure['high']:.{digits}f}]"
    )


def _within(at: dt.datetime, since: dt.date | None, until: dt.date | None) -> bool:
    day = at.astimezone(dt.UTC).date()
    return (since is None or day >= since) and (until is None or day <= until)


def _answers(
    feedback: Iterable[FeedbackRecord],
) -> tuple[dict[tuple[str, str], str], dict[str, list[tuple[dt.datetime, str]]]]:
    """(decision_id, suggestion_id) -> response, and customer -> their declines in time order."""
    rewards: dict[tuple[str, str], str] = {}
    declines: dict[str, list[tuple[dt.datetime, str]]] = {}
    for f in feedback:
        rewards[f.decision_id, f.suggestion_id] = f.response
        if f.response == "declined":
            declines.setdefault(f.customer_id, []).append((f.created_at, f.action))
    return rewards, {c: sorted(d) for c, d in declines.items()}


def _has_propensities(decision: DecisionRecord) -> bool:
    return all(_positive(s.get("propensity")) for s in decision.suggestions)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _greedy(config: PolicyConfig) -> PolicyConfig:
    """The policy without its control group and exploration: its deterministic ranking."""
    adaptive = config.adaptive.model_copy(update={"exploration_share": 0.0})
    return config.model_copy(update={"control_share": 0.0, "adaptive": adaptive})


def _logged_items(decision: DecisionRecord, rewards: Mapping[tuple[str, str], str]) -> tuple:
    return tuple(
        _Item(
            int(s["rank"]),
            str(s["action"]),
            float(s["propensity"]),
            float(s.get("probability") or 0.0),
            float(s.get("value") or 0.0),
            int(rewards.get((decision.decision_id, s["suggestion_id"])) == "accepted"),
        )
        for s in decision.suggestions
    )


def _slate(
    decision: DecisionRecord,
    candidate: PolicyConfig,
    current: PolicyConfig,
    declines: Sequence[tuple[dt.datetime, str]],
    adaptive: AdaptiveState,
) -> tuple[Suggestion, ...]:
    """The candidate's suggestions for a logged decision, valued as the logging policy
    values them (so the reward model and the logged rewards agree)."""
    replay = replay_of(decision.inputs or {}, decision.customer_id, decision.probabilities)
    c = decision.context
    context = Context(
        channel=str(c.get("channel")),
        call_reason=c.get("call_reason"),
        queue_pressure=c.get("queue_pressure") or "normal",
        agent_id=c.get("agent_id"),
    )
    before: dict[str, list[dt.datetime]] = {}
    for at, action in declines:
        if at < decision.created_at:
            before.setdefault(action, []).append(at)
    ranking = rank_actions(
        replay.customer,
        context,
        candidate,
        before,
        decision.created_at,
        replay.max_suggestions,
        decision.decision_id,
        replay.product_by_target,
        replay.known_products,
        adaptive,
    )
    logged = {str(s["action"]): float(s.get("value") or 0.0) for s in decision.suggestions}
    return tuple(
        replace(
            s,
            value=logged.get(s.action) or action_value(s.kind, s.action, replay.customer, current),
        )
        for s in ranking.suggestions
    )


def _candidate_item(s: Suggestion) -> _Item:
    return _Item(s.rank, s.action, 1.0, s.probability, s.value)


@dataclass(frozen=True)
class _Arrays:
    """Per decision and rank, what every estimator sums (rank k in column k - 1)."""

    weight: np.ndarray  # w of the logged suggestion at each rank (0 where none)
    accepted: np.ndarray  # its reward
    value: np.ndarray  # its accepted value
    filled: np.ndarray  # whether the candidate's slate fills the rank
    direct: np.ndarray  # (decisions, 2): r_hat of the candidate's slate, accepted and value
    residual: np.ndarray  # (decisions, 2): sum of w (r - r_hat) over the logged suggestions

    @classmethod
    def of(cls, replayed: Sequence[_Replayed], factors: Mapping[str, float]) -> _Arrays:
        ranks = max((i.rank for r in replayed for i in (*r.logged, *r.candidate)), default=1)
        shape = (len(replayed), ranks)
        weight, accepted, value, filled = (np.zeros(shape) for _ in range(4))
        direct, residual = np.zeros((len(replayed), 2)), np.zeros((len(replayed), 2))
        for n, r in enumerate(replayed):
            shows = {(i.action, i.rank) for i in r.candidate}
            for i in r.candidate:
                r_hat = i.probability * factors.get(i.action, 1.0)
                filled[n, i.rank - 1] = 1.0
                direct[n] += (r_hat, r_hat * i.value)
            for i in r.logged:
                w = ((i.action, i.rank) in shows) / i.propensity
                r_hat = i.probability * factors.get(i.action, 1.0)
                weight[n, i.rank - 1] = w
                accepted[n, i.rank - 1] = i.accepted
                value[n, i.rank - 1] = i.accepted * i.value
                residual[n] += (w * (i.accepted - r_hat), w * (i.accepted - r_hat) * i.value)
        return cls(weight, accepted, value, filled, direct, residual)

    def effective_sample_size(self) -> float:
        """Kish's (sum w)^2 / sum w^2 over the logged suggestions (0 when no weight is)."""
        squares = float((self.weight**2).sum())
        return float(self.weight.sum()) ** 2 / squares if squares > 0 else 0.0

    def estimates(self, rows: np.ndarray) -> np.ndarray:
        """(estimator, reward) for the decisions ``rows`` (a bootstrap sample or all)."""
        n = len(rows)
        w = self.weight[rows]
        out = np.full((len(ESTIMATORS), len(REWARDS)), math.nan)
        if n == 0:
            return out
        share = self.filled[rows].sum(axis=0) / n  # decisions whose candidate fills each rank
        totals = w.sum(axis=0)
        for j, r in enumerate((self.accepted[rows], self.value[rows])):
            out[0, j] = r.sum() / n
            out[1, j] = (w * r).sum() / n
            per_rank = np.divide(
                (w * r).sum(axis=0), totals, where=totals > 0, out=np.zeros_like(totals)
            )
            out[2, j] = float((per_rank * share).sum())
            out[3, j] = (self.direct[rows, j] + self.residual[rows, j]).mean()
        return out


def _with_intervals(arrays: _Arrays, seed: int, replicates: int) -> dict:
    n = len(arrays.direct)
    point = arrays.estimates(np.arange(n))
    low, high = point, point  # no decision: no interval either (NaN)
    if n:
        rng = np.random.default_rng(seed)
        draws = np.stack([arrays.estimates(rng.integers(0, n, n)) for _ in range(replicates)])
        low, high = np.percentile(draws, 2.5, axis=0), np.percentile(draws, 97.5, axis=0)
    return {
        e: {
            r: {"estimate": float(point[i, j]), "low": float(low[i, j]), "high": float(high[i, j])}
            for j, r in enumerate(REWARDS)
        }
        for i, e in enumerate(ESTIMATORS)
    }


def _warnings(counts: Mapping[str, int], ess: float) -> list[str]:
    out = []
    if counts["used"] == 0:
        out.append("no decision has the inputs and propensities an estimate needs")
    elif ess < SMALL_SAMPLE:
        out.append(
            f"effective sample size {ess:.0f} is below {SMALL_SAMPLE}: the candidate differs "
            "much from the logging policy or the log is small; trust the intervals little"
        )
    if counts["no_inputs"]:
        out.append(
            f"{counts['no_inputs']:,} decisions logged before their inputs were kept are left out"
        )
    if counts["no_propensity"]:
        out.append(
            f"{counts['no_propensity']:,} decisions logged without propensities are left out"
        )
    return out
