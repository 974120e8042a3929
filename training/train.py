"""Train every target the data supports, log the run to MLflow, register challengers.

Per target: a small seeded search (``training.search``) over LightGBM configurations and
the logistic baseline on one out-of-time split, judged on the validation half; the winner
refit on all training rows and calibrated only where that does not worsen ECE. Fitting
(``fit_target``) is pure; ``train_models`` does the MLflow logging and registration.
Training never makes a champion: ``training.registry.promote`` does.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
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
from features.pipeline import build_features
from models.model import Encoding, Predictor
from models.profile import profile_frame
from models.registry import (
    HOLDOUT_DIR,
    LABEL,
    PROFILE_FILE,
    SETTINGS_FILE,
    SPEC_FILE,
    model_name,
)
from serving.policy import Customer, PolicyConfig, action_value, read_policy
from tierwise.settings import Settings
from training import plots
from training.calibration import choose_calibration
from training.evaluate import (
    operating_threshold,
    profit_curve,
    score_metrics,
    slice_metrics,
)
from training.fit import fit_baseline, fit_booster, split_rows
from training.registry import log_target_model, start_tracking
from training.search import Candidate, CandidateFit, best_fit, default_candidates, search_boosters

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
    candidates: list[Candidate] = Field(
        default_factory=default_candidates,
        min_length=1,
        description="LightGBM configurations searched per target, in this order",
    )
    search_rows: int = Field(
        50_000,
        ge=100,
        description="training rows (a seeded subsample) each candidate is searched on; "
        "the winner is then refit on all of them",
    )
    search_seconds: float = Field(
        90.0,
        gt=0,
        description="search time for the whole run, shared evenly by the targets: once a "
        "target's share is spent, its candidates not yet tried are skipped (and logged so)",
    )
    calibration: Literal["auto", "isotonic", "platt"] = "auto"
    calibration_folds: int = Field(
        5, ge=2, description="cross-fitting folds judging calibration on the validation rows"
    )
    seed: int = 0


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


@dataclass(frozen=True)
class TargetTask:
    """What fitting one target needs besides the rows: its label, features and options."""

    label: str  # label column, e.g. churn or cross_sell:Credit Card
    key: str  # target key, e.g. cross_sell_credit_card
    features: list[str]
    categorical: list[str]
    baseline_features: list[str]  # the logistic baseline's (RFM) columns
    horizon_days: int
    threads: int
    config: TrainingConfig
    search_seconds: float  # this target's share of the run's search budget
    policy: PolicyConfig = field(default_factory=PolicyConfig)  # action values and contact cost


@dataclass
class FittedTarget:
    """A target's registered-to-be model with everything the run logs about it."""

    key: str
    predictor: Predictor
    metrics: dict[str, float]  # the shipped model on the test rows, plus search figures
    candidates: list[CandidateFit]  # the baseline first, then each LightGBM candidate
    test: pd.DataFrame  # the test rows (features, tier, ...)
    y_test: np.ndarray
    raw: np.ndarray  # the shipped booster's raw scores on the test rows
    calibrated: np.ndarray
    baseline_scores: np.ndarray
    curve: pd.DataFrame | None = None  # the profit curve at the policy's values


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
    data_settings = ds.settings.model_dump(mode="json")

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
            tic = time.perf_counter()
            fitted = fit_target(frame, task)
            if isinstance(fitted, str):
                log.info("%s: no model (%s)", task.key, fitted)
                results.append(TargetResult(task.key, "skipped", fitted))
                continue
            version = _log_target(fitted, spec.to_dict(), data_settings, work)
            mlflow.log_metric(f"{task.key}.seconds", time.perf_counter() - tic)
            meta = fitted.predictor.meta
            results.append(
                TargetResult(
                    task.key,
                    "trained",
                    version=version,
                    metrics=fitted.metrics,
                    winner=meta["winner"],
                    calibration=meta["calibration"]["method"],
                )
            )
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


