"""The decision log and the agents' feedback on it (SQLAlchemy; SQLite WAL by default).

Every ``/v1/suggestions`` answer is a logged decision: the customer, when, the contact's
context, every propensity, the suggestions shown, the control flag and the model versions;
beside it, in ``decision_not_shown``, every action considered and not shown with its reason
(a table of its own, so that databases logged before it existed read as they are: the table
is created on open, and their decisions simply have no not-shown list).
Feedback rows reference a decision and one of its suggestions; a unique key on
``(decision_id, suggestion_id)`` makes a retried feedback call find its first row instead
of adding a second. The contact policy reads the customer's declines back (``declines``,
``all_declines`` for the nightly batch); reports read the whole log (``read_decision_log``).
Beside them, ``decision_outcomes`` holds what each offered or held-out action led to, once
its horizon has passed (``monitoring.outcomes`` attributes it; ``write_outcomes`` stores it
idempotently, ``read_outcomes`` reads it back). ``adaptive_counts`` and ``skip_counts``
hold what answers taught (``serving.adaptive``): added to in the transaction that inserts a
new feedback row, so a retried feedback changes nothing, and ``rebuild_counts`` recomputes
them from the feedback table to the same numbers. This module is the only one that reads or
writes the decision tables.

Durability: feedback is committed with ``synchronous=FULL`` (PostgreSQL
``synchronous_commit=on``) before it is acknowledged. Decisions are written through a second
connection with ``synchronous=NORMAL``: they survive a crash of the service, and because
the WAL is written in order, the FULL commit of any later feedback makes every decision
before it durable too - in particular the one the feedback refers to. This keeps a disk
flush (measured p99 ~7 ms here) out of the suggestion path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from serving.adaptive import ANSWERS, NO_TIER, AdaptiveState, Cell, SkipCell
from serving.policy import NotShown, collect_declines
from serving.store import StoreMissingError, limit_waits, open_engine
from serving.vocabulary import RESPONSES

if TYPE_CHECKING:
    from serving.capacity import Cap
    from serving.policy import Context
    from serving.suggest import Decision

_META = sa.MetaData()
decisions_table = sa.Table(
    "decisions",
    _META,
    sa.Column("decision_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),  # UTC, naive
    sa.Column("as_of", sa.Date),  # the online store's as-of date the decision was made on
    sa.Column("context", sa.Text, nullable=False),  # JSON
    sa.Column("probabilities", sa.Text, nullable=False),  # JSON: target -> p or null
    sa.Column("suggestions", sa.Text, nullable=False),  # JSON list, in the order shown
    sa.Column("control", sa.Boolean, nullable=False),
    sa.Column("model_versions", sa.Text, nullable=False),  # JSON: model name -> version
    sa.Index("ix_decisions_customer", "customer_id", "created_at"),
)
feedback_table = sa.Table(
    "feedback",
    _META,
    sa.Column("feedback_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("decision_id", sa.String(64), sa.ForeignKey("decisions.decision_id"), nullable=False),
    sa.Column("suggestion_id", sa.String(64), nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("action", sa.String(200), nullable=False),  # retention, upgrade or a product
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("response", sa.String(20), nullable=False),
    sa.Column("agent_id", sa.String(200), nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),  # UTC, naive
    sa.UniqueConstraint("decision_id", "suggestion_id", name="uq_feedback_suggestion"),
    sa.CheckConstraint(
        f"response IN ({', '.join(repr(r) for r in RESPONSES)})", name="ck_feedback_response"
    ),
    sa.Index("ix_feedback_customer", "customer_id", "response", "created_at"),
)


not_shown_table = sa.Table(
    "decision_not_shown",
    _META,
    sa.Column(
        "decision_id", sa.String(64), sa.ForeignKey("decisions.decision_id"), primary_key=True
    ),
    sa.Column("not_shown", sa.Text, nullable=False),  # JSON list: action, reason, detail, ...
)

capacity_table = sa.Table(
    "capacity_used",
    _META,
    # The service's running counters of the policy's caps (``serving.capacity``): what each
    # cap has used in the period starting on ``period_start`` (a UTC day, an ISO week's Monday).
    sa.Column("cap_key", sa.String(240), primary_key=True),
    sa.Column("period_start", sa.Date, primary_key=True),
    sa.Column("used", sa.Float, nullable=False),
)

adaptive_table = sa.Table(
    "adaptive_counts",
    _META,
    # Customer answers per (action, tier) cell (``serving.adaptive.Cell``); tier '' for none.
    sa.Column("action", sa.String(200), primary_key=True),
    sa.Column("tier", sa.String(200), primary_key=True),
    sa.Column("answers", sa.Integer, nullable=False),  # accepted + declined
    sa.Column("accepted", sa.Integer, nullable=False),
    sa.Column("expected", sa.Float, nullable=False),  # the sum of the logged probabilities
    sa.Column("updated_at", sa.DateTime, nullable=False),  # UTC, naive
)
skips_table = sa.Table(
    "skip_counts",
    _META,
    # Feedback rows and skips per (queue pressure, channel): the agents' skip rate.
    sa.Column("queue_pressure", sa.String(20), primary_key=True),
    sa.Column("channel", sa.String(200), primary_key=True),
    sa.Column("responses", sa.Integer, nullable=False),
    sa.Column("skipped", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),  # UTC, naive
)

ARMS = ("offered", "holdout")
SOURCES = ("service", "batch")
outcomes_table = sa.Table(
    "decision_outcomes",
    _META,
    # No foreign key: batch decisions (``batch:{as_of}:{customer_id}``) live in the batch
    # output, not in ``decisions``; the id is as long as a customer id allows.
    sa.Column("decision_id", sa.String(240), primary_key=True),
    sa.Column("action", sa.String(200), primary_key=True),  # retention, win_back, upgrade, product
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("product", sa.String(200)),
    sa.Column("arm", sa.String(10), nullable=False),
    sa.Column("control", sa.Boolean, nullable=False),  # the decision's random-order flag
    sa.Column("source", sa.String(10), nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("decided_at", sa.DateTime, nullable=False),  # UTC, naive
    sa.Column("tier", sa.String(200)),
    sa.Column("channel", sa.String(200)),
    sa.Column("probability", sa.Float),  # the propensity at the decision
    sa.Column("uplift", sa.Float),  # the predicted uplift at the decision, where a model gave one
    sa.Column("horizon_end", sa.Date, nullable=False),
    sa.Column("outcome", sa.SmallInteger, nullable=False),
    sa.Column("value", sa.Float, nullable=False),  # transaction amounts within the window
    sa.Column("computed_at", sa.DateTime, nullable=False),  # UTC, naive
    sa.CheckConstraint("outcome IN (0, 1)", name="ck_outcome_binary"),
    sa.CheckConstraint(f"arm IN ({', '.join(repr(a) for a in ARMS)})", name="ck_outcome_arm"),
    sa.CheckConstraint(
        f"source IN ({', '.join(repr(s) for s in SOURCES)})", name="ck_outcome_source"
    ),
    sa.Index("ix_outcomes_action", "action", "decided_at"),
)
OUTCOME_COLUMNS: tuple[str, ...] = tuple(c.name for c in outcomes_table.columns)
"""The columns of ``decision_outcomes``, in order: what ``read_outcomes`` returns."""
_COMPARED = tuple(c for c in OUTCOME_COLUMNS if c != "computed_at")  # what a rerun must match
# Columns a writer's rows and a stored table may lack (added after the table's first
# release, no migration): missing means null.
_OPTIONAL = ("uplift",)
_OUTCOME_CHUNK = 2_000  # rows per write transaction: the service's writers wait at most that long
_UPDATE_OUTCOME = sa.update(outcomes_table).where(
    outcomes_table.c.decision_id == sa.bindparam("key_decision_id"),
    outcomes_table.c.action == sa.bindparam("key_action"),
)


inputs_table = sa.Table(
    "decision_inputs",
    _META,
    # What the policy read of the customer and the models (``serving.replay``), so another
    # policy can rank the decision again; a table of its own, like ``decision_not_shown``,
    # so that logs from before it read as they are (their decisions have no inputs).
    sa.Column(
        "decision_id", sa.String(64), sa.ForeignKey("decisions.decision_id"), primary_key=True
    ),
    sa.Column("inputs", sa.Text, nullable=False),  # JSON: ``replay.policy_inputs``
)

_INSERT_DECISION = sa.insert(decisions_table)
_INSERT_NOT_SHOWN = sa.insert(not_shown_table)
_INSERT_INPUTS = sa.insert(inputs_table)
_GET_DECISION = (
    sa.select(decisions_table, not_shown_table.c.not_shown, inputs_table.c.inputs)
    .select_from(decisions_table.outerjoin(not_shown_table).outerjoin(inputs_table))
    .where(decisions_table.c.decision_id == sa.bindparam("decision_id"))
)
_DECLINED = feedback_table.c.response == "declined"
_DECLINES = sa.select(
    feedback_table.c.action, feedback_table.c.response, feedback_table.c.created_at
).where(
    feedback_table.c.customer_id == sa.bindparam("customer_id"),
    _DECLINED,
    feedback_table.c.created_at >= sa.bindparam("since"),
)
_ALL_DECLINES = sa.select(
    feedback_table.c.customer_id,
    feedback_table.c.action,
    feedback_table.c.response,
    feedback_table.c.created_at,
).where(
    _DECLINED,
    feedback_table.c.created_at >= sa.bindparam("since"),
    feedback_table.c.created_at <= sa.bindparam("until"),
)


class UnknownDecisionError(LookupError):
    """No decision has this id."""


class UnknownSuggestionError(LookupError):
    """The decision exists but did not show this suggestion."""


class FeedbackConflictError(ValueError):
    """Feedback for this suggestion was already recorded, with another response."""

    def __init__(self, existing: FeedbackRecord) -> None:
        super().__init__(
            f"feedback for this suggestion was already recorded as {existing.response!r}"
        )
        self.existing = existing


@dataclass(frozen=True)
class DecisionRecord:
    """One logged decision. ``suggestions`` are dicts with at least ``suggestion_id``,
    ``action`` and ``kind``, in the order shown; ``not_shown`` dicts with ``action``,
    ``kind``, ``reason`` and ``detail`` (empty for decisions logged before it was kept)."""

    decision_id: str
    customer_id: str
    created_at: dt.datetime
    context: Mapping[str, Any]
    probabilities: Mapping[str, float | None]
    suggestions: Sequence[Mapping[str, Any]]
    control: bool
    model_versions: Mapping[str, str]
    as_of: dt.date | None = None
    not_shown: Sequence[Mapping[str, Any]] = field(default_factory=list)
    # the policy's inputs (``replay.policy_inputs``); None for decisions logged before them
    inputs: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class FeedbackRecord:
    """One agent response to one suggestion."""

    decision_id: str
    suggestion_id: str
    response: str
    agent_id: str
    created_at: dt.datetime
    customer_id: str = ""
    action: str = ""
    kind: str = ""
    note: str | None = None


@dataclass(frozen=True)
class FeedbackResult:
    """The stored feedback and whether this call created it (False: a retry)."""

    feedback: FeedbackRecord
    created: bool


@dataclass
class DecisionLog:
    """The decision and feedback store at a SQLAlchemy URL (tables created on open).

    ``wait_s``: how long a statement may wait for a lock before it fails (``limit_waits``);
    None waits as long as the database's default (30 s on SQLite).
    """

    url: str
    wait_s: float | None = None
    _log: sa.Engine = field(init=False, repr=False)
    _durable: sa.Engine = field(init=False, repr=False)
    _capped: sa.Engine = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._durable = open_engine(self.url, synchronous="FULL", begin="BEGIN IMMEDIATE")
        # Decisions and reads are one statement each: no transaction around them.
        self._log = open_engine(self.url, synchronous="NORMAL", begin=None)
        # A decision that takes capacity: counters and the decision in one transaction.
        self._capped = open_engine(self.url, synchronous="NORMAL", begin="BEGIN IMMEDIATE")
        for engine in (self._durable, self._log, self._capped):
            if self.wait_s is not None:
                limit_waits(engine, self.wait_s)
        with self._durable.begin() as conn:
            _META.create_all(conn)

    def record(
        self, decision: DecisionRecord, caps: Mapping[str, Sequence[Cap]] | None = None
    ) -> dict[str, str]:
        """Log a decision (committed before returning; see the module on durability).

        With ``caps`` (action -> the caps an offer of it counts against,
        ``capacity.caps_of``), each shown suggestion takes its share of every cap in the
        same transaction that logs the decision, and only if each has room (``UPDATE ...
        WHERE used + amount <= limit``: two workers cannot both take the last unit). A
        suggestion whose cap is used up is logged as not shown (reason ``capacity``) and
        the rest move up.

        Returns:
            action -> the not-shown detail of each suggestion a cap took off the list
            (``without_capped`` applies it to the decision shown).
        """
        caps = caps or {}
        if not any(caps.get(str(s["action"])) for s in decision.suggestions):
            with self._log.begin() as conn:
                _insert_decision(conn, decision)
            return {}
        refused: dict[str, str] = {}
        with self._capped.begin() as conn:
            for s in decision.suggestions:
                full = _take(conn, caps.get(str(s["action"]), ()), decision.created_at)
                if full is not None:
                    refused[str(s["action"])] = f"cap used up: {full.words}"
            _insert_decision(conn, _capped_record(decision, refused))
        return refused

    def capacity_used(self) -> dict[tuple[str, dt.date], float]:
        """(cap key, period start) -> what the service's decisions have used of that cap."""
        with self._log.connect() as conn:
            rows = conn.execute(sa.select(capacity_table)).all()
        return {(r.cap_key, r.period_start): float(r.used) for r in rows}

    def get(self, decision_id: str) -> DecisionRecord | None:
        """A logged decision, or None."""
        with self._log.connect() as conn:
            row = conn.execute(_GET_DECISION, {"decision_id": decision_id}).first()
        return None if row is None else decision_record(row)

    def add_feedback(
        self,
        decision_id: str,
        suggestion_id: str,
        response: str,
        agent_id: str,
        note: str | None = None,
        now: dt.datetime | None = None,
    ) -> FeedbackResult:
        """Record an agent's response to a suggestion, durably, at most once per suggestion.

        A retry with the same response returns the stored row (``created`` False).

        Raises:
            ValueError: ``response`` is not one of ``RESPONSES``.
            UnknownDecisionError: no decision has ``decision_id``.
            UnknownSuggestionError: the decision did not show ``suggestion_id``.
            FeedbackConflictError: this suggestion already has another response.
        """
        if response not in RESPONSES:
            raise ValueError(f"response must be one of {RESPONSES}, got {response!r}")
        created_at = _naive_utc(now or dt.datetime.now(dt.UTC))
        with self._durable.begin() as conn:
            customer_id, shown, context = _shown_suggestion(conn, decision_id, suggestion_id)
            record = FeedbackRecord(
                decision_id=decision_id,
                suggestion_id=suggestion_id,
                response=response,
                agent_id=agent_id,
                created_at=created_at,
                customer_id=customer_id,
                action=str(shown.get("action", "")),
                kind=str(shown.get("kind", "")),
                note=note,
            )
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(feedback_table).values(**record.__dict__))
            except IntegrityError:  # the unique key: this suggestion has feedback already
                existing = feedback_record(
                    conn.execute(
                        sa.select(feedback_table).where(
                            feedback_table.c.decision_id == decision_id,
                            feedback_table.c.suggestion_id == suggestion_id,
                        )
                    ).one()
                )
                if existing.response != response:
                    raise FeedbackConflictError(existing) from None
                return FeedbackResult(existing, created=False)
            _count_answer(conn, response, shown, context, created_at)  # only for a new row
        return FeedbackResult(_aware(record), created=True)

    def adaptive_state(self) -> AdaptiveState:
        """What answers taught so far: every cell's counters and the skip counts (two small
        tables, read by each worker's watch thread once a second)."""
        with self._log.connect() as conn:
            return _adaptive_state(conn)

    def rebuild_counts(self) -> AdaptiveState:
        """Recompute ``adaptive_counts`` and ``skip_counts`` from the feedback table (each row
        with its decision's tier, context and logged probability, in the order recorded),
        replace them in one transaction and return them: the same numbers the feedback
        transactions added up, should the tables be lost or doubted."""
        now = _naive_utc(dt.datetime.now(dt.UTC))
        with self._durable.begin() as conn:
            rows = conn.execute(
                sa.select(
                    feedback_table.c.suggestion_id,
                    feedback_table.c.response,
                    decisions_table.c.context,
                    decisions_table.c.suggestions,
                )
                .select_from(feedback_table.join(decisions_table))
                .order_by(feedback_table.c.feedback_id)
            ).all()
            cells: dict[tuple[str, str], Cell] = {}
            skips: dict[tuple[str, str], SkipCell] = {}
            for row in rows:
                shown = {s["suggestion_id"]: s for s in json.loads(row.suggestions)}
                suggestion, context = shown[row.suggestion_id], json.loads(row.context)
                key = _cell_key(suggestion, context)
                cells[key] = cells.get(key, Cell()).add(row.response, _q(suggestion))
                skip_key = _skip_key(context)
                skips[skip_key] = skips.get(skip_key, SkipCell()).add(row.response)
            conn.execute(sa.delete(adaptive_table))
            conn.execute(sa.delete(skips_table))
            learned = [
                {"action": a, "tier": t, **vars(c), "updated_at": now}
                for (a, t), c in sorted(cells.items())
                if c.answers
            ]
            if learned:
                conn.execute(sa.insert(adaptive_table), learned)
            if skips:
                conn.execute(
                    sa.insert(skips_table),
                    [
                        {"queue_pressure": p, "channel": ch, **vars(c), "updated_at": now}
                        for (p, ch), c in sorted(skips.items())
                    ],
                )
            return _adaptive_state(conn)

    def feedback(self, decision_id: str) -> list[FeedbackRecord]:
        """The feedback rows of a decision, oldest first."""
        with self._log.connect() as conn:
            rows = conn.execute(
                sa.select(feedback_table)
                .where(feedback_table.c.decision_id == decision_id)
                .order_by(feedback_table.c.feedback_id)
            ).all()
        return [feedback_record(r) for r in rows]

    def declines(self, customer_id: str, since: dt.datetime) -> dict[str, list[dt.datetime]]:
        """Action key -> times (UTC) the customer declined it at or after ``since``.

        ``since`` is the start of the contact policy's window (``policy.decline_window``). Only ``declined`` counts (``policy.collect_declines``): skips are the agent's call.
        """
        with self._log.connect() as conn:
            rows = conn.execute(
                _DECLINES, {"customer_id": customer_id, "since": _naive_utc(since)}
            ).all()
        return collect_declines((a, r, _utc(at)) for a, r, at in rows)

    def all_declines(
        self, since: dt.datetime, until: dt.datetime
    ) -> dict[str, dict[str, list[dt.datetime]]]:
        """Customer -> action -> decline times (UTC) within [since, until], for batch runs."""
        window = {"since": _naive_utc(since), "until": _naive_utc(until)}
        with self._log.connect() as conn:
            rows = conn.execute(_ALL_DECLINES, window).all()
        by_customer: dict[str, list[tuple[str, str, dt.datetime]]] = {}
        for customer_id, action, response, at in rows:
            by_customer.setdefault(customer_id, []).append((action, response, _utc(at)))
        return {c: collect_declines(f) for c, f in sorted(by_customer.items())}

    def count(self) -> tuple[int, int]:
        """Numbers of decisions and of feedback rows."""
        with self._log.connect() as conn:
            decisions = conn.execute(sa.select(sa.func.count()).select_from(decisions_table))
            n_decisions = int(decisions.scalar_one())
            feedback = conn.execute(sa.select(sa.func.count()).select_from(feedback_table))
            return n_decisions, int(feedback.scalar_one())

    def write_outcomes(self, rows: pd.DataFrame, now: dt.datetime | None = None) -> int:
        """Store realized outcomes, one row per (decision_id, action); return how many changed.

        An upsert: a new key is inserted, a stored row with other figures (the contract
        data was corrected) is replaced, and a row equal to the stored one is left as it
        is, ``computed_at`` included, so a rerun writes nothing. Rows go in transactions of
        ``_OUTCOME_CHUNK``, so the service's decision writes never wait long behind a big
        run; a run stopped part-way is completed by the next.

        Args:
            rows: a frame with the columns of ``OUTCOME_COLUMNS`` (any ``computed_at`` is
                ignored: it is set here; a missing ``uplift`` is null).
            now: the time stamped as ``computed_at`` of inserted or replaced rows (default:
                now, UTC).

        Raises:
            ValueError: a column is missing, a row has no outcome (a pending decision is
                never written), an outcome other than 0 or 1, an unknown arm or source,
                or a (decision_id, action) twice; nothing is written then.
        """
        records = _outcome_params(rows)
        computed_at = _naive_utc(now or dt.datetime.now(dt.UTC))
        written = 0
        for start in range(0, len(records), _OUTCOME_CHUNK):
            chunk = records[start : start + _OUTCOME_CHUNK]
            with self._durable.begin() as conn:
                stored = _stored_outcomes(conn, {r["decision_id"] for r in chunk})
                new, changed = [], []
                for r in chunk:
                    before = stored.get((r["decision_id"], r["action"]))
                    if before is None:
                        new.append({**r, "computed_at": computed_at})
                    elif before != tuple(r[c] for c in _COMPARED):
                        changed.append(
                            {**r, "key_decision_id": r["decision_id"], "key_action": r["action"]}
                        )
                if new:
                    conn.execute(sa.insert(outcomes_table), new)
                if changed:
                    conn.execute(_UPDATE_OUTCOME.values(computed_at=computed_at), changed)
                written += len(new) + len(changed)
        return written

    def close(self) -> None:
        self._log.dispose()
        self._durable.dispose()
        self._capped.dispose()


