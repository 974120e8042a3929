"""What the suggestions changed: incremental effects from outcome rows, pure figures.

The rows are ``decision_outcomes`` (``serving.decisions.read_outcomes``): one per decision and
action offered or held out, with the realized ``outcome`` (0/1) and ``value`` over the horizon.

- **Effect of offering**: per action (and action x tier, action x channel) the outcome rate of
  the ``offered`` arm against the ``holdout`` arm (customers the ranking chose but who were in
  the action's no-offer holdout). Both arms are drawn from ranked and control decisions alike:
  holdout membership is a draw independent of the control flag.
- **Lift of the ranking**: among offered rows, ranked decisions against the random-order
  control decisions (same eligible actions, random order).
- **Uplift and Qini curves** by a score (the propensity at the decision, or an uplift score),
  with the holdout as the comparison group (``models.uplift.qini_curve``, the same Qini the
  uplift models are gated on).

Intervals are 95%: Newcombe's hybrid score interval (his method 10, from two Wilson intervals)
for a difference of rates, and Welch's t interval for a difference of mean values. Each figure
gets a sample-size note: how many more decisions per arm it needs to be conclusive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from models.uplift import qini_coefficient, qini_curve
from monitoring.figures import Z95, finite, wilson_interval
from serving.decisions import OUTCOME_COLUMNS

OFFERED, HOLDOUT = "offered", "holdout"
POWER = 0.8
Z_POWER = NormalDist().inv_cdf(POWER)
MIN_CURVE_ROWS = 20  # per arm: below it a curve is noise, and the report says so
CURVE_POINTS = 51
SCORES = ("probability", "uplift")  # score columns curves are drawn by, where present


# -- intervals ---------------------------------------------------------------------------------


def newcombe_interval(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, ...]:
    """Difference of rates k1/n1 - k2/n2 with Newcombe's hybrid score interval (method 10).

    Newcombe (1998), "Interval estimation for the difference between independent
    proportions", Statistics in Medicine 17: the Wilson intervals (l1, u1) and (l2, u2) of
    both rates give d - sqrt((p1 - l1)^2 + (u2 - p2)^2) to d + sqrt((u1 - p1)^2 + (p2 - l2)^2).
    It stays inside [-1, 1] and behaves at rates of 0 or 1, where the normal one does not.

    Returns:
        ``(difference, low, high)``; NaNs when an arm has no rows.
    """
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan, math.nan
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, z)
    l2, u2 = wilson_interval(k2, n2, z)
    d = p1 - p2
    return d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def welch_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, ...]:
    """Difference of means mean(a) - mean(b) with Welch's t interval (unequal variances).

    Returns:
        ``(difference, low, high)``; the difference alone (NaN bounds) when an arm has fewer
        than 2 values, NaNs when one has none. Equal constant arms give a zero-width interval.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan, math.nan
    d = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return d, math.nan, math.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return d, d, d
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return d, d - half, d + half


def sample_size_note(
    effect: float,
    low: float,
    high: float,
    variances: tuple[float, float],
    counts: tuple[int, int],
    names: tuple[str, str] = (OFFERED, HOLDOUT),
) -> dict[str, Any]:
    """How many more decisions per arm a figure needs to be conclusive (95%, 80% power).

    Conclusive: the 95% interval excludes 0. Otherwise the arms are grown in their current
    ratio r = n_a / n_b until the effect seen would be found with 80% power:
    n_b = (z_0.975 + z_0.8)^2 (var_a / r + var_b) / effect^2 (normal approximation, unpooled
    variances: p (1 - p) for a rate, the sample variance for a value), n_a = r n_b.

    Args:
        effect, low, high: the figure and its 95% interval.
        variances: per-row variances of the two arms.
        counts: rows in the two arms.
        names: the arms' names, for the note.

    Returns:
        ``note`` (text for the report) and ``more_<name>`` per arm (None unless a number of
        decisions would make it conclusive).
    """
    more: dict[str, int | None] = {f"more_{n}": None for n in names}
    missing = [n for n, c in zip(names, counts, strict=True) if c == 0]
    if missing:
        return {"note": f"no {' or '.join(missing)} rows yet", **more}
    if not (math.isfinite(low) and math.isfinite(high)):
        return {"note": "too few rows for an interval", **more}
    if low > 0 or high < 0:
        return {"note": "conclusive", **more}
    if effect == 0:
        return {"note": "no effect seen: more decisions narrow the interval around 0", **more}
    (n_a, n_b), (v_a, v_b) = counts, variances
    ratio = n_a / n_b
    needed_b = (Z95 + Z_POWER) ** 2 * (v_a / ratio + v_b) / effect**2
    extra = [max(0, math.ceil(ratio * needed_b) - n_a), max(0, math.ceil(needed_b) - n_b)]
    more = {f"more_{n}": e for n, e in zip(names, extra, strict=True)}
    if not any(extra):
        return {"note": "the effect seen needs no more decisions, yet its interval spans 0", **more}
    return {
        "note": f"about {extra[0]:,} more {names[0]} and {extra[1]:,} more {names[1]} "
        "decisions to be conclusive (95%, 80% power, at the effect seen)",
        **more,
    }


