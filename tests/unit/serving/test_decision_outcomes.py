"""The outcome table of the decision store: an idempotent upsert, pending rows refused, readers."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pandas as pd
import pytest

from serving.decisions import (
    OUTCOME_COLUMNS,
    DecisionLog,
    DecisionRecord,
    read_decisions,
    read_outcomes,
)

NOW = dt.datetime(2026, 10, 1, 6, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=1)


def outcome_rows(**changes) -> pd.DataFrame:
    """Two outcome rows of one decision: an offered cross-sell and a held-out retention."""
    rows = pd.DataFrame(
        {
            "decision_id": ["d1", "d1"],
            "action": ["credit_card", "retention"],
            "kind": ["cross_sell", "retention"],
            "product": ["credit_card", None],
            "arm": ["offered", "holdout"],
            "control": [False, False],
            "source": ["service", "service"],
            "customer_id": ["C1", "C1"],
            "decided_at": [dt.datetime(2026, 6, 2, 9, 30)] * 2,
            "tier": ["VIP", "VIP"],
            "channel": ["phone", "phone"],
            "probability": [0.2, float("nan")],
            "horizon_end": [dt.date(2026, 8, 31)] * 2,
            "outcome": [1, 0],
            "value": [120.5, 0.0],
        }
    )
    for column, values in changes.items():
        rows[column] = values
    return rows


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'decisions.db'}"


def test_outcomes_read_back_as_written(url):
    # Given a store and two outcome rows
    log = DecisionLog(url)
    # When written and read back
    written = log.write_outcomes(outcome_rows(), now=NOW)
    got = read_outcomes(url)
    # Then both rows come back with every column, stamped with the computing time
    assert written == 2, "two new keys are two rows written"
    assert list(got.columns) == list(OUTCOME_COLUMNS), "the reader returns the table's columns"
    assert got["action"].tolist() == ["credit_card", "retention"]
    assert got["outcome"].tolist() == [1, 0] and got["value"].tolist() == [120.5, 0.0]
    assert got["product"].tolist() == ["credit_card", None], "a missing product stays missing"
    assert got["probability"].isna().tolist() == [False, True]
    assert got["horizon_end"].tolist() == [dt.date(2026, 8, 31)] * 2
    assert (got["computed_at"] == pd.Timestamp(NOW.replace(tzinfo=None))).all()


def test_a_rerun_changes_nothing(url):
    # Given outcomes written once
    log = DecisionLog(url)
    log.write_outcomes(outcome_rows(), now=NOW)
    first = read_outcomes(url)
    # When the same rows are written again a day later
    written = log.write_outcomes(outcome_rows(), now=LATER)
    # Then nothing is written and the stored rows, computing time included, are the same
    assert written == 0, "a rerun writes no row"
    pd.testing.assert_frame_equal(read_outcomes(url), first)


def test_a_corrected_outcome_replaces_the_stored_row(url):
    # Given outcomes written once
    log = DecisionLog(url)
    log.write_outcomes(outcome_rows(), now=NOW)
    # When the data was corrected and the retention outcome is now 1
    written = log.write_outcomes(outcome_rows(outcome=[1, 1]), now=LATER)
    got = read_outcomes(url)
    # Then that row alone is replaced, with the new computing time
    assert written == 1, "only the changed row is written"
    assert got["outcome"].tolist() == [1, 1] and len(got) == 2, "an update, not a second row"
    assert got["computed_at"].tolist() == [
        pd.Timestamp(NOW.replace(tzinfo=None)),
        pd.Timestamp(LATER.replace(tzinfo=None)),
    ]


def test_a_pending_row_is_never_written(url):
    # Given rows one of which has no outcome yet
    log = DecisionLog(url)
    rows = outcome_rows(outcome=[1, None])
    # When written, then the writer refuses them all
    with pytest.raises(ValueError, match="1 rows have no outcome: a pending decision"):
        log.write_outcomes(rows, now=NOW)
    assert read_outcomes(url).empty, "nothing of a refused batch is stored"


def test_an_unknown_arm_is_refused(url):
    log = DecisionLog(url)
    with pytest.raises(ValueError, match="arm one of"):
        log.write_outcomes(outcome_rows(arm=["offered", "control"]), now=NOW)


def test_readers_answer_none_without_a_store_or_its_tables(tmp_path):
    # Given no file, and a SQLite file without the decision tables
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    # Then both readers answer None and create nothing
    assert read_outcomes(missing) is None and read_decisions(missing) is None
    assert read_outcomes(f"sqlite:///{other}") is None
    assert read_decisions(f"sqlite:///{other}") is None
    assert not (tmp_path / "none.db").exists(), "a reader never creates the store"


def test_read_decisions_has_the_not_shown_lists_up_to_a_time(url):
    # Given two decisions a day apart, the first with a held-out action
    log = DecisionLog(url)
    held = {"kind": "upgrade", "action": "upgrade", "reason": "holdout", "probability": 0.3}
    for i, not_shown in enumerate([[held], []]):
        log.record(
            DecisionRecord(
                decision_id=f"d{i}",
                customer_id="C1",
                created_at=NOW + dt.timedelta(days=i),
                context={"channel": "phone"},
                probabilities={},
                suggestions=[],
                control=False,
                model_versions={},
                not_shown=not_shown,
            )
        )
    # When read up to the first day's end
    got = read_decisions(url, until=NOW + dt.timedelta(hours=12))
    # Then only the first comes back, with what it held out
    assert [d.decision_id for d in got] == ["d0"], "decisions after the time are not read"
    assert list(got[0].not_shown) == [held]


def test_the_predicted_uplift_is_kept_and_may_be_missing(url):
    # Given rows with an uplift where a model gave one, and rows without the column at all
    log = DecisionLog(url)
    log.write_outcomes(outcome_rows(uplift=[0.08, None]), now=NOW)
    log.write_outcomes(outcome_rows(decision_id=["d2", "d2"]), now=NOW)
    # When read back
    got = read_outcomes(url).set_index(["decision_id", "action"])["uplift"]
    # Then the uplift is there, and missing ones are NaN
    assert got[("d1", "credit_card")] == 0.08
    assert got.drop(("d1", "credit_card")).isna().all(), "no uplift given: NaN"
    # And a rerun with the same uplift writes nothing, a new uplift replaces the row
    assert log.write_outcomes(outcome_rows(uplift=[0.08, None]), now=LATER) == 0
    assert log.write_outcomes(outcome_rows(uplift=[0.09, None]), now=LATER) == 1


def test_a_table_kept_before_uplift_reads_with_nan_uplift(url, tmp_path):
    # Given a decision_outcomes table made without the uplift column, holding one row
    log = DecisionLog(url)
    log.write_outcomes(outcome_rows(), now=NOW)
    log.close()
    con = sqlite3.connect(tmp_path / "decisions.db")
    con.execute("ALTER TABLE decision_outcomes DROP COLUMN uplift")
    con.commit()
    con.close()
    # When read
    got = read_outcomes(url)
    # Then every column is there, uplift NaN, and the stored figures unchanged
    assert list(got.columns) == list(OUTCOME_COLUMNS)
    assert got["uplift"].isna().all() and got["uplift"].dtype == float
    assert got["value"].tolist() == [120.5, 0.0]