def read_decision_log(
    url: str, until: dt.date | None = None
) -> tuple[list[DecisionRecord], list[FeedbackRecord]] | None:
    """Every decision made on store data as of ``until`` or earlier, and their feedback.

    For reports (``monitoring``): decisions oldest first, feedback in the order recorded;
    decisions without a store date count as well. The not-shown lists are not read (a log
    from before they were kept has no table for them). Opens the log read-only and never
    creates anything: a missing SQLite file or missing tables give None.
    """
    with _reading(url) as engine:
        if engine is None or not _has_tables(engine, decisions_table, feedback_table):
            return None
        query = sa.select(decisions_table)
        if until is not None:
            query = query.where(
                sa.or_(decisions_table.c.as_of.is_(None), decisions_table.c.as_of <= until)
            )
        with engine.connect() as conn:
            decision_rows = conn.execute(query.order_by(decisions_table.c.created_at)).all()
            feedback_rows = conn.execute(
                sa.select(feedback_table).order_by(feedback_table.c.feedback_id)
            ).all()
    decisions = [decision_record(r) for r in decision_rows]
    kept = {d.decision_id for d in decisions}
    feedback = [feedback_record(r) for r in feedback_rows if r.decision_id in kept]
    return decisions, feedback


def read_decisions(url: str, until: dt.datetime | None = None) -> list[DecisionRecord] | None:
    """Every decision made at or before ``until``, oldest first, with its not-shown list
    and the policy's inputs.

    For outcomes, which need what was held out as well as what was shown, and off-policy
    evaluation, which ranks each decision again. Read-only like ``read_decision_log``:
    None without the store or its ``decisions`` table; a log from before the not-shown
    lists or the inputs were kept reads with empty lists and no inputs.
    """
    with _reading(url) as engine:
        if engine is None or not _has_tables(engine, decisions_table):
            return None
        joined: sa.FromClause = decisions_table
        columns: list[Any] = [decisions_table]
        for table, column in ((not_shown_table, "not_shown"), (inputs_table, "inputs")):
            if _has_tables(engine, table):
                joined = joined.outerjoin(table)
                columns.append(table.c[column])
        query = sa.select(*columns).select_from(joined)
        if until is not None:
            query = query.where(decisions_table.c.created_at <= _naive_utc(until))
        order = (decisions_table.c.created_at, decisions_table.c.decision_id)
        with engine.connect() as conn:
            rows = conn.execute(query.order_by(*order)).all()
    return [decision_record(r) for r in rows]


