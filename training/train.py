"""Train every target the data supports, log the run to MLflow, register challengers."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import mlflow
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from features.catalogue import feature_spec, features_of
from features.contract import Dataset, fingerprint
from features.labels import build_labels, default_as_of
from features.model import Encoding, Predictor
from features.pipeline import build_features
from features.profile import profile_frame
from features.registry import HOLDOUT_DIR, LABEL, PROFILE_FILE, SPEC_FILE, model_name
from features.settings import Settings
from training import plots
from training.calibration import fit_calibration
from training.evaluate import (
    ProfitConfig,
    operating_threshold,
    profit_curve,
    score_metrics,
    slice_metrics,
)
from training.fit import BoosterParams, fit_baseline, fit_booster, split_rows
from training.registry import log_target_model, start_tracking

log = logging.getLogger(__name__)


class TrainingConfig(BaseModel):
    """How models are trained; the dataset's business settings live in ``DatasetSettings``."""

    snapshots: int = Field(12, ge=1, description="monthly as-of dates when none are given")
    min_positives: int = Field(
        50, ge=1, description="targets with fewer training positives get no model"
    )
    min_holdout_positives: int = Field(
        20, ge=1, description="...or with fewer held-out positives to evaluate on"
    )
    booster: BoosterParams = Field(default_factory=BoosterParams)
    calibration: Literal["auto", "isotonic", "platt"] = "auto"
    profit: ProfitConfig = Field(default_factory=ProfitConfig)
    seed: int = 0


@dataclass
class TargetResult:
    target: str
    status: Literal["trained", "skipped"]
    reason: str = ""
    version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainingResult:
    run_id: str
    as_of: list[dt.date]
    targets: list[TargetResult]


def target_key(label: str) -> str:
    """Label column -> target key: ``cross_sell:Credit Card`` -> ``cross_sell_credit_card``."""
    if label.startswith("cross_sell:"):
        return "cross_sell_" + re.sub(r"[^0-9a-z]+", "_", label.split(":", 1)[1].lower()).strip("_")
    return label


