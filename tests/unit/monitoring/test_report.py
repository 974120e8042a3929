"""The HTML report rendered through its template: sections, escaping, images, offline."""

from __future__ import annotations

from monitoring.alerts import Thresholds
from monitoring.report import render_html


def minimal_figures(alerts: list[dict]) -> dict:
    return {
        "as_of": "2026-03-01",
        "generated_at": "2026-03-02T00:00:00+00:00",
        "dataset": "demo <bank>",
        "data_end": "2026-03-01",
        "horizon_days": 90,
        "thresholds": Thresholds().model_dump(),
        "alerts": alerts,
        "models": [],
        "feature_drift": {"features": [], "runs_without_profile": []},
        "score_drift": {"targets": []},
        "realized_performance": {
            "dates": [],
            "rows": [],
            "note": "no as-of date has a passed horizon yet",
        },
        "pyramid": {
            "customers": 0,
            "tiers": [],
            "top_20_percent_value_share": 0.0,
            "previous_as_of": "2026-02-01",
            "migrations": {"matrix": {}, "stayed": 0, "up": 0, "down": 0, "new": 0, "left": 0},
        },
        "feedback": {"note": "no decision log at sqlite:///x.db"},
    }


def test_html_puts_alerts_first_escapes_text_and_embeds_images():
    alerts = [{"message": "feature <spend> drifted"}]
    page = render_html(minimal_figures(alerts), {"pyramid": "iVBORw0KGgo="})
    assert (
        page.index('id="alerts"') < page.index('id="feature-drift"') < page.index('id="feedback"')
    )
    assert "feature &lt;spend&gt; drifted" in page, "messages are escaped"
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in page
    assert "no as-of date has a passed horizon yet" in page
    assert "no decision log" in page


def test_html_says_so_when_no_alert_fired():
    assert "No alert" in render_html(minimal_figures([]), {})


# -- the template ------------------------------------------------------------------------------

SECTIONS = ["alerts", "models", "feature-drift", "score-drift", "realized-performance", "pyramid", "feedback"]  # fmt: skip


def full_figures() -> dict:
    """Figures for every branch of the template: two runs, a backtest and a decision log."""
    figures = minimal_figures([{"message": "churn scores drifted"}])
    counts = {"listed": 2, "shown": 2, "accepted": 1, "declined": 1, "acceptance": 0.5}
    group = {"decisions": 1.0, "shown": 2.0, "conversion": 0.5, "conversion_low": 0.1}
    figures.update(
        models=[
            {
                "target": "churn",
                "name": "tierwise-churn",
                "version": "1",
                "run_id": "r1",
                "trained_as_of": ["2025-01-01", "2025-02-01", "2025-03-01"],
            },
        ],
        feature_drift={
            "features": [
                {
                    "feature": "spend",
                    "kind": "numeric",
                    "psi": 0.3,
                    "run_id": "r1",
                    "targets": "churn",
                },
                {
                    "feature": "age",
                    "kind": "numeric",
                    "psi": None,
                    "run_id": "r2",
                    "targets": "upgrade",
                },
            ],
            "runs_without_profile": ["r3"],
        },
        score_drift={"targets": [{"target": "churn", "psi": 0.25, "mean_now": 0.1}]},
        realized_performance={
            "dates": ["2025-12-01"],
            "rows": [
                {
                    "target": "churn",
                    "as_of": "2025-12-01",
                    "roc_auc": 0.8,
                    "ece": 0.01,
                    "calibration": {"predicted": [0.1], "observed": [0.1]},
                    "lift_by_decile": [2.0],
                },
            ],
        },
        feedback={
            "decisions": 1,
            "suggestions": 2,
            "first_decision": "2026-03-02T10:00:00",
            "last_decision": "2026-03-02T10:00:00",
            "by": {
                "kind": [{"kind": "retention", **counts}],
                "product": [],
                "tier": [{"tier": "major", **counts}],
                "agent_id": [{"agent_id": "ann", **counts}],
            },
            "control": {
                "groups": {"ranked": group, "control": group},
                "difference": {"conversion": {"difference": 0.0, "low": -0.5, "high": 0.5}},
            },
        },
    )
    return figures


