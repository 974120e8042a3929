"""Train every target the data supports, log the run to MLflow, register challengers.

Per target, ``training.target.fit_target`` (pure) searches LightGBM configurations beside
the logistic baseline on one out-of-time split, judges them on the validation half,
calibrates where that does not worsen ECE, and refits the winner on every row;
``train_models`` builds the rows and does the MLflow logging and registration. Training
never makes a champion: ``training.registry.promote`` does.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import mlflow
import numpy as np
import pandas as pd

from features.catalogue import features_of
from features.contract import Dataset, fingerprint
from features.labels import build_labels, default_as_of
from features.pipeline import build_features
from features.spec import feature_spec
from features.urls import safe_url
from models.profile import profile_frame
from models.registry import (
    AS_OF,
    HELD_OUT_SCORE,
    HOLDOUT_DIR,
    LABEL,
    PROFILE_FILE,
    SETTINGS_FILE,
    SPEC_FILE,
    model_name,
)
from serving.policy import read_policy
from tierwise.settings import Settings
from training import plots
from training.evaluate import slice_metrics
from training.registry import log_target_model, start_tracking
from training.target import FittedTarget, TargetTask, TrainingConfig, fit_target, target_key

log = logging.getLogger(__name__)


@dataclass
class TargetResult:
    target: str
    status: Literal["trained", "skipped"]
    reason: str = ""
    version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    winner: str = ""  # the candidate registered
    calibration: str = ""  # isotonic, platt, or identity when calibrating worsened ECE


@dataclass
class TrainingResult:
    run_id: str
    as_of: list[dt.date]
    targets: list[TargetResult]


def train_models(
    ds: Dataset,
    settings: Settings,
    as_of: Sequence[dt.date] | None = None,
    config: TrainingConfig | None = None,
) -> TrainingResult:
    """Build features and labels over the as-of dates, fit every supported target, log to MLflow.

    Each trained target is registered as its model's ``challenger``; promotion is separate.

    Args:
        ds: a validated dataset (its settings carry horizon and churn definition).
        settings: where MLflow and scratch files live, and the thread budget.
        as_of: snapshot dates; default ``config.snapshots`` monthly dates ending at the
            last date whose horizon lies inside the data.
        config: training settings.
    """
    config = config or TrainingConfig()
    policy = read_policy(settings.policy_file)  # its action values price every profit curve
    dates = sorted(as_of or default_as_of(ds, config.snapshots))
    started = time.perf_counter()
    spec = feature_spec(ds)
    catalogue = features_of(spec)
    names = [f.name for f in catalogue]
    categorical = [f.name for f in catalogue if f.kind == "categorical"]
    rfm = [f.name for f in catalogue if f.family == "rfm"]
    frame = _training_rows(ds, dates, spec)
    seconds_features = time.perf_counter() - started
    labels = [c for c in frame.columns if c in ("churn", "upgrade") or c.startswith("cross_sell:")]
    data_settings = ds.settings.model_dump(mode="json")

    start_tracking(settings)
    with (
        mlflow.start_run(run_name=f"train-{dates[-1].isoformat()}") as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        _log_inputs(ds, settings, config, dates, frame, spec, catalogue)
        mlflow.log_metric("seconds_features", seconds_features)
        results = []
        for label in labels:
            task = TargetTask(
                label,
                target_key(label),
                names,
                categorical,
                rfm,
                ds.settings.horizon_days,
                settings.threads,
                config,
                # A run budget, not one per target: more products must not mean a longer run.
                config.search_seconds / len(labels),
                policy,
            )
            results.append(_train_one(frame, task, spec.to_dict(), data_settings, Path(tmp)))
        mlflow.log_dict(
            {
                r.target: {
                    "status": r.status,
                    "reason": r.reason,
                    "version": r.version,
                    "winner": r.winner,
                    "calibration": r.calibration,
                }
                for r in results
            },
            "targets.json",
        )
        mlflow.log_metric("seconds_total", time.perf_counter() - started)
        return TrainingResult(run.info.run_id, dates, results)


def _training_rows(ds: Dataset, dates: list[dt.date], spec) -> pd.DataFrame:
    """Features and labels of every customer at every as-of date, one row each."""
    frame = build_features(ds, dates, spec).merge(
        build_labels(ds, dates, products=ds.settings.cross_sell_products),
        on=["customer_id", "as_of"],
        how="inner",
        validate="one_to_one",
    )
    log.info(
        "training set: %d rows x %d columns over %d as-of dates",
        len(frame),
        frame.shape[1],
        len(dates),
    )
    return frame


def _log_inputs(ds, settings, config, dates, frame, spec, catalogue) -> None:
    """The run's parameters, and the artifacts serving and monitoring read back: the feature
    spec, the dataset settings and the latest snapshot's feature profile."""
    data_settings = ds.settings.model_dump(mode="json")
    mlflow.log_params(
        {
            "as_of": ",".join(d.isoformat() for d in dates),
            "dataset": safe_url(ds.source),
            "data_fingerprint": fingerprint(ds),
            "rows": len(frame),
            "features": len(catalogue),
            **{f"data.{k}": v for k, v in data_settings.items()},
            **{
                f"train.{k}": v
                for k, v in config.model_dump(mode="json").items()
                if k != "candidates"
            },
            "train.candidates": ",".join(c.name for c in config.candidates),
            "threads": settings.threads,
        }
    )
    mlflow.log_dict(spec.to_dict(), SPEC_FILE)
    mlflow.log_dict(data_settings, SETTINGS_FILE)
    kinds = {f.name: f.kind for f in catalogue}
    latest = frame[frame.as_of == frame.as_of.max()]
    mlflow.log_dict(profile_frame(latest, kinds), PROFILE_FILE)