def read_outcomes(url: str) -> pd.DataFrame | None:
    """Every stored outcome, ordered by decision_id and action, columns ``OUTCOME_COLUMNS``.

    Times are naive UTC datetimes, ``horizon_end`` dates; ``uplift`` is NaN where none was
    predicted, and in a table made before it was kept. Read-only, creates nothing: None when
    the store or the ``decision_outcomes`` table does not exist.
    """
    with _reading(url) as engine:
        if engine is None or not _has_tables(engine, outcomes_table):
            return None
        stored = {c["name"] for c in sa.inspect(engine).get_columns(outcomes_table.name)}
        columns = [c for c in outcomes_table.columns if c.name in stored]
        query = sa.select(*columns).order_by(outcomes_table.c.decision_id, outcomes_table.c.action)
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(query)]
    frame = pd.DataFrame(rows, columns=[c.name for c in columns])
    frame = frame.reindex(columns=list(OUTCOME_COLUMNS))  # a column the table lacks: NaN
    return frame.astype(
        {
            "control": bool,
            "decided_at": "datetime64[us]",
            "probability": float,
            "uplift": float,
            "outcome": int,
            "value": float,
            "computed_at": "datetime64[us]",
        }
    )


def read_adaptive(url: str) -> AdaptiveState:
    """What answers taught, for a batch run (read once): empty without the store or tables.

    Read-only like ``read_decision_log``; creates nothing.
    """
    with _reading(url) as engine:
        if engine is None or not _has_tables(engine, adaptive_table, skips_table):
            return AdaptiveState()
        with engine.connect() as conn:
            return _adaptive_state(conn)


