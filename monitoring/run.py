"""The monitoring run: every figure of the report as of a date, written as HTML and JSON.

``run_monitor`` compares the champion models' world at training time with the data as of a
date and writes a self-contained HTML report (plots embedded as PNG, opens offline) with a
JSON file of the same figures beside it. Thresholds turn figures into alerts, listed at the
top; a scheduler pages someone when ``MonitorResult.exit_code`` is not 0.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.contract import Dataset
from features.spine import as_of_dates
from features.tiers import assign_tiers, tier_names
from features.urls import safe_url
from features.values import as_number, months_back
from models.scoring import ModelSet, load_champions
from monitoring.alerts import Alert, Thresholds, find_alerts
from monitoring.readers import TrainingReference, training_reference
from monitoring.report import render_html
from monitoring.sections import (
    Section,
    backtest_dates,
    build_effects,
    build_feature_drift,
    build_feedback,
    build_pyramid,
    build_realized_performance,
    build_score_drift,
    score_dates,
)
from serving.decisions import DecisionRecord, read_decision_log, read_outcomes
from tierwise.settings import Settings

REALIZED_COLUMNS = [
    "target",
    "as_of",
    "roc_auc",
    "ece",
    "positives",
    "training_roc_auc",
    "training_ece",
]


@dataclass
class MonitorResult:
    """Where the report went, the alerts that fired and every figure of the report."""

    as_of: dt.date
    report: Path
    figures_file: Path
    alerts: list[Alert]
    figures: dict[str, Any] = field(repr=False)

    @property
    def exit_code(self) -> int:
        """1 when any alert fired (a scheduler pages someone), else 0."""
        return 1 if self.alerts else 0


def run_monitor(
    ds: Dataset,
    as_of: dt.date | str,
    settings: Settings,
    out: Path,
    thresholds: Thresholds | None = None,
    *,
    models: ModelSet | None = None,
    top_features: int = 6,
    backtest_count: int = 3,
) -> MonitorResult:
    """Compute every figure of the report as of a date, write the HTML and the JSON beside it.

    Args:
        ds: a validated dataset.
        as_of: the date to monitor (date or ISO string), at most the data's ``data_end``.
        settings: where MLflow and the decision log are.
        out: the HTML file; the JSON goes to the same path with suffix ``.json``.
        thresholds: alert thresholds (defaults of ``Thresholds``).
        models: the champions; loaded from the registry by default.
        top_features: how many of the worst-drifting features get a plot.
        backtest_count: how many monthly as-of dates with a passed horizon to backtest.

    Returns:
        The result with the alerts; ``exit_code`` is 1 when any fired.

    Raises:
        ValueError: ``as_of`` is not an ISO date or lies after ``data_end``.
        LookupError: no champion is registered.
    """
    thresholds = thresholds or Thresholds()
    day = as_of_dates([as_of])[0]
    if day > ds.settings.data_end:
        raise ValueError(
            f"as-of date {day} is after the end of the data ({ds.settings.data_end}): "
            "features would see no activity and everything would look like drift"
        )
    models = models or load_champions(settings)
    reference = training_reference(settings.tracking_uri(), models)
    sections = _build_sections(ds, day, settings, reference, models, top_features, backtest_count)
    alerts = _find_section_alerts(thresholds, sections)
    figures = {
        "as_of": day.isoformat(),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "dataset": safe_url(ds.source),
        "data_end": ds.settings.data_end.isoformat(),
        "horizon_days": ds.settings.horizon_days,
        "thresholds": thresholds.model_dump(),
        "alerts": [asdict(a) for a in alerts],
        "models": _model_figures(reference),
        **{name: section.figures for name, section in sections.items()},
    }
    images = {key: png for section in sections.values() for key, png in section.images.items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figures_file = out.with_suffix(".json")
    figures_file.write_text(json.dumps(_plain(figures), indent=1, allow_nan=False) + "\n")
    out.write_text(render_html(figures, images))
    return MonitorResult(day, out, figures_file, alerts, figures)


def _build_sections(
    ds: Dataset,
    day: dt.date,
    settings: Settings,
    reference: TrainingReference,
    models: ModelSet,
    top_features: int,
    backtest_count: int,
) -> dict[str, Section]:
    """The six figure sections of the report, keyed as in the JSON file."""
    backtest = backtest_dates(ds, day, backtest_count)
    scored = score_dates(ds, sorted({day, *backtest}), models)
    sections = {
        "feature_drift": build_feature_drift(reference, scored, day, top_features),
        "score_drift": build_score_drift(ds, reference, scored, day),
        "realized_performance": build_realized_performance(ds, reference, scored, backtest),
    }
    order = tier_names(ds)
    decision_log = read_decision_log(settings.decisions_url(), day)
    previous = months_back(day, 1)
    tiers = _tiers(ds, day, previous, decision_log[0] if decision_log else [])
    sections["pyramid"] = build_pyramid(tiers, day, previous, order)
    sections["feedback"] = build_feedback(decision_log, tiers, order, day, settings.decisions_url())
    sections["effects"] = build_effects(read_outcomes(settings.decisions_url()), day, order)
    return sections


def _tiers(
    ds: Dataset, day: dt.date, previous: dt.date, decisions: list[DecisionRecord]
) -> pd.DataFrame:
    """Tiers at ``day``, a month before and every store date a decision was made on."""
    decision_dates = {d.as_of for d in decisions if d.as_of is not None}
    tiers = assign_tiers(ds, sorted({day, previous, *decision_dates}))
    tiers["as_of"] = pd.to_datetime(tiers["as_of"]).dt.date
    return tiers


def _find_section_alerts(thresholds: Thresholds, sections: Mapping[str, Section]) -> list[Alert]:
    """The alerts the sections' figures raise (``monitoring.alerts.RULES``)."""
    return find_alerts(
        thresholds,
        features=pd.DataFrame(
            sections["feature_drift"].figures["features"], columns=["feature", "psi"]
        ),
        scores=pd.DataFrame(sections["score_drift"].figures["targets"], columns=["target", "psi"]),
        realized=pd.DataFrame(
            sections["realized_performance"].figures["rows"], columns=REALIZED_COLUMNS
        ),
        control=sections["feedback"].figures.get("control"),
        effects=sections["effects"].figures.get("by_action"),
    )


def _model_figures(reference: TrainingReference) -> list[dict[str, Any]]:
    """The champions: target, registered name and version, run and training dates."""
    return [
        {
            "target": t,
            "name": r.name,
            "version": r.version,
            "run_id": r.run_id,
            "trained_as_of": [d.isoformat() for d in r.training_dates],
        }
        for t, r in sorted(reference.targets.items())
    ]


def _plain(value: Any) -> Any:
    """JSON-ready: NaN and infinities as null, numpy and dates as plain values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return as_number(value)
    if isinstance(value, dt.date | dt.datetime | pd.Timestamp):
        return value.isoformat()
    return value