# -- comparisons -------------------------------------------------------------------------------


def compare_arms(
    outcomes: tuple[np.ndarray, np.ndarray],
    values: tuple[np.ndarray, np.ndarray],
    names: tuple[str, str] = (OFFERED, HOLDOUT),
) -> dict[str, Any]:
    """Two arms' outcome rates and mean values, their differences, intervals and notes.

    Args:
        outcomes: 0/1 outcomes of arm a and arm b.
        values: values of arm a and arm b (missing ones left out).
        names: the arms' names, prefixes of their fields.

    Returns:
        ``<name>_n``, ``<name>_rate``, ``<name>_value`` per arm; ``effect``, ``effect_low``,
        ``effect_high``, ``effect_note``, ``effect_more_<name>`` (rate a - rate b, Newcombe);
        ``value_effect``, ``value_low``, ``value_high``, ``value_note``, ``value_more_<name>``
        (the incremental value per decision, mean a - mean b, Welch).
    """
    ys = [np.asarray(y, dtype=float) for y in outcomes]
    vs = [finite(v) for v in values]
    row: dict[str, Any] = {}
    for name, y, v in zip(names, ys, vs, strict=True):
        row[f"{name}_n"] = len(y)
        row[f"{name}_rate"] = float(y.mean()) if len(y) else math.nan
        row[f"{name}_value"] = float(v.mean()) if len(v) else math.nan
    (ya, yb), (va, vb) = ys, vs
    effect = newcombe_interval(int(ya.sum()), len(ya), int(yb.sum()), len(yb))
    rates = [row[f"{n}_rate"] for n in names]
    rate_variances = tuple(0.0 if math.isnan(p) else p * (1 - p) for p in rates)
    value = welch_interval(va, vb)
    value_variances = tuple(float(v.var(ddof=1)) if len(v) > 1 else math.nan for v in (va, vb))
    for key, prefix, (d, lo, hi), variances, counts in (
        ("effect", "effect", effect, rate_variances, (len(ya), len(yb))),
        ("value_effect", "value", value, value_variances, (len(va), len(vb))),
    ):
        row[key], row[f"{prefix}_low"], row[f"{prefix}_high"] = d, lo, hi
        note = sample_size_note(d, lo, hi, variances, counts, names)
        row[f"{prefix}_note"] = note.pop("note")
        row.update({f"{prefix}_{k}": v for k, v in note.items()})
    return row


def offer_effects(outcomes: pd.DataFrame, by: str | None = None) -> list[dict[str, Any]]:
    """Offered against holdout per action, or per action and a column (``tier``, ``channel``).

    Returns:
        One ``compare_arms`` row per group with ``action``, ``kind`` (and ``by``; missing
        values as ``-``) in front, sorted by action and then ``by``.
    """
    keys = ["action", "kind"] if by is None else ["action", "kind", by]
    frame = outcomes.assign(**{k: _labels(outcomes[k]) for k in keys})
    rows = []
    for group, part in frame.groupby(keys, sort=True):
        arms = [part[part["arm"] == arm] for arm in (OFFERED, HOLDOUT)]
        rows.append(
            {
                **dict(zip(keys, group, strict=True)),
                **compare_arms(
                    (arms[0]["outcome"], arms[1]["outcome"]), (arms[0]["value"], arms[1]["value"])
                ),
            }
        )
    return rows


def ranking_lift(outcomes: pd.DataFrame) -> dict[str, Any]:
    """Offered rows of ranked decisions against those of random-order control decisions.

    Rates count offers (a row per decision and action shown). Overall, the value counts each
    decision once (its customer's value over the horizon, whatever was offered); per action
    it is the value of that action's decisions.

    Returns:
        ``overall`` and ``by_action`` (with ``action``, ``kind``): ``compare_arms`` rows with
        arms ``ranked`` and ``control``.
    """
    names = ("ranked", "control")
    offered = outcomes[outcomes["arm"] == OFFERED]
    groups = [offered[offered["control"] == flag] for flag in (False, True)]
    decisions = [g.drop_duplicates("decision_id") for g in groups]
    overall = compare_arms(
        (groups[0]["outcome"], groups[1]["outcome"]),
        (decisions[0]["value"], decisions[1]["value"]),
        names,
    )
    by_action = []
    frame = offered.assign(action=_labels(offered["action"]), kind=_labels(offered["kind"]))
    for (action, kind), part in frame.groupby(["action", "kind"], sort=True):
        ranked, control = part[~part["control"]], part[part["control"]]
        by_action.append(
            {
                "action": action,
                "kind": kind,
                **compare_arms(
                    (ranked["outcome"], control["outcome"]),
                    (ranked["value"], control["value"]),
                    names,
                ),
            }
        )
    return {"overall": overall, "by_action": by_action}


