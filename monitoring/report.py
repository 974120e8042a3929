"""The HTML report: the figures rendered through ``templates/report.html.j2``.

The template (shipped as package data, CSS included) holds the page and its prose; this
module turns the figures' tables into HTML and passes them with the figures and the plots.
The page is self-contained: plots are data URIs and nothing is fetched, so it opens offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

TEMPLATE = "templates/report.html.j2"

# The feedback section's tables: figures key -> title of the table.
FEEDBACK_TABLES = {
    "kind": "kind",
    "product": "product (cross-sell)",
    "tier": "tier",
    "agent_id": "agent",
}


def render_html(figures: Mapping[str, Any], images: Mapping[str, str]) -> str:
    """The self-contained report: alerts first, then one section per figure group.

    Args:
        figures: the report's figures (what ``run_monitor`` writes as JSON).
        images: section key -> base64 PNG, embedded as data URIs.
    """
    return template().render(figures=figures, images=images, tables=report_tables(figures))


@cache
def template() -> jinja2.Template:
    """The report template, read from the package (``importlib.resources``) once."""
    source = resources.files("monitoring").joinpath(TEMPLATE).read_text(encoding="utf-8")
    environment = jinja2.Environment(
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["thousands"] = lambda n: f"{n:,}"
    environment.filters["percent"] = lambda x: f"{x:.0%}"
    return environment.from_string(source)


def report_tables(figures: Mapping[str, Any]) -> dict[str, Any]:
    """Every table of the report as HTML, keyed by what the template names them."""
    drift = pd.DataFrame(figures["feature_drift"]["features"])
    if not drift.empty and drift["run_id"].nunique() == 1:  # one training run: say it once
        drift = drift.drop(columns=["run_id", "targets"])
    realized = figures["realized_performance"]["rows"]
    pyramid = figures["pyramid"]
    matrix = pd.DataFrame(pyramid["migrations"]["matrix"]).T.rename_axis("from \\ to")
    tables = {
        "models": html_table(_models_frame(figures["models"])),
        "feature_drift": html_table(drift, limit=25),
        "score_drift": html_table(pd.DataFrame(figures["score_drift"]["targets"])),
        "realized": html_table(
            pd.DataFrame(realized).drop(columns=["calibration", "lift_by_decile"])
            if realized
            else pd.DataFrame()
        ),
        "tiers": html_table(pd.DataFrame(pyramid["tiers"])),
        "migrations": html_table(matrix.reset_index()),
    }
    tables |= _feedback_tables(figures["feedback"])
    return tables | _effects_tables(figures.get("effects", {"note": ""}))


def _models_frame(models: list[Mapping[str, Any]]) -> pd.DataFrame:
    """The champions, their training dates shortened to the first and the last."""
    return pd.DataFrame(
        [
            {
                **{k: v for k, v in m.items() if k != "trained_as_of"},
                "trained_as_of": " .. ".join(m["trained_as_of"][:1] + m["trained_as_of"][-1:]),
            }
            for m in models
        ]
    )


def _feedback_tables(feedback: Mapping[str, Any]) -> dict[str, Any]:
    """Ranked against control, and the counts by kind, product, tier and agent."""
    if "note" in feedback:
        return {}
    control = feedback["control"]
    groups = pd.DataFrame(control["groups"]).T.rename_axis("group").reset_index()
    difference = pd.DataFrame(control["difference"]).T.rename_axis("ranked - control")
    return {
        "control_groups": html_table(groups),
        "control_difference": html_table(difference.reset_index()),
        "feedback_by": [
            (title, html_table(pd.DataFrame(feedback["by"][key]), limit=50))
            for key, title in FEEDBACK_TABLES.items()
        ],
    }


def _effects_tables(effects: Mapping[str, Any]) -> dict[str, Any]:
    """Offered against holdout by action, tier and channel; the ranking's lift; Qini figures.

    The ``*_more_*`` counts stay in the JSON file: the notes say the same in words.
    """
    if "note" in effects:
        return {}

    def table(rows: list[Mapping[str, Any]]) -> Markup:
        frame = pd.DataFrame(rows)
        return html_table(frame.drop(columns=[c for c in frame if "_more_" in c]), limit=50)

    ranking = effects["ranking"]
    qini = [
        {
            "action": action,
            "score": score,
            **{k: c[k] for k in ("offered", "holdout", "qini_coefficient")},
        }
        for action, by_score in effects["curves"].items()
        for score, c in by_score.items()
    ]
    return {
        "effects_by": [
            (title, table(effects[key]))
            for key, title in (
                ("by_action", "action"),
                ("by_tier", "action and tier"),
                ("by_channel", "action and channel"),
            )
        ],
        "ranking": table(
            [{"action": "(all)", "kind": "-", **ranking["overall"]}, *ranking["by_action"]]
        ),
        "qini": html_table(pd.DataFrame(qini)),
    }


def html_table(frame: pd.DataFrame, limit: int | None = None) -> Markup:
    """A frame as an HTML table (missing as ``-``), cut at ``limit`` rows with a note."""
    if frame.empty:
        return Markup('<p class="note">nothing to show</p>')
    note = ""
    if limit is not None and len(frame) > limit:
        note = f'<p class="note">{limit} of {len(frame)} rows shown; all are in the JSON file.</p>'
        frame = frame.head(limit)
    table = frame.to_html(index=False, border=0, na_rep="-", float_format=lambda v: f"{v:.4g}")
    return Markup(table + note)  # pandas escapes the cells
