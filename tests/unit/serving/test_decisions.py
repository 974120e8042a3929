"""The decision log and feedback store: logging, idempotent feedback, declines for the policy."""

from __future__ import annotations

import datetime as dt

import pytest

from serving.decisions import (
    DecisionLog,
    DecisionRecord,
    FeedbackConflictError,
    UnknownDecisionError,
    UnknownSuggestionError,
    read_decision_log,
)

NOW = dt.datetime(2026, 7, 1, 9, 30, tzinfo=dt.UTC)


def make_decision(decision_id: str = "d1", customer_id: str = "C1", **changes) -> DecisionRecord:
    """A decision that showed a retention and a credit-card suggestion."""
    values = {
        "decision_id": decision_id,
        "customer_id": customer_id,
        "created_at": NOW,
        "context": {"channel": "phone", "queue_pressure": "normal", "agent_id": "a1"},
        "probabilities": {"churn": 0.4, "cross_sell_credit_card": 0.1, "cross_sell_savings": None},
        "suggestions": [
            {"suggestion_id": f"{decision_id}-r", "action": "retention", "kind": "retention"},
            {"suggestion_id": f"{decision_id}-c", "action": "credit_card", "kind": "cross_sell"},
        ],
        "control": False,
        "model_versions": {"tierwise-churn": "3"},
        "as_of": dt.date(2026, 6, 30),
    }
    return DecisionRecord(**{**values, **changes})


@pytest.fixture
def log(tmp_path) -> DecisionLog:
    return DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}")


def test_a_logged_decision_reads_back_whole(log):
    log.record(make_decision())
    got = log.get("d1")
    assert got == make_decision(), "every field of the decision is kept, time in UTC"
    assert log.get("d2") is None


def test_feedback_is_stored_once_per_suggestion_and_a_retry_finds_it(log):
    # Given a decision and feedback on one of its suggestions
    log.record(make_decision())
    first = log.add_feedback("d1", "d1-c", "declined", "a1", "has one", now=NOW)
    # When the same call is retried
    retry = log.add_feedback("d1", "d1-c", "declined", "a1", "has one", now=NOW)
    # Then the retry returns the stored row and adds none
    assert first.created and not retry.created, "only the first call creates the row"
    assert retry.feedback == first.feedback, "the retry sees the first call's row"
    assert len(log.feedback("d1")) == 1 and log.count() == (1, 1)
    stored = log.feedback("d1")[0]
    assert (stored.customer_id, stored.action, stored.kind) == ("C1", "credit_card", "cross_sell")


def test_another_response_for_the_same_suggestion_is_a_conflict(log):
    log.record(make_decision())
    log.add_feedback("d1", "d1-c", "skipped", "a1", now=NOW)
    with pytest.raises(FeedbackConflictError, match="'skipped'"):
        log.add_feedback("d1", "d1-c", "accepted", "a1", now=NOW)
    assert [f.response for f in log.feedback("d1")] == ["skipped"], "the first answer stands"


def test_feedback_needs_a_known_decision_and_one_of_its_suggestions(log):
    log.record(make_decision())
    with pytest.raises(UnknownDecisionError):
        log.add_feedback("nope", "d1-c", "accepted", "a1")
    with pytest.raises(UnknownSuggestionError):
        log.add_feedback("d1", "other", "accepted", "a1")
    with pytest.raises(ValueError, match="response must be one of"):
        log.add_feedback("d1", "d1-c", "maybe", "a1")
    assert log.count() == (1, 0), "nothing stored for refused feedback"


def test_feedback_is_committed_when_acknowledged(tmp_path):
    # Given feedback acknowledged by one log
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    writer = DecisionLog(url)
    writer.record(make_decision())
    writer.add_feedback("d1", "d1-r", "accepted", "a1", now=NOW)
    # When another connection (a restarted service) opens the store; then it is there
    reader = DecisionLog(url)
    assert [f.response for f in reader.feedback("d1")] == ["accepted"]


def test_declines_count_only_customer_declines_in_the_window(log):
    # Given two decisions for C1 and one for C2, with mixed responses over time
    log.record(make_decision("d1"))
    log.record(make_decision("d2"))
    log.record(make_decision("d3", customer_id="C2"))
    log.add_feedback("d1", "d1-c", "declined", "a1", now=NOW - dt.timedelta(days=40))
    log.add_feedback("d1", "d1-r", "skipped", "a1", now=NOW - dt.timedelta(days=1))
    log.add_feedback("d2", "d2-c", "declined", "a1", now=NOW - dt.timedelta(days=2))
    log.add_feedback("d2", "d2-r", "declined", "a1", now=NOW - dt.timedelta(days=1))
    log.add_feedback("d3", "d3-c", "declined", "a1", now=NOW)
    # When C1's declines of the last 30 days are read
    got = log.declines("C1", since=NOW - dt.timedelta(days=30))
    # Then only the customer's own declines in the window count, by action
    assert got == {
        "credit_card": [NOW - dt.timedelta(days=2)],
        "retention": [NOW - dt.timedelta(days=1)],
    }, "skips, older declines and other customers' declines never count"
    assert all(t.tzinfo is not None for ts in got.values() for t in ts), "times come back UTC"


NOT_SHOWN = [
    {
        "kind": "cross_sell",
        "action": "savings",
        "product": "savings",
        "reason": "paused_by_declines",
        "detail": "declined 2 times in 30 days; paused until 2026-07-20 09:30 UTC",
        "probability": 0.2,
        "until": "2026-07-20T09:30:00+00:00",
    },
    {
        "kind": "upgrade",
        "action": "upgrade",
        "product": None,
        "reason": "churn_gate",
        "detail": "high churn risk: sales offers yield",
        "probability": 0.1,
        "until": None,
    },
]