# -- uplift and Qini curves --------------------------------------------------------------------


def score_curves(
    outcomes: pd.DataFrame, min_rows: int = MIN_CURVE_ROWS, points: int = CURVE_POINTS
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Qini curves per action and score column (``probability``, ``uplift`` where present).

    Rows missing the score are left out (an action without any is skipped). An action or
    score with fewer than ``min_rows`` rows in either arm gets no curve but a note: a curve
    of a few rows is noise.

    Returns:
        ``curves`` (action -> score -> ``offered``, ``holdout``, ``qini_coefficient`` and the
        curve at ``points`` shares: ``share, qini, uplift, random``) and ``notes``.
    """
    curves: dict[str, dict[str, Any]] = {}
    notes = []
    columns = [c for c in SCORES if c in outcomes]
    grid = np.linspace(0, 1, points)
    for action, part in outcomes.groupby(_labels(outcomes["action"]), sort=True):
        for column in columns:
            scored = part[pd.to_numeric(part[column], errors="coerce").notna()]
            if scored.empty:  # no score of this kind for the action (no uplift model yet)
                continue
            treated = (scored["arm"] == OFFERED).to_numpy(dtype=float)
            counts = int(treated.sum()), int(len(treated) - treated.sum())
            if min(counts) < min_rows:
                notes.append(
                    f"{action} by {column}: {counts[0]} offered and {counts[1]} holdout rows "
                    f"with a score, too few for a curve (needs {min_rows} each)"
                )
                continue
            y = scored["outcome"].to_numpy(dtype=float)
            score = pd.to_numeric(scored[column]).to_numpy(dtype=float)
            curve = qini_curve(y, treated, score)
            curves.setdefault(str(action), {})[column] = {
                "offered": counts[0],
                "holdout": counts[1],
                "qini_coefficient": qini_coefficient(y, treated, score),
                **{
                    key: np.interp(grid, curve["share"], curve[key]).tolist()
                    for key in ("share", "qini", "uplift", "random")
                },
            }
    return curves, notes


# -- everything --------------------------------------------------------------------------------


def outcome_effects(outcomes: pd.DataFrame, tier_order: Sequence[str] = ()) -> dict[str, Any]:
    """Every figure of the report's "What the suggestions changed" section.

    Args:
        outcomes: ``decision_outcomes`` rows (``OUTCOME_COLUMNS``; an ``uplift`` score column
            is used where present).
        tier_order: tier names, lowest first; tier rows come highest tier first.

    Returns:
        ``rows``, ``decisions``, ``first_decision``, ``last_decision``,
        ``by_action``, ``by_tier``, ``by_channel`` (``offer_effects``), ``ranking``
        (``ranking_lift``), ``curves`` and ``curve_notes`` (``score_curves``).
    """
    missing = sorted(set(OUTCOME_COLUMNS) - set(outcomes.columns))
    if missing:
        raise ValueError(f"outcome rows lack columns {missing}")
    rows = outcomes.assign(
        outcome=lambda f: f["outcome"].astype(float),
        control=lambda f: f["control"].astype(bool),
    )
    by_tier = offer_effects(rows, "tier")
    rank = {name: -i for i, name in enumerate(tier_order)}  # highest tier first, others after
    by_tier.sort(key=lambda r: (r["action"], rank.get(r["tier"], 1), r["tier"]))
    curves, notes = score_curves(rows)
    times = pd.to_datetime(rows["decided_at"])
    return {
        "rows": len(rows),
        "decisions": int(rows["decision_id"].nunique()),
        "first_decision": times.min().isoformat() if len(rows) else None,
        "last_decision": times.max().isoformat() if len(rows) else None,
        "by_action": offer_effects(rows),
        "by_tier": by_tier,
        "by_channel": offer_effects(rows, "channel"),
        "ranking": ranking_lift(rows),
        "curves": curves,
        "curve_notes": notes,
    }


# -- helpers -----------------------------------------------------------------------------------


def _labels(column: pd.Series) -> pd.Series:
    """A grouping column as text, missing values as ``-`` (groupby would drop them)."""
    return column.astype(object).where(column.notna(), "-").astype(str)