def record_of(decision: Decision, context: Context, now: dt.datetime) -> DecisionRecord:
    """The log entry of a decision made at ``now`` for ``context``.

    Each suggestion keeps ``propensity`` (the chance the policy shows it at its rank,
    ``policy._propensities``), ``ratio`` (the learned acceptance ratio in its priority) and
    the decision's ``mode``; the context keeps ``mode`` too (greedy, control or explore), so
    off-policy evaluation can weigh every logged decision.
    """
    a = decision.assessment
    return DecisionRecord(
        decision_id=decision.decision_id,
        customer_id=a.customer_id,
        created_at=now,
        context={
            "channel": context.channel,
            "call_reason": context.call_reason,
            "queue_pressure": context.queue_pressure,
            "agent_id": context.agent_id,
            "tier": a.tier.name,  # the customer's, at the decision: effects are read by tier
            "mode": decision.mode,
        },
        probabilities=dict(a.probabilities),
        suggestions=[
            {
                "suggestion_id": s.suggestion_id,
                "rank": s.rank,
                "kind": s.kind,
                "action": s.action,
                "product": s.product,
                "probability": s.probability,
                "value": s.value,
                "expected_value": s.expected_value,
                "priority": s.priority,
                "uplift": s.uplift,
                "ratio": s.ratio,
                "propensity": s.propensity,
                "mode": decision.mode,
            }
            for s in decision.suggestions
        ],
        control=decision.control,
        model_versions=dict(a.model_versions),
        as_of=a.as_of,
        not_shown=[
            {
                "kind": n.kind,
                "action": n.action,
                "product": n.product,
                "reason": n.reason,
                "detail": n.detail,
                "probability": n.probability,
                "until": None if n.until is None else _utc(n.until).isoformat(),
                "uplift": n.uplift,
            }
            for n in decision.not_shown
        ],
        inputs=dict(decision.inputs) or None,
    )


