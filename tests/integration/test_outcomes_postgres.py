"""The outcome upsert on PostgreSQL: the same rows, the same answers as on SQLite."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from serving.decisions import DecisionLog, read_outcomes
from tests.unit.serving.test_decision_outcomes import outcome_rows

NOW = dt.datetime(2026, 10, 1, 6, 0, tzinfo=dt.UTC)


def test_outcomes_upsert_on_postgres(pg_url):
    # Given outcomes written to a decision store on PostgreSQL
    log = DecisionLog(pg_url)
    assert log.write_outcomes(outcome_rows(), now=NOW) == 2
    stored = read_outcomes(pg_url)
    # When the same rows come again, and then one corrected
    rerun = log.write_outcomes(outcome_rows(), now=NOW + dt.timedelta(days=1))
    unchanged = read_outcomes(pg_url)
    corrected = log.write_outcomes(outcome_rows(outcome=[1, 1]), now=NOW + dt.timedelta(days=2))
    log.close()
    # Then the rerun writes nothing and the correction replaces one row
    assert rerun == 0, "a rerun writes no row"
    pd.testing.assert_frame_equal(unchanged, stored)
    assert corrected == 1 and read_outcomes(pg_url)["outcome"].tolist() == [1, 1]
