"""Monitoring readers: the decision log is read, never created."""

from __future__ import annotations

from pathlib import Path

from monitoring.readers import read_decision_log


def test_a_missing_decision_log_reads_as_none_and_is_not_created(tmp_path: Path):
    path = tmp_path / "decisions.db"
    assert read_decision_log(f"sqlite:///{path}") is None
    assert not path.exists(), "monitoring only reads the decision log"