def without_capped(decision: Decision, refused: Mapping[str, str]) -> Decision:
    """The decision as shown once ``DecisionLog.record`` took capped actions off its list:
    those move to the not-shown list (reason ``capacity``), the rest move up."""
    if not refused:
        return decision
    kept = [s for s in decision.suggestions if s.action not in refused]
    capped = [
        NotShown(
            s.kind,
            s.action,
            s.product,
            "capacity",
            refused[s.action],
            s.probability,
            None,
            s.uplift,
        )
        for s in decision.suggestions
        if s.action in refused
    ]
    return replace(
        decision,
        suggestions=tuple(replace(s, rank=i) for i, s in enumerate(kept, start=1)),
        not_shown=(*decision.not_shown, *capped),
    )


def decision_record(row) -> DecisionRecord:
    """A ``decisions`` table row as a record (times in UTC), with ``not_shown`` and
    ``inputs`` if selected."""
    not_shown = row._mapping.get("not_shown")
    inputs = row._mapping.get("inputs")
    return DecisionRecord(
        decision_id=row.decision_id,
        customer_id=row.customer_id,
        created_at=_utc(row.created_at),
        context=json.loads(row.context),
        probabilities=json.loads(row.probabilities),
        suggestions=json.loads(row.suggestions),
        control=bool(row.control),
        model_versions=json.loads(row.model_versions),
        as_of=row.as_of,
        not_shown=json.loads(not_shown) if not_shown else [],
        inputs=json.loads(inputs) if inputs else None,
    )


