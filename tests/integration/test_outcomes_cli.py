"""``tierwise outcomes`` end to end: a real decision log, a batch output and parquet tables."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from serving.decisions import DecisionLog, DecisionRecord, read_outcomes
from tierwise.cli import app

DECIDED = dt.datetime(2026, 6, 2, 9, 30, tzinfo=dt.UTC)  # window (2026-06-02, 2026-07-02]


@pytest.fixture
def data(tmp_path):
    """A base of three customers: A opens a card on 2026-06-15, B closes on 2026-06-20."""
    root = tmp_path / "data"
    root.mkdir()
    pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "signup_date": ["2025-01-01"] * 3,
            "closed_date": [None, "2026-06-20", None],
        }
    ).to_parquet(root / "customers.parquet")
    pd.DataFrame(
        {
            "customer_id": ["A", "A", "C"],
            "ts": ["2026-06-10T10:00:00Z", "2026-07-05T10:00:00Z", "2026-05-01T10:00:00Z"],
            "amount": [40.0, 99.0, 5.0],
            "product": [None] * 3,
            "channel": [None] * 3,
        }
    ).to_parquet(root / "transactions.parquet")
    pd.DataFrame(
        {
            "customer_id": ["A"],
            "product": ["card"],
            "opened": ["2026-06-15"],
            "closed": [None],
            "monthly_fee": [np.nan],
        }
    ).to_parquet(root / "holdings.parquet")
    settings = {"horizon_days": 30, "data_end": "2026-12-31"}
    (root / "tierwise.yaml").write_text(yaml.safe_dump(settings))
    return root


def batch_output(folder, as_of: dt.date) -> None:
    """A nightly output as ``tierwise score`` leaves it: a manifest and one parquet part."""
    folder.mkdir()
    pd.DataFrame(
        {
            "customer_id": ["A", "B"],
            "as_of": [as_of, as_of],
            "tier": ["small", "major"],
            "control": [False, False],
            "churn_probability": [0.05, 0.6],
            "suggestion_1_kind": ["cross_sell", None],
            "suggestion_1_action": ["card", None],
            "suggestion_1_product": ["card", None],
            "suggestion_1_probability": [0.3, np.nan],
            "suggestion_1_expected_value": [9.0, np.nan],
            "holdout_actions": [[], ["retention"]],
        }
    ).to_parquet(folder / "part-00000-x.parquet")
    manifest = {"as_of": as_of.isoformat(), "parts": ["part-00000-x.parquet"]}
    manifest["options"] = {"channel": "batch"}
    (folder / "_tierwise.json").write_text(json.dumps(manifest))


def decision(decision_id: str, customer_id: str, at: dt.datetime, **changes) -> DecisionRecord:
    values = {
        "decision_id": decision_id,
        "customer_id": customer_id,
        "created_at": at,
        "context": {"channel": "phone", "tier": "small"},
        "probabilities": {},
        "suggestions": [
            {"suggestion_id": f"{decision_id}-1", "rank": 1, "kind": "cross_sell"}
            | {"action": "card", "product": "card", "probability": 0.2}
        ],
        "control": False,
        "model_versions": {},
        "not_shown": [
            {"kind": "retention", "action": "retention", "product": None, "reason": "holdout"}
        ],
    }
    return DecisionRecord(**{**values, **changes})


def test_outcomes_are_written_once_and_pending_ones_when_due(data, tmp_path, monkeypatch):
    # Given a decision log with a due decision, a later one and one for an unknown customer,
    # and a batch output for 2026-06-01
    home = tmp_path / "home"
    monkeypatch.setenv("TIERWISE_HOME", str(home))
    monkeypatch.delenv("TIERWISE_DECISION_STORE_URL", raising=False)
    url = f"sqlite:///{home.resolve() / 'decisions.db'}"
    log = DecisionLog(url)
    log.record(decision("d-a", "A", DECIDED))
    log.record(decision("d-late", "C", DECIDED + dt.timedelta(days=20)))
    log.record(decision("d-ghost", "nobody", DECIDED))
    log.close()
    batch_output(tmp_path / "scores", dt.date(2026, 6, 1))
    command = ["outcomes", "--data", str(data), "--batch", str(tmp_path / "scores")]

    # When run as of the day the first horizon ends
    first = CliRunner().invoke(app, [*command, "--as-of", "2026-07-02"])
    # Then the due decisions' rows are written, the later one waits, the unknown is reported
    assert first.exit_code == 0, first.output
    assert (
        "3 service and 2 batch decisions read; 4 outcome rows written (4 due); "
        "1 decisions pending" in first.output
    ), first.output
    assert "1 decisions name a customer the data does not have" in first.output
    stored = read_outcomes(url)
    got = {(r.decision_id, r.action): (r.arm, r.outcome, r.value) for r in stored.itertuples()}
    assert got == {
        ("d-a", "card"): ("offered", 1, 40.0),
        ("d-a", "retention"): ("holdout", 1, 40.0),
        ("batch:2026-06-01:A", "card"): ("offered", 1, 40.0),
        ("batch:2026-06-01:B", "retention"): ("holdout", 0, 0.0),
    }, got

    # When run again, then nothing changes
    again = CliRunner().invoke(app, [*command, "--as-of", "2026-07-02"])
    assert again.exit_code == 0 and "0 outcome rows written (4 due)" in again.output, again.output
    pd.testing.assert_frame_equal(read_outcomes(url), stored)

    # When run once the later decision's horizon has passed, then it is written too
    later = CliRunner().invoke(app, [*command, "--as-of", "2026-07-22"])
    assert later.exit_code == 0 and "2 outcome rows written (6 due); 0 decisions" in later.output
    late = read_outcomes(url).set_index(["decision_id", "action"])
    assert late.loc[("d-late", "card"), "outcome"] == 0, "C opened nothing"
    assert len(late) == 6


def test_a_folder_that_is_not_a_batch_output_is_refused(data, tmp_path, monkeypatch):
    monkeypatch.setenv("TIERWISE_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(
        app, ["outcomes", "--data", str(data), "--as-of", "2026-07-02", "--batch", str(tmp_path)]
    )
    assert result.exit_code == 1 and "not a batch output (" in result.output, result.output