def test_the_actions_not_shown_are_logged_with_the_decision(log):
    log.record(make_decision(not_shown=NOT_SHOWN))
    assert log.get("d1").not_shown == NOT_SHOWN, "reasons are kept with the decision"
    assert log.get("d1") == make_decision(not_shown=NOT_SHOWN)


def test_a_decision_log_from_before_not_shown_stays_readable(tmp_path):
    # Given a database written before the not-shown table existed, with one decision
    import sqlalchemy as sa

    from serving.decisions import decisions_table, feedback_table

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    old = sa.MetaData()
    for table in (decisions_table, feedback_table):
        table.to_metadata(old)
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(old.tables["decisions"]),
            {
                "decision_id": "d0",
                "customer_id": "C1",
                "created_at": NOW.replace(tzinfo=None),
                "as_of": dt.date(2026, 6, 30),
                "context": "{}",
                "probabilities": "{}",
                "suggestions": '[{"suggestion_id": "s0", "action": "savings", "kind": "cross_sell"}]',
                "control": False,
                "model_versions": "{}",
            },
        )
    engine.dispose()
    # When it is opened as a decision log
    log = DecisionLog(url)
    # Then its decision reads back without a not-shown list, feedback still works
    assert log.get("d0").not_shown == [], "no reasons were logged then"
    assert log.add_feedback("d0", "s0", "declined", "a1", now=NOW).created
    # And new decisions keep theirs
    log.record(make_decision(not_shown=NOT_SHOWN))
    assert log.get("d1").not_shown == NOT_SHOWN


def test_a_missing_decision_log_reads_as_none_and_is_not_created(tmp_path):
    path = tmp_path / "decisions.db"
    assert read_decision_log(f"sqlite:///{path}") is None
    assert not path.exists(), "a report only reads the decision log"


def test_a_report_reads_the_decisions_up_to_a_store_date_with_their_feedback(tmp_path):
    # Given decisions on two store dates, one without a date, and feedback on two of them
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    log = DecisionLog(url)
    log.record(make_decision("d1", as_of=dt.date(2026, 5, 31)))
    log.record(make_decision("d2", created_at=NOW + dt.timedelta(hours=1)))
    log.record(make_decision("d3", created_at=NOW - dt.timedelta(hours=1), as_of=None))
    log.add_feedback("d2", "d2-c", "declined", "a1", now=NOW)
    log.add_feedback("d1", "d1-r", "accepted", "a1", now=NOW)
    log.close()
    # When a report reads the log as of the earlier store date
    decisions, feedback = read_decision_log(url, until=dt.date(2026, 5, 31))
    # Then it gets the decisions made on that date or without one, oldest first
    assert [d.decision_id for d in decisions] == ["d3", "d1"], "d2 used later store data"
    assert [(f.decision_id, f.response) for f in feedback] == [("d1", "accepted")], (
        "only the feedback of the decisions read"
    )
    everything, _ = read_decision_log(url)
    assert [d.decision_id for d in everything] == ["d3", "d1", "d2"]


def answered_log(log: DecisionLog) -> None:
    """Three decisions of gold and silver customers with answers, a skip and a not_shown."""
    for i, tier in enumerate(("gold", "gold", "silver")):
        suggestions = [
            {
                "suggestion_id": f"s{i}-r",
                "action": "retention",
                "kind": "retention",
                "probability": 0.25,
            },
            {
                "suggestion_id": f"s{i}-c",
                "action": "credit_card",
                "kind": "cross_sell",
                "probability": 0.1,
            },
        ]
        context = {"channel": "phone", "queue_pressure": "high", "agent_id": "a1", "tier": tier}
        log.record(make_decision(f"d{i}", f"C{i}", suggestions=suggestions, context=context))
    log.add_feedback("d0", "s0-r", "accepted", "a1", now=NOW)
    log.add_feedback("d0", "s0-c", "declined", "a1", now=NOW)
    log.add_feedback("d1", "s1-r", "declined", "a1", now=NOW)
    log.add_feedback("d1", "s1-c", "skipped", "a1", now=NOW)
    log.add_feedback("d2", "s2-r", "not_shown", "a1", now=NOW)
    log.add_feedback("d2", "s2-c", "accepted", "a1", now=NOW)


def test_answers_count_per_action_and_tier_and_skips_only_in_the_skip_counts(log):
    from serving.adaptive import Cell

    answered_log(log)
    state = log.adaptive_state()
    assert state.cell("retention", "gold") == Cell(2, 1, 0.5), "two answers, q 0.25 each"
    assert state.cell("credit_card", "gold") == Cell(1, 0, 0.1), "the skip counts nothing"
    assert state.cell("retention", "silver") == Cell(), "not_shown never reached the customer"
    assert state.cell("credit_card", "silver") == Cell(1, 1, 0.1)
    skips = state.skips[("high", "phone")]
    assert (skips.responses, skips.skipped) == (6, 1), "every feedback row, one skip"


def test_a_retried_feedback_changes_no_count(log):
    answered_log(log)
    before = log.adaptive_state()
    retry = log.add_feedback("d0", "s0-r", "accepted", "a1", now=NOW)
    assert not retry.created
    assert log.adaptive_state() == before, "updates are idempotent per feedback row"


def test_counts_rebuilt_from_the_feedback_table_equal_the_incremental_ones(log, tmp_path):
    from serving.decisions import read_adaptive

    answered_log(log)
    incremental = log.adaptive_state()
    assert log.rebuild_counts() == incremental
    assert log.adaptive_state() == incremental
    assert read_adaptive(log.url) == incremental, "the batch reads the same counts"
    assert read_adaptive(f"sqlite:///{tmp_path / 'none.db'}").cells == {}, "no store: nothing"