def feedback_record(row) -> FeedbackRecord:
    """A ``feedback`` table row as a record (times in UTC)."""
    return FeedbackRecord(
        decision_id=row.decision_id,
        suggestion_id=row.suggestion_id,
        response=row.response,
        agent_id=row.agent_id,
        created_at=_utc(row.created_at),
        customer_id=row.customer_id,
        action=row.action,
        kind=row.kind,
        note=row.note,
    )


def _insert_decision(conn: sa.Connection, decision: DecisionRecord) -> None:
    conn.execute(
        _INSERT_DECISION,
        {
            "decision_id": decision.decision_id,
            "customer_id": decision.customer_id,
            "created_at": _naive_utc(decision.created_at),
            "as_of": decision.as_of,
            "context": _json(decision.context),
            "probabilities": _json(decision.probabilities),
            "suggestions": _json(list(decision.suggestions)),
            "control": bool(decision.control),
            "model_versions": _json(decision.model_versions),
        },
    )
    conn.execute(
        _INSERT_NOT_SHOWN,
        {"decision_id": decision.decision_id, "not_shown": _json(list(decision.not_shown))},
    )
    if decision.inputs is not None:
        conn.execute(
            _INSERT_INPUTS, {"decision_id": decision.decision_id, "inputs": _json(decision.inputs)}
        )