def train_models(
    ds: Dataset,
    settings: Settings,
    as_of: Sequence[dt.date] | None = None,
    config: TrainingConfig | None = None,
) -> TrainingResult:
    """Build features and labels over the as-of dates, fit every supported target, log to MLflow.

    Args:
        ds: a validated dataset (its settings carry horizon and churn definition).
        settings: where MLflow and scratch files live, and the thread budget.
        as_of: snapshot dates; default ``config.snapshots`` monthly dates ending at the
            last date whose horizon lies inside the data.
        config: training settings.
    """
    config = config or TrainingConfig()
    dates = sorted(as_of or default_as_of(ds, config.snapshots))
    started = time.perf_counter()
    spec = feature_spec(ds)
    catalogue = features_of(spec)
    names = [f.name for f in catalogue]
    categorical = [f.name for f in catalogue if f.kind == "categorical"]
    frame = build_features(ds, dates, spec).merge(
        build_labels(ds, dates, products=ds.settings.cross_sell_products),
        on=["customer_id", "as_of"],
        how="inner",
        validate="one_to_one",
    )
    seconds_features = time.perf_counter() - started
    labels = [c for c in frame.columns if c in ("churn", "upgrade") or c.startswith("cross_sell:")]
    log.info(
        "training set: %d rows x %d features over %d as-of dates",
        len(frame),
        len(names),
        len(dates),
    )

    start_tracking(settings)
    with (
        mlflow.start_run(run_name=f"train-{dates[-1].isoformat()}") as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        work = Path(tmp)
        mlflow.log_params(
            {
                "as_of": ",".join(d.isoformat() for d in dates),
                "dataset": ds.source,
                "data_fingerprint": fingerprint(ds),
                "rows": len(frame),
                "features": len(names),
                **{f"data.{k}": v for k, v in ds.settings.model_dump(mode="json").items()},
                **{
                    f"train.{k}": v
                    for k, v in config.model_dump(mode="json").items()
                    if k != "booster"
                },
                **{f"booster.{k}": v for k, v in config.booster.model_dump().items()},
                "threads": settings.threads,
            }
        )
        mlflow.log_dict(spec.to_dict(), SPEC_FILE)
        kinds = {f.name: f.kind for f in catalogue}
        latest = frame[frame.as_of == frame.as_of.max()]
        mlflow.log_dict(profile_frame(latest, kinds), PROFILE_FILE)
        mlflow.log_metric("seconds_features", seconds_features)
        results = []
        for label in labels:
            key = target_key(label)
            tic = time.perf_counter()
            result = _train_target(
                frame, label, key, names, categorical, spec, ds, settings, config, work
            )
            if result.status == "trained":
                mlflow.log_metrics(
                    {f"{key}.{m}": v for m, v in result.metrics.items() if np.isfinite(v)}
                )
                mlflow.log_metric(f"{key}.seconds", time.perf_counter() - tic)
            else:
                log.info("%s: no model (%s)", key, result.reason)
            results.append(result)
        mlflow.log_dict(
            {
                r.target: {"status": r.status, "reason": r.reason, "version": r.version}
                for r in results
            },
            "targets.json",
        )
        mlflow.log_metric("seconds_total", time.perf_counter() - started)
        return TrainingResult(run.info.run_id, dates, results)


def _train_target(
    frame: pd.DataFrame,
    label: str,
    key: str,
    names: list[str],
    categorical: list[str],
    spec,
    ds: Dataset,
    settings: Settings,
    config: TrainingConfig,
    work: Path,
) -> TargetResult:
    rows = frame[frame[label].notna()].reset_index(drop=True)
    y = rows[label].to_numpy(dtype=float)
    if y.sum() < config.min_positives:  # nothing to split (e.g. every customer holds the product)
        return TargetResult(
            key, "skipped", f"{int(y.sum())} positives in {len(y)} rows (< {config.min_positives})"
        )
    split = split_rows(rows.as_of, rows[label], ds.settings.horizon_days, config.seed)
    floors = (
        ("training", split.train, config.min_positives),
        ("held-out", split.valid | split.test, config.min_holdout_positives),
    )
    for part, mask, floor in floors:
        positives = int(y[mask].sum())
        if positives < floor:
            return TargetResult(
                key, "skipped", f"{positives} positives in the {part} rows (< {floor})"
            )
    encoding = Encoding.fit(rows[split.train], names, categorical)
    x = encoding.matrix(rows)
    booster = fit_booster(
        x[split.train],
        y[split.train],
        x[split.valid],
        y[split.valid],
        encoding,
        config.booster,
        config.seed,
        settings.threads,
    )
    calibration = fit_calibration(
        booster.predict(x[split.valid]), y[split.valid], config.calibration
    )
    raw = booster.predict(x[split.test])
    calibrated = calibration.apply(raw)
    y_test = y[split.test]
    metrics = score_metrics(y_test, calibrated)
    before = score_metrics(y_test, raw)
    metrics.update({"brier_raw": before["brier"], "ece_raw": before["ece"]})
    rfm = [f.name for f in features_of(spec) if f.family == "rfm"]
    baseline = fit_baseline(rows.loc[split.train, rfm], y[split.train], config.seed)
    baseline_scores = baseline.predict_proba(rows.loc[split.test, rfm].to_numpy(dtype=float))[:, 1]
    base = score_metrics(y_test, baseline_scores)
    metrics.update({"baseline_roc_auc": base["roc_auc"], "baseline_pr_auc": base["pr_auc"]})
    metrics.update({"trees": float(booster.num_trees()), "train_rows": float(split.train.sum())})
    meta: dict = {
        "product": label.split(":", 1)[1] if ":" in label else None,
        "split": split.scheme,
    }
    if key == "churn":
        curve = profit_curve(y_test, calibrated, config.profit)
        meta["threshold"], metrics["expected_profit"] = operating_threshold(curve)
        metrics["operating_threshold"] = meta["threshold"]
        mlflow.log_table(curve.iloc[:: max(len(curve) // 200, 1)], f"profit/{key}.json")
    test = rows[split.test]
    tiers = slice_metrics(y_test, calibrated, test["tier"]) if "tier" in test else {}
    mlflow.log_dict(tiers, f"slices/{key}_by_tier.json")
    importance = dict(
        zip(encoding.features, booster.feature_importance("gain").tolist(), strict=True)
    )
    for path in plots.plot_target(
        work / "plots", key, y_test, raw, calibrated, importance, baseline_scores
    ):
        mlflow.log_artifact(str(path), "plots")
    holdout = test[names].assign(**{LABEL: y_test})
    holdout_path = work / HOLDOUT_DIR / f"{key}.parquet"
    holdout_path.parent.mkdir(parents=True, exist_ok=True)
    holdout.to_parquet(holdout_path, index=False)
    mlflow.log_artifact(str(holdout_path), HOLDOUT_DIR)
    meta["metrics"] = metrics
    folder = Predictor(key, booster, encoding, calibration, meta).save(work / key / "model")
    (folder / SPEC_FILE).write_text(json.dumps(spec.to_dict(), indent=1, sort_keys=True))
    version = log_target_model(
        folder,
        key,
        model_name(key),
        test[names].head(5),
        {"target": key, "roc_auc": f"{metrics['roc_auc']:.4f}", "ece": f"{metrics['ece']:.4f}"},
    )
    log.info(
        "%s: ROC AUC %.3f (baseline %.3f), version %s",
        key,
        metrics["roc_auc"],
        base["roc_auc"],
        version,
    )
    return TargetResult(key, "trained", version=version, metrics=metrics)
