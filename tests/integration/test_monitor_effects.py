"""`run_monitor` with outcomes in a real decision store: the effects section and its JSON."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pandas as pd

from models.scoring import load_champions
from monitoring.run import MonitorResult, run_monitor
from serving.decisions import OUTCOME_COLUMNS, DecisionLog


def outcome_rows(
    customers: list[str],
    horizon_end: dt.date,
    seed: int = 5,
    rates: tuple[float, float] = (0.4, 0.1),
) -> pd.DataFrame:
    """A randomized savings offer to ``customers`` (half held out) with outcome ``rates``
    offered and held out (by default an effect of +0.3)."""
    rng = np.random.default_rng(seed)
    n = len(customers)
    offered = rng.uniform(size=n) < 0.5
    outcome = (rng.uniform(size=n) < np.where(offered, *rates)).astype(int)
    return pd.DataFrame(
        {
            "decision_id": [f"d{i}" for i in range(n)],
            "action": "savings",
            "kind": "cross_sell",
            "product": "savings",
            "arm": np.where(offered, "offered", "holdout"),
            "control": rng.uniform(size=n) < 0.2,
            "source": "service",
            "customer_id": customers,
            "decided_at": dt.datetime.combine(horizon_end - dt.timedelta(days=90), dt.time(9)),
            "tier": rng.choice(["major", "ordinary"], n),
            "channel": "phone",
            "probability": rng.uniform(size=n),
            "horizon_end": horizon_end,
            "outcome": outcome,
            "value": 50.0 * outcome,
        },
        columns=[c for c in OUTCOME_COLUMNS if c != "computed_at"],
    )


def monitor_with_outcomes(trained, tmp_path, rates: tuple[float, float]) -> MonitorResult:
    """The report of a decision store holding 400 outcomes of a savings offer with ``rates``
    offered and held out, whose horizon ended the day before the as-of date."""
    settings = trained.settings.model_copy(
        update={"decision_store_url": f"sqlite:///{tmp_path / 'decisions.db'}"}
    )
    ds = trained.dataset()
    as_of = ds.settings.data_end
    customers = [
        r[0]
        for r in ds.con.execute(
            "SELECT customer_id FROM customers ORDER BY customer_id LIMIT 400"
        ).fetchall()
    ]
    log = DecisionLog(settings.decisions_url())
    log.write_outcomes(outcome_rows(customers, as_of - dt.timedelta(days=1), rates=rates))
    log.close()
    return run_monitor(
        ds, as_of, settings, tmp_path / "r.html", models=load_champions(settings), backtest_count=0
    )


def test_report_measures_the_effect_of_offering_from_stored_outcomes(trained, tmp_path):
    # Given a decision store holding 400 outcomes of an offer with an effect of +0.3
    # When the report is made
    result = monitor_with_outcomes(trained, tmp_path, rates=(0.4, 0.1))
    # Then the JSON holds the effect, with an interval that excludes 0
    effects = json.loads(result.figures_file.read_text())["effects"]
    (savings,) = effects["by_action"]
    assert savings["offered_n"] + savings["holdout_n"] == 400
    assert 0 < savings["effect_low"] < 0.3 < savings["effect_high"], savings
    assert savings["effect_note"] == "conclusive"
    assert effects["curves"]["savings"]["probability"]["offered"] == savings["offered_n"]
    # And the page has the section with its Qini and effect-by-tier plots
    page = result.report.read_text()
    section = page[page.index('<section id="effects">') :]
    assert "What the suggestions changed" in section
    images = re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', section)
    assert len(images) == 2, "the Qini curves and the effect by tier"
    assert not [a for a in result.alerts if a.kind == "offer_harms"], "a helping offer is no harm"


def test_an_offer_that_harms_raises_an_alert(trained, tmp_path):
    # Given 400 outcomes of a savings offer that lowers the outcome rate from 40% to 10%
    # When the report is made
    result = monitor_with_outcomes(trained, tmp_path, rates=(0.1, 0.4))
    # Then it alerts on the offer, in the result and the JSON, and the run exits 1
    harms = [a for a in result.alerts if a.kind == "offer_harms"]
    assert [a.subject for a in harms] == ["savings"], result.alerts
    assert harms[0].message.startswith("offering savings harms: its outcome rate is -0.")
    alerts = json.loads(result.figures_file.read_text())["alerts"]
    assert any(a["kind"] == "offer_harms" for a in alerts) and result.exit_code == 1