def _take(conn: sa.Connection, caps: Sequence[Cap], at: dt.datetime) -> Cap | None:
    """Take one offer's share of each cap, all or none (a savepoint); the first full cap, or
    None when every one had room."""
    with conn.begin_nested() as savepoint:
        for cap in caps:
            start = cap.period_start(at)
            conn.execute(_counter_row(conn, cap.key, start))
            taken = conn.execute(
                sa.update(capacity_table)
                .where(
                    capacity_table.c.cap_key == cap.key,
                    capacity_table.c.period_start == start,
                    capacity_table.c.used + cap.amount <= cap.limit + 1e-9,
                )
                .values(used=capacity_table.c.used + cap.amount)
            )
            if taken.rowcount == 0:
                savepoint.rollback()
                return cap
    return None


def _counter_row(conn: sa.Connection, key: str, start: dt.date) -> sa.Executable:
    """An insert of a cap's counter at 0 that leaves an existing one alone."""
    row = {"cap_key": key, "period_start": start, "used": 0.0}
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(capacity_table).values(**row).on_conflict_do_nothing()


def _capped_record(decision: DecisionRecord, refused: Mapping[str, str]) -> DecisionRecord:
    """The log entry with the capped suggestions moved to the not-shown list."""
    if not refused:
        return decision
    kept = [s for s in decision.suggestions if s["action"] not in refused]
    capped = [
        {
            "kind": s["kind"],
            "action": s["action"],
            "product": s.get("product"),
            "reason": "capacity",
            "detail": refused[str(s["action"])],
            "probability": s.get("probability"),
            "until": None,
            "uplift": s.get("uplift"),
        }
        for s in decision.suggestions
        if s["action"] in refused
    ]
    return replace(
        decision,
        suggestions=[{**s, "rank": i} for i, s in enumerate(kept, start=1)],
        not_shown=[*decision.not_shown, *capped],
    )


def _shown_suggestion(
    conn: sa.Connection, decision_id: str, suggestion_id: str
) -> tuple[str, Mapping[str, Any], Mapping[str, Any]]:
    """The decision's customer, the suggestion as logged and the decision's context, for
    feedback on it.

    Raises:
        UnknownDecisionError: no decision has ``decision_id``.
        UnknownSuggestionError: the decision did not show ``suggestion_id``.
    """
    row = conn.execute(
        sa.select(
            decisions_table.c.customer_id,
            decisions_table.c.suggestions,
            decisions_table.c.context,
        ).where(decisions_table.c.decision_id == decision_id)
    ).first()
    if row is None:
        raise UnknownDecisionError(f"no decision {decision_id!r}")
    shown = {s["suggestion_id"]: s for s in json.loads(row.suggestions)}
    if suggestion_id not in shown:
        raise UnknownSuggestionError(
            f"suggestion {suggestion_id!r} is not part of decision {decision_id!r}"
        )
    return row.customer_id, shown[suggestion_id], json.loads(row.context)


def _cell_key(suggestion: Mapping[str, Any], context: Mapping[str, Any]) -> tuple[str, str]:
    return str(suggestion.get("action", "")), str(context.get("tier") or NO_TIER)


def _skip_key(context: Mapping[str, Any]) -> tuple[str, str]:
    return str(context.get("queue_pressure") or "normal"), str(context.get("channel") or "")


def _q(suggestion: Mapping[str, Any]) -> float:
    """The offline probability logged with a suggestion (0 if none was)."""
    q = suggestion.get("probability")
    return float(q) if isinstance(q, int | float) else 0.0