def fit_target(frame: pd.DataFrame, task: TargetTask) -> FittedTarget | str:
    """Search, refit, calibrate and evaluate one target; no I/O.

    Candidates are compared on the validation half of the held-out snapshot only; the test
    half gives the figures reported (and, through the logged hold-out, the promotion gate).

    Returns:
        the fitted target, or why it gets no model (too few positives to fit or judge).
    """
    config = task.config
    rows = frame[frame[task.label].notna()].reset_index(drop=True)
    y = rows[task.label].to_numpy(dtype=float)
    if y.sum() < config.min_positives:  # nothing to split (e.g. every customer holds the product)
        return f"{int(y.sum())} positives in {len(y)} rows (< {config.min_positives})"
    split = split_rows(rows.as_of, rows[task.label], task.horizon_days, config.seed)
    floors = (
        ("training", split.train, config.min_positives),
        ("held-out", split.valid | split.test, config.min_holdout_positives),
    )
    for part, mask, floor in floors:
        positives = int(y[mask].sum())
        if positives < floor:
            return f"{positives} positives in the {part} rows (< {floor})"
    encoding = Encoding.fit(rows[split.train], task.features, task.categorical)
    x = encoding.matrix(rows)
    y_valid, y_test = y[split.valid], y[split.test]

    tic = time.perf_counter()
    base_x = rows[task.baseline_features].to_numpy(dtype=float)
    baseline = fit_baseline(
        rows.loc[split.train, task.baseline_features], y[split.train], config.seed
    )
    baseline_valid = baseline.predict_proba(base_x[split.valid])[:, 1]
    baseline_scores = baseline.predict_proba(base_x[split.test])[:, 1]
    base = CandidateFit(
        "logistic_baseline",
        "logistic",
        {"features": len(task.baseline_features)},
        "fitted",
        seconds=time.perf_counter() - tic,
        train_rows=int(split.train.sum()),
        valid=score_metrics(y_valid, baseline_valid),
        test=score_metrics(y_test, baseline_scores),
    )

    tic = time.perf_counter()
    fits = search_boosters(
        x, y, split, encoding, config.candidates, config.search_rows, task.search_seconds,
        config.seed, task.threads,
    )  # fmt: skip
    seconds_search = time.perf_counter() - tic
    winner = best_fit(fits)
    tic = time.perf_counter()
    booster = winner.booster
    if winner.train_rows < split.train.sum():  # searched on a subsample: refit on every row
        params = next(c.params for c in config.candidates if c.name == winner.name)
        booster = fit_booster(
            x[split.train], y[split.train], x[split.valid], y_valid, encoding, params,
            config.seed, task.threads,
        )  # fmt: skip
    seconds_refit = time.perf_counter() - tic

    raw_valid = booster.predict(x[split.valid])
    choice = choose_calibration(
        raw_valid, y_valid, config.calibration, config.calibration_folds, config.seed
    )
    raw = booster.predict(x[split.test])
    calibrated = choice.calibration.apply(raw)
    metrics = score_metrics(y_test, calibrated)
    before = score_metrics(y_test, raw)
    valid = score_metrics(y_valid, raw_valid)
    metrics.update(
        {
            "brier_raw": before["brier"],
            "ece_raw": before["ece"],
            "baseline_roc_auc": base.test["roc_auc"],
            "baseline_pr_auc": base.test["pr_auc"],
            "valid_roc_auc": valid["roc_auc"],
            "baseline_valid_roc_auc": base.valid["roc_auc"],
            "valid_ece_raw": choice.ece_raw,
            "valid_ece_calibrated": choice.ece_calibrated,
            "calibration_kept": float(choice.kept),
            "trees": float(booster.num_trees()),
            "train_rows": float(split.train.sum()),
            "search_rows": float(winner.train_rows),
            "candidates_fitted": float(sum(f.status == "fitted" for f in fits)),
            "candidates_skipped": float(sum(f.status == "skipped" for f in fits)),
            "seconds_search": seconds_search,
            "seconds_refit": seconds_refit,
        }
    )
    meta: dict = {
        "product": task.label.split(":", 1)[1] if ":" in task.label else None,
        "split": split.scheme,
        "winner": winner.name,
        "booster_params": winner.params,
        # A LightGBM model is shipped even when the baseline ranks better on validation:
        # serving needs a booster for TreeSHAP reasons, and the promotion gate keeps such a
        # model from becoming champion.
        "baseline_wins_validation": bool(_beats(base, winner)),
        "calibration": {
            "method": choice.method if choice.kept else "identity",
            "fitted": choice.method,
            "kept": choice.kept,
            "valid_ece_raw": choice.ece_raw,
            "valid_ece_calibrated": choice.ece_calibrated,
        },
    }
    test_rows = rows[split.test].reset_index(drop=True)
    curve = profit_curve(
        y_test, calibrated, action_values(task, test_rows), task.policy.contact_cost
    )
    meta["threshold"], metrics["expected_profit"] = operating_threshold(curve)
    metrics["operating_threshold"] = meta["threshold"]
    meta["metrics"] = metrics
    predictor = Predictor(task.key, booster, encoding, choice.calibration, meta)
    return FittedTarget(
        task.key,
        predictor,
        metrics,
        [base, *fits],
        test_rows,
        y_test,
        raw,
        calibrated,
        baseline_scores,
        curve,
    )