def _train_one(
    frame: pd.DataFrame, task: TargetTask, spec: dict, data_settings: dict, work: Path
) -> TargetResult:
    """Fit one target and, if it gets a model, log and register it."""
    tic = time.perf_counter()
    fitted = fit_target(frame, task)
    if isinstance(fitted, str):
        log.info("%s: no model (%s)", task.key, fitted)
        return TargetResult(task.key, "skipped", fitted)
    version = _log_target(fitted, spec, data_settings, work)
    mlflow.log_metric(f"{task.key}.seconds", time.perf_counter() - tic)
    meta = fitted.predictor.meta
    return TargetResult(
        task.key,
        "trained",
        version=version,
        metrics=fitted.metrics,
        winner=meta["winner"],
        calibration=meta["calibration"]["method"],
    )


def _log_target(fitted: FittedTarget, spec: dict, data_settings: dict, work: Path) -> str:
    """Log one fitted target's figures, tables, plots and hold-out to the active run; register it."""
    key, metrics, predictor = fitted.key, fitted.metrics, fitted.predictor
    mlflow.log_metrics({f"{key}.{m}": v for m, v in metrics.items() if np.isfinite(v)})
    _log_candidates(fitted)
    if fitted.curve is not None:  # the business evaluation at the policy's own values
        curve = fitted.curve
        mlflow.log_table(curve.iloc[:: max(len(curve) // 200, 1)], f"profit/{key}.json")
    _log_evaluation(fitted, work)
    names = predictor.encoding.features
    folder = predictor.save(work / key / "model")
    (folder / SPEC_FILE).write_text(json.dumps(spec, indent=1, sort_keys=True))
    (folder / SETTINGS_FILE).write_text(json.dumps(data_settings, indent=1, sort_keys=True))
    version = log_target_model(
        folder,
        key,
        model_name(key),
        fitted.test[names].head(5),
        {
            "target": key,
            "roc_auc": f"{metrics['roc_auc']:.4f}",
            "baseline_roc_auc": f"{metrics['baseline_roc_auc']:.4f}",
            "ece": f"{metrics['ece']:.4f}",
            "winner": predictor.meta["winner"],
            "calibration": predictor.meta["calibration"]["method"],
        },
    )
    log.info(
        "%s: ROC AUC %.3f (baseline %.3f), %s, calibration %s, version %s",
        key,
        metrics["roc_auc"],
        metrics["baseline_roc_auc"],
        predictor.meta["winner"],
        predictor.meta["calibration"]["method"],
        version,
    )
    return version


def _log_candidates(fitted: FittedTarget) -> None:
    """Every candidate's figures, as a table and as metrics."""
    key = fitted.key
    table = pd.DataFrame([_json_row(c.row()) for c in fitted.candidates])
    table["chosen"] = table.candidate == fitted.predictor.meta["winner"]
    mlflow.log_table(table, f"candidates/{key}.json")
    mlflow.log_metrics(
        {
            f"{key}.candidates.{c.name}.{part}_{m}": v
            for c in fitted.candidates
            for part, figures in (("valid", c.valid), ("test", c.test))
            for m, v in figures.items()
            if m in ("roc_auc", "pr_auc", "ece", "log_loss") and np.isfinite(v)
        }
        | {f"{key}.candidates.{c.name}.seconds": c.seconds for c in fitted.candidates}
    )


def _log_evaluation(fitted: FittedTarget, work: Path) -> None:
    """Slices by tier, plots, and the hold-out the gate and monitoring read back (with the
    evaluation model's scores, since the registered model was refit on these rows too)."""
    key, test, y_test = fitted.key, fitted.test, fitted.y_test
    tiers = slice_metrics(y_test, fitted.calibrated, test["tier"]) if "tier" in test else {}
    mlflow.log_dict(tiers, f"slices/{key}_by_tier.json")
    booster, names = fitted.predictor.booster, fitted.predictor.encoding.features
    importance = dict(zip(names, booster.feature_importance("gain").tolist(), strict=True))
    for path in plots.plot_target(
        work / "plots",
        key,
        y_test,
        fitted.raw,
        fitted.calibrated,
        importance,
        fitted.baseline_scores,
    ):
        mlflow.log_artifact(str(path), "plots")
    holdout = test[names].assign(
        **{LABEL: y_test, AS_OF: pd.to_datetime(test.as_of), HELD_OUT_SCORE: fitted.calibrated}
    )
    path = work / HOLDOUT_DIR / f"{key}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    holdout.to_parquet(path, index=False)
    mlflow.log_artifact(str(path), HOLDOUT_DIR)


def _json_row(row: dict) -> dict:
    """NaN (an undefined or skipped figure) as null, so the table reads back as JSON."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
