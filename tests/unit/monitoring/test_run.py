"""The monitoring run's result: the exit code a scheduler reads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from monitoring.alerts import Thresholds, find_alerts
from monitoring.run import MonitorResult

AS_OF = dt.date(2026, 3, 1)


def test_exit_code_is_non_zero_when_any_alert_fired(tmp_path: Path):
    alerts = find_alerts(Thresholds(), scores=pd.DataFrame({"target": ["churn"], "psi": [0.9]}))
    paging = MonitorResult(AS_OF, tmp_path / "r.html", tmp_path / "r.json", alerts, {})
    quiet = MonitorResult(AS_OF, tmp_path / "r.html", tmp_path / "r.json", [], {})
    assert (paging.exit_code, quiet.exit_code) == (1, 0)