def test_template_renders_every_section_in_order_for_every_branch():
    # Given figures with nothing to show, and figures with every part filled
    for figures in (minimal_figures([]), full_figures()):
        # When the report is rendered
        page = render_html(figures, {})
        # Then every section is there once, in the report's order, and the page is whole
        positions = [page.find(f'<section id="{s}">') for s in SECTIONS]
        assert all(p >= 0 for p in positions), dict(zip(SECTIONS, positions, strict=True))
        assert positions == sorted(positions), "alerts first, then the sections in order"
        assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
        assert "<style>" in page and "border-collapse" in page, "the CSS is inline"


def test_template_fills_the_tables_and_the_prose_of_a_full_report():
    page = render_html(full_figures(), {"feedback": "iVBORw0KGgo="})
    assert "2025-01-01 .. 2025-03-01" in page, "training dates shortened to first .. last"
    assert "No feature profile in run(s) r3." in page
    assert "<td>r2</td>" in page, "two training runs: each feature names its run"
    assert "Backtest:" in page and "lift_by_decile" not in page, "curves are plotted, not tabled"
    assert "Ranked suggestions vs the control group" in page
    for title in ("kind", "product (cross-sell)", "tier", "agent"):
        assert f"<h3>By {title}</h3>" in page, title
    assert "1 decisions with 2 suggestions" in page


def test_rendered_report_fetches_nothing_over_the_network():
    images = {k: "iVBORw0KGgo=" for k in ("feature_drift", "score_drift", "pyramid", "feedback")}
    page = render_html(full_figures(), images)
    assert 'src="data:image/png;base64,' in page, "plots are embedded as data URIs"
    for attribute in ("src", "href"):
        for scheme in ("http://", "https://"):
            assert f'{attribute}="{scheme}' not in page, f"{attribute} fetches over {scheme}"
            assert f"{attribute}='{scheme}" not in page, f"{attribute} fetches over {scheme}"
    assert "@import" not in page and "url(http" not in page, "the CSS fetches nothing either"


def test_the_template_ships_with_the_package():
    from importlib import resources

    from monitoring.report import TEMPLATE

    assert resources.files("monitoring").joinpath(TEMPLATE).is_file(), TEMPLATE


# -- what the suggestions changed --------------------------------------------------------------


def effects_figures() -> dict:
    """Outcome figures of a randomized offer, from the section itself, as the JSON holds them."""
    import datetime as dt

    from monitoring.sections import build_effects
    from tests.unit.monitoring.test_effects import randomized_rows

    section = build_effects(randomized_rows(), dt.date(2026, 7, 1), ["ordinary", "vip"])
    return section.figures


def test_effects_section_comes_last_and_says_so_without_outcomes():
    from monitoring.sections import NO_OUTCOMES

    figures = minimal_figures([]) | {"effects": {"note": NO_OUTCOMES}}
    page = render_html(figures, {})
    assert page.index('<section id="feedback">') < page.index('<section id="effects">')
    assert "What the suggestions changed" in page
    assert "no outcomes yet: run `tierwise outcomes`" in page
    assert "Qini curves per action" not in page, "no empty plot"


def test_effects_section_shows_tables_plots_and_notes_with_outcomes():
    page = render_html(
        minimal_figures([]) | {"effects": effects_figures()},
        {"qini": "iVBORw0KGgo=", "effect_by_tier": "iVBORw0KGgo="},
    )
    section = page[page.index('<section id="effects">') :]
    for title in ("action", "action and tier", "action and channel"):
        assert f"<h4>By {title}</h4>" in section, title
    assert "400 outcomes of 400 decisions" in section
    assert section.count('src="data:image/png;base64,') == 2, "Qini and effect-by-tier plots"
    assert "<td>(all)</td>" in section, "the ranking's lift overall, then per action"
    assert "Newcombe" in section and "effect_more_offered" not in section, "notes, not counts"