def _count_answer(
    conn: sa.Connection,
    response: str,
    suggestion: Mapping[str, Any],
    context: Mapping[str, Any],
    at: dt.datetime,
) -> None:
    """Add one new feedback row to the counters, in its own transaction: an answer to its
    (action, tier) cell, every response to its (queue pressure, channel) skip counts.

    An upsert on the key (SQLite and PostgreSQL both have ON CONFLICT), so two workers
    adding to a new cell at once cannot collide.
    """
    insert = _upsert_of(conn)
    if response in ANSWERS:
        action, tier = _cell_key(suggestion, context)
        accepted, q = int(response == "accepted"), _q(suggestion)
        t = adaptive_table
        statement = insert(t).values(
            action=action, tier=tier, answers=1, accepted=accepted, expected=q, updated_at=at
        )
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[t.c.action, t.c.tier],
                set_={
                    "answers": t.c.answers + 1,
                    "accepted": t.c.accepted + accepted,
                    "expected": t.c.expected + q,
                    "updated_at": at,
                },
            )
        )
    pressure, channel = _skip_key(context)
    skipped, t = int(response == "skipped"), skips_table
    statement = insert(t).values(
        queue_pressure=pressure, channel=channel, responses=1, skipped=skipped, updated_at=at
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[t.c.queue_pressure, t.c.channel],
            set_={
                "responses": t.c.responses + 1,
                "skipped": t.c.skipped + skipped,
                "updated_at": at,
            },
        )
    )


def _upsert_of(conn: sa.Connection):
    """The dialect's INSERT with ON CONFLICT (SQLite or PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _adaptive_state(conn: sa.Connection) -> AdaptiveState:
    cells = {
        (r.action, r.tier): Cell(int(r.answers), int(r.accepted), float(r.expected))
        for r in conn.execute(sa.select(adaptive_table))
    }
    skips = {
        (r.queue_pressure, r.channel): SkipCell(int(r.responses), int(r.skipped))
        for r in conn.execute(sa.select(skips_table))
    }
    return AdaptiveState(cells, skips)


@contextlib.contextmanager
def _reading(url: str) -> Iterator[sa.Engine | None]:
    """The store opened for reading only (it creates nothing), disposed of afterwards; None
    when the store does not exist."""
    try:
        engine = open_engine(url, create=False, begin=None)
    except StoreMissingError:
        yield None
        return
    try:
        yield engine
    finally:
        engine.dispose()


def _has_tables(engine: sa.Engine, *tables: sa.Table) -> bool:
    inspector = sa.inspect(engine)
    return all(inspector.has_table(t.name) for t in tables)


def _outcome_params(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Outcome rows as plain parameters (the types the table reads back), checked.

    Raises:
        ValueError: as ``DecisionLog.write_outcomes`` says.
    """
    missing = [c for c in _COMPARED if c not in rows.columns and c not in _OPTIONAL]
    if missing:
        raise ValueError(f"outcome rows lack the columns {missing}")
    rows = rows.assign(**{c: None for c in _OPTIONAL if c not in rows.columns})
    pending = int(rows["outcome"].isna().sum())
    if pending:
        raise ValueError(f"{pending} rows have no outcome: a pending decision is never written")
    records = []
    for values in rows[list(_COMPARED)].itertuples(index=False, name=None):
        r = dict(zip(_COMPARED, values, strict=True))
        if r["outcome"] not in (0, 1) or r["arm"] not in ARMS or r["source"] not in SOURCES:
            raise ValueError(
                f"outcome must be 0 or 1, arm one of {ARMS} and source one of {SOURCES}; "
                f"got {r['outcome']!r}, {r['arm']!r}, {r['source']!r}"
            )
        records.append(
            {
                **{c: str(r[c]) for c in ("decision_id", "action", "kind", "arm", "source")},
                "customer_id": str(r["customer_id"]),
                **{c: _text_or_none(r[c]) for c in ("product", "tier", "channel")},
                "control": bool(r["control"]),
                "decided_at": _naive_utc(pd.Timestamp(r["decided_at"]).to_pydatetime()),
                **{c: _number_or_none(r[c]) for c in ("probability", "uplift")},
                "horizon_end": pd.Timestamp(r["horizon_end"]).date(),
                "outcome": int(r["outcome"]),
                "value": float(r["value"]),
            }
        )
    keys = [(r["decision_id"], r["action"]) for r in records]
    if len(set(keys)) != len(keys):
        raise ValueError("outcome rows repeat a (decision_id, action)")
    return [{c: r[c] for c in _COMPARED} for r in records]


def _stored_outcomes(
    conn: sa.Connection, decision_ids: set[str]
) -> dict[tuple[str, str], tuple[Any, ...]]:
    """(decision_id, action) -> the compared figures of the stored outcomes of these decisions."""
    columns = [outcomes_table.c[c] for c in _COMPARED]
    query = sa.select(*columns).where(outcomes_table.c.decision_id.in_(sorted(decision_ids)))
    return {(r.decision_id, r.action): tuple(r) for r in conn.execute(query)}


def _text_or_none(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _number_or_none(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _aware(record: FeedbackRecord) -> FeedbackRecord:
    return FeedbackRecord(**{**record.__dict__, "created_at": _utc(record.created_at)})


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _naive_utc(at: dt.datetime) -> dt.datetime:
    """UTC wall clock without tzinfo: how the tables store time on every backend."""
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    return at


def _utc(at: dt.datetime) -> dt.datetime:
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
