"""Outcomes: what each logged decision's offered and held-out actions led to, point in time.

A decision, from the service's log or a nightly batch file, offered some actions (its
suggestions) and held others out (not-shown reason ``holdout``: the ranking chose them, the
customer's no-offer holdout kept them back). Each such action gets one outcome row once its
horizon has passed, the same for both arms so that they compare like with like:

- the **decision date** d is the day of the decision; a decision at midnight belongs to the
  day that just ended, so a batch for as-of t (decided when t's day ends,
  ``batch.run.decision_time``) has d = t and its outcome is the label at t;
- the **window** is (d, d + H], H the dataset's ``horizon_days``: the day of the decision
  itself is left out, because dated rows cannot say whether they came before or after the
  contact (an opening that morning is no effect of a call that afternoon), and it is left
  out for both arms alike;
- **outcome**: cross-sell, the product opened within the window; upgrade, the service tier
  rank at d + H above the rank at d (``features.tiers.tier_rank_at``, as the upgrade label;
  closed by then is 0); retention and win-back, the customer still open at d + H (for
  churn definition ``inactive``: a transaction within the window);
- **value**: the sum of the customer's transaction amounts within the window (to the cent,
  summed exactly, so a rerun gives the same figure).

An action is **pending** while d + H is after the as-of date or after the data's end: its
row is not made until then. A decision whose customer the data does not know is reported,
never guessed at. Only contract rows dated on or before d + H are read, so nothing after
the as-of date counts either.

``service_actions`` and ``batch_actions`` are pure; ``attribute_outcomes`` joins on the
dataset's DuckDB connection, like ``features.labels``; ``record_outcomes`` reads the decision
log, attributes and stores (``tierwise outcomes``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import Dataset
from features.labels import CHURN_DEFINITIONS
from features.tiers import tier_rank_at
from serving.decisions import OUTCOME_COLUMNS, DecisionLog, DecisionRecord, read_decisions

ACTION_COLUMNS: tuple[str, ...] = (
    "decision_id",
    "action",
    "kind",
    "product",
    "arm",
    "control",
    "source",
    "customer_id",
    "decided_at",
    "tier",
    "channel",
    "probability",
    "uplift",
)
"""One row per (decision, offered or held-out action): what ``attribute_outcomes`` reads."""
HOLDOUT = "holdout"  # the not-shown reason of an action held out (serving.policy, rule 10)
_ACTIONS = "oc_actions"  # DuckDB temp tables of ``attribute_outcomes``
_SPINE = "oc_spine"


@dataclass(frozen=True)
class Outcomes:
    """Outcome rows ready to store, and what could not have one yet.

    Attributes:
        rows: one row per ready action, ``OUTCOME_COLUMNS`` less ``computed_at``.
        decisions: source (service, batch) -> decisions made by the end of the as-of day
            with at least one offered or held-out action.
        pending: decisions with an action whose horizon ends after the as-of date or
            after the data's end.
        unknown: ids of the decisions whose customer is not in the data (not attributed).
    """

    rows: pd.DataFrame
    decisions: dict[str, int]
    pending: int
    unknown: tuple[str, ...]


def service_actions(decisions: Sequence[DecisionRecord]) -> pd.DataFrame:
    """The offered (suggestions) and held-out (not-shown ``holdout``) actions of logged decisions.

    Returns:
        Columns ``ACTION_COLUMNS``; ``tier`` and ``channel`` from each decision's context
        (None where a decision logged before the tier was kept has none), ``probability``
        and ``uplift`` from each entry (NaN where the log has none: no uplift champion, or
        a decision logged before uplift was kept), times naive UTC.
    """
    rows = []
    for d in decisions:
        decided_at = d.created_at.astimezone(dt.UTC).replace(tzinfo=None)
        common = {
            "decision_id": d.decision_id,
            "control": bool(d.control),
            "source": "service",
            "customer_id": d.customer_id,
            "decided_at": decided_at,
            "tier": d.context.get("tier"),
            "channel": d.context.get("channel"),
        }
        held = [n for n in d.not_shown if n.get("reason") == HOLDOUT]
        for arm, entries in (("offered", d.suggestions), ("holdout", held)):
            for e in entries:
                rows.append(
                    {
                        **common,
                        "action": e["action"],
                        "kind": e["kind"],
                        "product": e.get("product"),
                        "arm": arm,
                        "probability": e.get("probability"),
                        "uplift": e.get("uplift"),
                    }
                )
    return _actions_frame(rows)


def batch_actions(
    output: pd.DataFrame, decided_at: dt.datetime, channel: str | None = None
) -> pd.DataFrame:
    """The offered and held-out actions of one nightly batch output (``batch.run.read_output``).

    Each customer row is a decision ``batch:{as_of}:{customer_id}`` (as ``batch.chunks``
    names it) with ``suggestion_{i}_*`` offered and ``holdout_actions`` held out (absent in
    outputs written before holdouts: none). A held-out action's kind follows from its key
    (``retention``, ``upgrade``, else a cross-sell product) and its probability from the
    churn and upgrade columns; a held-out cross-sell has none (the output does not say
    which probability column is which product's). The output keeps no uplift: NaN.

    Args:
        output: the batch output frame.
        decided_at: when the run decided (``batch.run.decision_time`` of its as-of date).
        channel: the channel the run suggested for (its ``BatchOptions.channel``).

    Returns:
        Columns ``ACTION_COLUMNS``.
    """
    at = pd.Timestamp(decided_at)
    at = (at.tz_convert("UTC").tz_localize(None) if at.tzinfo else at).to_pydatetime()
    keys = pd.DataFrame(
        {
            "decision_id": [
                f"batch:{pd.Timestamp(a).date().isoformat()}:{c}"
                for a, c in zip(output["as_of"], output["customer_id"], strict=True)
            ],
            "control": output["control"].astype(bool).to_numpy(),
            "customer_id": output["customer_id"].astype(str).to_numpy(),
            "tier": output["tier"].to_numpy(),
        }
    )
    parts = []
    i = 1
    while f"suggestion_{i}_action" in output.columns:
        prefix = f"suggestion_{i}_"
        part = keys.assign(
            action=output[prefix + "action"].to_numpy(),
            kind=output[prefix + "kind"].to_numpy(),
            product=output[prefix + "product"].to_numpy(),
            probability=output[prefix + "probability"].to_numpy(dtype=np.float64),
            arm="offered",
        )
        parts.append(part[part["action"].notna()])
        i += 1
    if "holdout_actions" in output.columns:
        held = keys.assign(action=output["holdout_actions"].to_numpy()).explode("action")
        held = held[held["action"].notna()].copy()
        held["kind"] = [_kind_of(a) for a in held["action"]]
        held["product"] = [
            a if k == "cross_sell" else None
            for a, k in zip(held["action"], held["kind"], strict=True)
        ]
        by_kind = {"retention": "churn_probability", "upgrade": "upgrade_probability"}
        columns = {
            k: output[c].to_numpy(dtype=np.float64) for k, c in by_kind.items() if c in output
        }
        held["probability"] = [
            columns[k][row] if k in columns else np.nan
            for row, k in zip(held.index, held["kind"], strict=True)
        ]
        parts.append(held.assign(arm="holdout"))
    frame = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(keys.columns))
    )
    frame = frame.assign(source="batch", decided_at=at, channel=channel, uplift=np.nan)
    return _actions_frame(frame.to_dict("records"))


def attribute_outcomes(
    ds: Dataset,
    actions: pd.DataFrame,
    as_of: dt.date,
    horizon_days: int | None = None,
    churn_definition: str | None = None,
) -> Outcomes:
    """The outcome of every action whose horizon has passed by ``as_of``, from the contract data.

    Actions decided after the as-of day are left out (they had not happened by then).
    Registers the DuckDB temp tables ``oc_actions`` and ``oc_spine`` on ``ds.con``.

    Args:
        ds: the dataset.
        actions: ``ACTION_COLUMNS`` rows (``service_actions``, ``batch_actions``).
        as_of: the date outcomes are computed as of; windows must end on or before it.
        horizon_days: H; the dataset's ``horizon_days`` by default.
        churn_definition: ``closed`` or ``inactive`` (how retention is read); the dataset's
            by default.

    Returns:
        The ready rows (``OUTCOME_COLUMNS`` less ``computed_at``), ordered by decision_id
        and action, with the counts of decisions, pending and unknown ones.

    Raises:
        ValueError: a horizon below 1 or an unknown churn definition.
    """
    horizon = ds.settings.horizon_days if horizon_days is None else int(horizon_days)
    if horizon < 1:
        raise ValueError(f"horizon_days must be at least 1, got {horizon}")
    definition = churn_definition or ds.settings.churn_definition
    if definition not in CHURN_DEFINITIONS:
        raise ValueError(
            f"churn_definition must be one of {', '.join(CHURN_DEFINITIONS)}, got {definition!r}"
        )
    frame = actions.drop_duplicates(["decision_id", "action"])
    day = (pd.to_datetime(frame["decided_at"]) - pd.Timedelta(microseconds=1)).dt.normalize()
    frame = frame.assign(as_of=day.dt.date, horizon_end=(day + pd.Timedelta(days=horizon)).dt.date)[
        (day <= pd.Timestamp(as_of)).to_numpy()
    ]
    known_by = min(as_of, ds.settings.data_end)
    late = frame["horizon_end"] > known_by
    pending = frame.loc[late, "decision_id"].nunique()
    ready = frame[~late].reset_index(drop=True)
    realized = _realize(ds, ready, horizon, definition)
    unknown = tuple(
        sorted(set(ready["decision_id"]) - set(ready.loc[realized.index, "decision_id"]))
    )
    rows = ready.loc[realized.index].assign(
        outcome=realized["outcome"].astype(int), value=realized["value"].astype(float)
    )
    rows = rows.sort_values(["decision_id", "action"], ignore_index=True)
    columns = [c for c in OUTCOME_COLUMNS if c != "computed_at"]
    decisions = frame.groupby("source")["decision_id"].nunique()
    return Outcomes(rows[columns], {str(k): int(n) for k, n in decisions.items()}, pending, unknown)


@dataclass(frozen=True)
class OutcomeRun:
    """What ``record_outcomes`` did: decisions read, rows attributed and written, and waiting."""

    service_decisions: int  # logged decisions made by the end of the as-of day
    batch_decisions: int  # batch decisions by the as-of day that offered or held out an action
    rows: int  # outcome rows attributed (ready)
    written: int  # rows new or changed in the store (0 on a rerun)
    pending: int  # decisions whose horizon has not passed yet
    unknown: int  # decisions whose customer the data does not know


def record_outcomes(
    ds: Dataset,
    url: str,
    as_of: dt.date,
    batch: Sequence[pd.DataFrame] = (),
    now: dt.datetime | None = None,
) -> OutcomeRun:
    """Attribute the outcomes due by ``as_of`` and store them in the decision store at ``url``.

    Reads the service's decisions made by the end of the as-of day (none without a log),
    adds the batch decisions given, and upserts the ready rows
    (``DecisionLog.write_outcomes``): a rerun writes nothing, a pending decision is written
    by the first run after its horizon.

    Args:
        ds: the dataset, horizon and churn definition from its settings.
        url: the decision store's SQLAlchemy URL.
        as_of: the date outcomes are computed as of.
        batch: ``batch_actions`` frames of nightly outputs.
        now: the ``computed_at`` of the rows written (default: now, UTC).
    """
    until = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), dt.UTC)
    logged = read_decisions(url, until) or []
    frames = [f for f in (service_actions(logged), *batch) if not f.empty]
    actions = pd.concat(frames, ignore_index=True) if frames else service_actions([])
    result = attribute_outcomes(ds, actions, as_of)
    log = DecisionLog(url)
    try:
        written = log.write_outcomes(result.rows, now=now)
    finally:
        log.close()
    return OutcomeRun(
        service_decisions=len(logged),
        batch_decisions=result.decisions.get("batch", 0),
        rows=len(result.rows),
        written=written,
        pending=result.pending,
        unknown=len(result.unknown),
    )


# -- helpers -----------------------------------------------------------------------------------


def _kind_of(action: str) -> str:
    """The kind of an action key: retention (and win_back), upgrade, or a cross-sell product."""
    if action in ("retention", "win_back"):
        return "retention"
    return "upgrade" if action == "upgrade" else "cross_sell"


def _actions_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as an ``ACTION_COLUMNS`` frame, missing values as None, one row per key."""
    frame = pd.DataFrame(rows, columns=list(ACTION_COLUMNS))
    for column in ("probability", "uplift"):
        frame[column] = pd.to_numeric(frame[column]).astype(float)
    for column in ("product", "tier", "channel"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame.drop_duplicates(["decision_id", "action"], ignore_index=True)


def _realize(ds: Dataset, ready: pd.DataFrame, horizon: int, definition: str) -> pd.DataFrame:
    """Outcome and value of each ready action of a known customer, indexed like ``ready``."""
    if ready.empty:
        return pd.DataFrame({"outcome": [], "value": []}, dtype=float)
    keys = pd.DataFrame(
        {
            "rid": np.arange(len(ready)),
            "customer_id": ready["customer_id"].astype(str),
            "as_of": pd.to_datetime(ready["as_of"]),
            "kind": ready["kind"],
            "product": ready["product"],
        }
    )
    con = ds.con
    con.complete()  # a reader before (a fetchone) may have left its result open
    con.register("oc_keys", keys)
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {_ACTIONS} AS
                SELECT k.rid, k.customer_id, CAST(k.as_of AS DATE) AS as_of, k.kind, k.product
                FROM oc_keys k JOIN customers c ON c.customer_id = k.customer_id"""
        )
    finally:
        con.unregister("oc_keys")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_SPINE} AS SELECT DISTINCT customer_id, as_of FROM {_ACTIONS}"
    )
    result = con.execute(
        _outcome_sql(ds, horizon, definition, (ready["kind"] == "upgrade").any())
    ).df()
    return result.set_index("rid").sort_index()


def _outcome_sql(ds: Dataset, horizon: int, definition: str, upgrades: bool) -> str:
    """One query over ``oc_actions``: outcome (0/1) and value of each row."""
    end = f"CAST(s.as_of + INTERVAL {horizon} DAY AS DATE)"
    ctes = [
        (
            "oc_value",
            f"""SELECT s.customer_id, s.as_of, sum(CAST(t.amount AS DECIMAL(18,2))) AS value
                FROM {_SPINE} s JOIN transactions t
                  ON t.customer_id = s.customer_id
                 AND CAST(t.ts AS DATE) > s.as_of AND CAST(t.ts AS DATE) <= {end}
                GROUP BY s.customer_id, s.as_of""",
        )
    ]
    joins = [
        "JOIN customers c ON c.customer_id = a.customer_id",
        "LEFT JOIN oc_value v ON v.customer_id = a.customer_id AND v.as_of = a.as_of",
    ]
    if "holdings" in ds.tables:
        ctes.append(
            (
                "oc_opened",
                f"""SELECT DISTINCT s.customer_id, s.as_of, h.product
                    FROM {_SPINE} s JOIN holdings h
                      ON h.customer_id = s.customer_id
                     AND h.opened > s.as_of AND h.opened <= {end}""",
            )
        )
        joins.append(
            """LEFT JOIN oc_opened o ON o.customer_id = a.customer_id AND o.as_of = a.as_of
                                    AND o.product = a.product"""
        )
        opened = "o.product IS NOT NULL"
    else:
        opened = "false"
    if upgrades:
        ctes += [
            ("oc_rank_now", tier_rank_at(ds, _SPINE, 0)),
            ("oc_rank_later", tier_rank_at(ds, _SPINE, horizon)),
        ]
        joins += [
            "LEFT JOIN oc_rank_now r0 ON r0.customer_id = a.customer_id AND r0.as_of = a.as_of",
            "LEFT JOIN oc_rank_later rh ON rh.customer_id = a.customer_id AND rh.as_of = a.as_of",
        ]
        rose = "coalesce(rh.tier_rank > r0.tier_rank, false)"
    else:
        rose = "false"
    if definition == "closed":
        stayed = f"(c.closed_date IS NULL OR c.closed_date > CAST(a.as_of + INTERVAL {horizon} DAY AS DATE))"
    else:
        stayed = "v.customer_id IS NOT NULL"
    body = ",\n".join(f"{name} AS ({sql})" for name, sql in ctes)
    newline = "\n"
    return f"""WITH {body}
        SELECT a.rid,
               CAST(CASE a.kind WHEN 'cross_sell' THEN {opened}
                                WHEN 'upgrade' THEN {rose}
                                ELSE {stayed} END AS INTEGER) AS outcome,
               CAST(coalesce(v.value, 0) AS DOUBLE) AS value
        FROM {_ACTIONS} a
        {newline.join(joins)}
        ORDER BY a.rid"""