def action_values(task: TargetTask, rows: pd.DataFrame) -> np.ndarray:
    """What a success with each customer is worth under the policy (``policy.action_value``):
    retention saves value x save rate, an upgrade brings the upgrade's value, a sale the
    product's margin."""
    kind = "retention" if task.key == "churn" else "upgrade" if task.key == "upgrade" else None
    product = task.label.split(":", 1)[1] if ":" in task.label else task.key
    values = pd.to_numeric(rows.get("value"), errors="coerce") if "value" in rows else None
    gaps = rows["gap_to_next_tier"] if "gap_to_next_tier" in rows else [None] * len(rows)
    out = np.empty(len(rows))
    for i, gap in enumerate(gaps):
        value = 0.0 if values is None or pd.isna(values.iat[i]) else float(values.iat[i])
        customer = Customer("", None, None, None, value, {}, gap_to_next_tier=gap)
        out[i] = action_value(kind or "cross_sell", product, customer, task.policy)
    return out


def _beats(a: CandidateFit, b: CandidateFit) -> bool:
    """Whether ``a`` ranks above ``b`` on validation ROC AUC."""
    return a.valid.get("roc_auc", -np.inf) > b.valid.get("roc_auc", -np.inf)


def _log_target(fitted: FittedTarget, spec: dict, data_settings: dict, work: Path) -> str:
    """Log one fitted target's figures, tables, plots and hold-out to the active run; register it."""
    key, metrics, predictor = fitted.key, fitted.metrics, fitted.predictor
    mlflow.log_metrics({f"{key}.{m}": v for m, v in metrics.items() if np.isfinite(v)})
    table = pd.DataFrame([_json_row(c.row()) for c in fitted.candidates])
    table["chosen"] = table.candidate == predictor.meta["winner"]
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
    if fitted.curve is not None:  # the business evaluation at the policy's own values
        curve = fitted.curve
        mlflow.log_table(curve.iloc[:: max(len(curve) // 200, 1)], f"profit/{key}.json")
    test, y_test = fitted.test, fitted.y_test
    tiers = slice_metrics(y_test, fitted.calibrated, test["tier"]) if "tier" in test else {}
    mlflow.log_dict(tiers, f"slices/{key}_by_tier.json")
    booster, encoding = predictor.booster, predictor.encoding
    importance = dict(
        zip(encoding.features, booster.feature_importance("gain").tolist(), strict=True)
    )
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
    names = encoding.features
    holdout = test[names].assign(**{LABEL: y_test})
    holdout_path = work / HOLDOUT_DIR / f"{key}.parquet"
    holdout_path.parent.mkdir(parents=True, exist_ok=True)
    holdout.to_parquet(holdout_path, index=False)
    mlflow.log_artifact(str(holdout_path), HOLDOUT_DIR)
    folder = predictor.save(work / key / "model")
    (folder / SPEC_FILE).write_text(json.dumps(spec, indent=1, sort_keys=True))
    (folder / SETTINGS_FILE).write_text(json.dumps(data_settings, indent=1, sort_keys=True))
    version = log_target_model(
        folder,
        key,
        model_name(key),
        test[names].head(5),
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


def _json_row(row: dict) -> dict:
    """NaN (an undefined or skipped figure) as null, so the table reads back as JSON."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
