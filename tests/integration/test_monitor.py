"""`run_monitor` on the demo base with models trained into a real MLflow and a real decision log."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from models.scoring import load_champions
from monitoring.alerts import Thresholds
from monitoring.run import MonitorResult, run_monitor
from serving.decisions import DecisionLog, DecisionRecord
from tierwise.settings import Settings

SECTIONS = ["alerts", "models", "feature-drift", "score-drift", "realized-performance", "pyramid", "feedback"]  # fmt: skip
# (decision id, control, agent, [(kind, action, response or None)])
LOG = [
    ("d1", False, "ann", [("retention", "retention", "accepted"), ("cross_sell", "savings", "declined")]),
    ("d2", False, "bob", [("upgrade", "upgrade", "skipped"), ("cross_sell", "savings", "accepted")]),
    ("d3", False, "ann", [("cross_sell", "savings", "not_shown")]),
    ("d4", True, "bob", [("cross_sell", "savings", "declined"), ("retention", "retention", None)]),
]  # fmt: skip


def write_log(url: str, customers: list[str], as_of: dt.date) -> None:
    """The decisions of ``LOG`` for the given customers, with their feedback, in the real store."""
    log = DecisionLog(url)
    at = dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.UTC)
    for (decision_id, control, agent, shown), customer in zip(LOG, customers, strict=False):
        suggestions = [
            {
                "suggestion_id": f"{decision_id}-{i}",
                "rank": i,
                "kind": kind,
                "action": action,
                "product": action if kind == "cross_sell" else None,
                "probability": 0.1,
                "expected_value": 12.0,
                "priority": 12.0,
            }
            for i, (kind, action, _) in enumerate(shown, start=1)
        ]
        context = {
            "channel": "phone",
            "call_reason": None,
            "queue_pressure": "normal",
            "agent_id": agent,
        }
        log.record(
            DecisionRecord(decision_id, customer, at, context, {}, suggestions, control, {}, as_of)
        )
        for i, (_, _, response) in enumerate(shown, start=1):
            if response is not None:
                log.add_feedback(decision_id, f"{decision_id}-{i}", response, agent, now=at)
    log.close()


@pytest.fixture(scope="module")
def setup(trained, tmp_path_factory):
    """Settings with a decision log of its own, the dataset, its last date and the champions."""
    folder = tmp_path_factory.mktemp("monitor")
    settings = trained.settings.model_copy(
        update={"decision_store_url": f"sqlite:///{folder / 'decisions.db'}"}
    )
    ds = trained.dataset()
    as_of = ds.settings.data_end
    customers = [
        r[0]
        for r in ds.con.execute(
            "SELECT customer_id FROM customers WHERE closed_date IS NULL ORDER BY customer_id LIMIT 4"
        ).fetchall()
    ]
    write_log(settings.decisions_url(), customers, as_of)
    return settings, ds, as_of, folder, load_champions(settings)


@pytest.fixture(scope="module")
def report(setup) -> MonitorResult:
    settings, ds, as_of, folder, models = setup
    return run_monitor(ds, as_of, settings, folder / "report.html", models=models)


def test_report_has_every_section_in_order_with_alerts_first(report):
    page = report.report.read_text()
    positions = [page.find(f'<section id="{s}">') for s in SECTIONS]
    assert all(p >= 0 for p in positions), dict(zip(SECTIONS, positions, strict=True))
    assert positions == sorted(positions), "alerts come first, then the sections in order"


def test_report_is_self_contained_with_embedded_plots(report):
    page = report.report.read_text()
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]{100,})"', page)
    # feature drift, score drift, calibration, lift, pyramid, feedback
    assert len(images) == 6, f"expected 6 embedded plots, found {len(images)}"
    assert not re.search(r'(src|href)="https?:', page), "nothing is fetched: it opens offline"


def test_json_beside_the_html_holds_the_same_figures(report):
    assert report.figures_file == report.report.with_suffix(".json")
    figures = json.loads(report.figures_file.read_text())
    assert figures["as_of"] == report.as_of.isoformat()
    assert [a["message"] for a in figures["alerts"]] == [a.message for a in report.alerts]
    page = report.report.read_text()
    for alert in report.alerts:
        assert alert.message.replace("<", "&lt;").replace(">", "&gt;") in page
    targets = {m["target"] for m in figures["models"]}
    assert {"churn", "upgrade"} <= targets
    assert {r["target"] for r in figures["score_drift"]["targets"]} == targets
    assert len(figures["feature_drift"]["features"]) > 20, "every profiled feature has a PSI"
    psis = [f["psi"] for f in figures["feature_drift"]["features"]]
    assert psis == sorted(psis, reverse=True), "worst first"
    realized = figures["realized_performance"]["rows"]
    assert {r["target"] for r in realized} == targets and all(
        0.5 < r["roc_auc"] <= 1 for r in realized
    ), "the champions rank better than chance on dates whose horizon has passed"
    assert (
        sum(t["customers"] for t in figures["pyramid"]["tiers"]) == figures["pyramid"]["customers"]
    )


def test_feedback_section_matches_the_decision_log(report):
    feedback = json.loads(report.figures_file.read_text())["feedback"]
    assert (feedback["decisions"], feedback["suggestions"]) == (4, 7)
    by_kind = {r["kind"]: r for r in feedback["by"]["kind"]}
    # cross-sell: declined, accepted, not shown, declined
    assert (by_kind["cross_sell"]["listed"], by_kind["cross_sell"]["shown"]) == (4, 3)
    assert by_kind["cross_sell"]["accepted"] == 1 and by_kind["cross_sell"]["declined"] == 2
    ranked, control = (
        feedback["control"]["groups"]["ranked"],
        feedback["control"]["groups"]["control"],
    )
    assert (ranked["shown"], ranked["accepted"], control["shown"], control["accepted"]) == (
        4,
        2,
        2,
        0,
    )
    assert sum(r["listed"] for r in feedback["by"]["tier"]) == 7, "every suggestion has a tier"
    assert "-" not in {r["tier"] for r in feedback["by"]["tier"]}, (
        "decisions are on known customers"
    )


def test_exit_code_follows_the_thresholds(setup, report):
    settings, ds, as_of, folder, models = setup
    assert report.exit_code == (1 if report.alerts else 0)
    strict = run_monitor(
        ds, as_of, settings, folder / "strict.html", Thresholds(psi=0.0), models=models
    )
    assert strict.exit_code == 1 and any(a.kind == "feature_drift" for a in strict.alerts)
    lenient = Thresholds(psi=100, score_psi=100, auc_drop=1, ece_rise=1, control_alert=False)
    quiet = run_monitor(ds, as_of, settings, folder / "quiet.html", lenient, models=models)
    assert quiet.exit_code == 0 and quiet.alerts == []
    assert "No alert" in quiet.report.read_text()


def test_report_without_decision_log_or_backtest(setup, tmp_path: Path):
    settings, ds, as_of, _, models = setup
    missing = Settings(
        **{**settings.model_dump(), "decision_store_url": f"sqlite:///{tmp_path / 'none.db'}"}
    )
    result = run_monitor(ds, as_of, missing, tmp_path / "r.html", models=models, backtest_count=0)
    page = result.report.read_text()
    assert "no decision log" in page and "no as-of date has a passed horizon" in page
    assert not (tmp_path / "none.db").exists(), "monitoring never creates the decision log"


def test_an_as_of_date_after_the_data_is_refused(setup, tmp_path: Path):
    settings, ds, as_of, _, models = setup
    with pytest.raises(ValueError, match="after the end of the data"):
        run_monitor(ds, as_of + dt.timedelta(days=1), settings, tmp_path / "r.html", models=models)
