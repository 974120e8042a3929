"""Fitting one target, without I/O: search, evaluation model, calibration, refit on every row.

``fit_target`` takes the labelled feature rows and a ``TargetTask`` and returns the model to
register with the figures that judged it; ``training.train`` logs and registers it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from models.linear import LinearHead
from models.model import Encoding, Predictor, raw_probability
from serving.policy import Customer, PolicyConfig, action_value
from training.calibration import CalibrationChoice, choose_calibration
from training.evaluate import operating_threshold, profit_curve, score_metrics
from training.fit import (
    BoosterParams,
    Split,
    fit_baseline,
    matrix_dataset,
    split_rows,
    train_booster,
)
from training.linear import fit_linear
from training.search import (
    Candidate,
    CandidateFit,
    TargetRows,
    assemble,
    choose,
    default_candidates,
    parts_of,
    search_boosters,
    smaller_class,
)


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
    blend_confidence: float = Field(
        0.95,
        gt=0.5,
        le=1.0,
        description="a single configuration is registered instead of the blend only when "
        "its validation ROC AUC beats the blend's in this share of bootstrap resamples",
    )
    blend_reliable_minority: int = Field(
        5000,
        ge=0,
        description="with more validation rows than this in the smaller class, validation "
        "alone chooses a configuration and no blend is fitted",
    )
    refit_all: bool = Field(
        True,
        description="register the winner refit on every labelled row (the held-out ones "
        "too) rather than the evaluation model fitted on the training rows only",
    )
    calibration: Literal["auto", "isotonic", "platt"] = "auto"
    calibration_folds: int = Field(
        5, ge=2, description="cross-fitting folds judging calibration on the validation rows"
    )
    seed: int = 0


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
    raw: np.ndarray  # the evaluation booster's raw scores on the test rows
    calibrated: np.ndarray  # ...calibrated: the held-out scores the gate judges
    baseline_scores: np.ndarray
    curve: pd.DataFrame | None = None  # the profit curve at the policy's values
    evaluated: lgb.Booster | None = None  # fitted without the held-out rows; gave the figures
    evaluated_linear: LinearHead | None = None  # ...with this logistic member, in a blend


def target_key(label: str) -> str:
    """Label column -> target key: ``cross_sell:Credit Card`` -> ``cross_sell_credit_card``."""
    if label.startswith("cross_sell:"):
        return "cross_sell_" + re.sub(r"[^0-9a-z]+", "_", label.split(":", 1)[1].lower()).strip("_")
    return label


def fit_target(frame: pd.DataFrame, task: TargetTask) -> FittedTarget | str:
    """Search, evaluate, calibrate and refit one target; no I/O.

    Candidates are compared on the validation half of the held-out rows only. The winner,
    fitted on the training rows alone, is the *evaluation model*: its calibration is judged
    on the validation half and its figures on the test half are the ones reported (and, as
    the hold-out's ``HELD_OUT_SCORE``, the promotion gate's). The model registered is the
    winner refit on every labelled row with the evaluation model's tree count and
    calibration (``TrainingConfig.refit_all``): the latest snapshot is the most like the
    customers it will score, and a one-snapshot base would otherwise lose 40% of its rows.

    Returns:
        the fitted target, or why it gets no model (too few positives to fit or judge).
    """
    config = task.config
    rows = frame[frame[task.label].notna()].reset_index(drop=True)
    y = rows[task.label].to_numpy(dtype=float)
    split = _split(rows, y, task)
    if isinstance(split, str):
        return split
    encoding = Encoding.fit(rows[split.train], task.features, task.categorical)
    x = encoding.matrix(rows)
    base, baseline_scores = _baseline(rows, y, split, task)

    data = TargetRows(x, y, split, encoding)
    fits, winner, (boosters, linear), timings = _choose(data, task)
    evaluated, evaluated_linear = assemble(boosters, linear)

    raw_valid = raw_probability(evaluated, evaluated_linear, x[split.valid])
    choice = choose_calibration(
        raw_valid, y[split.valid], config.calibration, config.calibration_folds, config.seed
    )
    raw = raw_probability(evaluated, evaluated_linear, x[split.test])
    calibrated = choice.calibration.apply(raw)
    tic = time.perf_counter()
    shipped, shipped_linear = evaluated, evaluated_linear
    if config.refit_all:
        refits = [
            train_booster(p, data.every, None, config.seed, task.threads, rounds=b.num_trees())
            for p, b in zip(_settings(winner), boosters, strict=True)
        ]
        if linear is not None:
            linear = fit_linear(x, y, encoding, config.search_rows, config.seed)
        shipped, shipped_linear = assemble(refits, linear)
    metrics = _figures(y, split, calibrated, raw, raw_valid, base, choice)
    metrics.update(
        {
            "trees": float(evaluated.num_trees()),
            "train_rows": float(split.train.sum()),
            "search_rows": float(winner.train_rows),
            "shipped_rows": float(len(y) if config.refit_all else split.train.sum()),
            "candidates_fitted": float(sum(f.status == "fitted" for f in fits)),
            "candidates_skipped": float(sum(f.status == "skipped" for f in fits)),
            **timings,
            "seconds_refit_all": time.perf_counter() - tic,
        }
    )
    test_rows = rows[split.test].reset_index(drop=True)
    curve = profit_curve(
        y[split.test], calibrated, action_values(task, test_rows), task.policy.contact_cost
    )
    threshold, metrics["expected_profit"] = operating_threshold(curve)
    metrics["operating_threshold"] = threshold
    meta = _meta(task, split, winner, base, choice, threshold, metrics)
    meta["trained_through"] = pd.Timestamp(rows.as_of.max()).date().isoformat()
    meta["refit_all"] = config.refit_all
    return FittedTarget(
        task.key,
        Predictor(task.key, shipped, encoding, choice.calibration, meta, shipped_linear),
        metrics,
        [base, *fits],
        test_rows,
        y[split.test],
        raw,
        calibrated,
        baseline_scores,
        curve,
        evaluated,
        evaluated_linear,
    )


def _choose(
    data: TargetRows, task: TargetTask
) -> tuple[
    list[CandidateFit], CandidateFit, tuple[list[lgb.Booster], LinearHead | None], dict[str, float]
]:
    """The search's fits, its winner, and the evaluation model's parts (the winner's
    booster, or a blend's boosters and logistic member): the configurations fitted on every
    training row (the search ran on a subsample of at most ``search_rows``; the logistic
    member is fitted on at most that many rows anyway)."""
    config, split = task.config, data.split
    tic = time.perf_counter()
    fits = search_boosters(
        data, config.candidates, config.search_rows, task.search_seconds, config.seed,
        task.threads, blend=smaller_class(data.y[split.valid]) <= config.blend_reliable_minority,
    )  # fmt: skip
    seconds_search = time.perf_counter() - tic
    winner = choose(fits, data.y[split.valid], config.blend_confidence, config.seed)
    tic = time.perf_counter()
    boosters, linear = parts_of(winner.members or [winner])
    if winner.train_rows < split.train.sum():
        boosters = [
            train_booster(p, data.train, data.valid, config.seed, task.threads)
            for p in _settings(winner)
        ]
    timings = {"seconds_search": seconds_search, "seconds_refit": time.perf_counter() - tic}
    return fits, winner, (boosters, linear), timings


def _settings(winner: CandidateFit) -> list[BoosterParams]:
    """The LightGBM settings of the winner, or of each of a blend's booster members."""
    return [BoosterParams(**m.params) for m in winner.members or [winner] if m.kind == "lightgbm"]


def refit_all(
    x: np.ndarray,
    y: np.ndarray,
    encoding: Encoding,
    params: BoosterParams,
    trees: int,
    seed: int,
    threads: int,
) -> lgb.Booster:
    """The chosen configuration fitted on every row for ``trees`` rounds (no early stopping:
    the evaluation model's stopping point, found on rows it did not train on)."""
    return train_booster(params, matrix_dataset(x, y, encoding), None, seed, threads, trees)


def _split(rows: pd.DataFrame, y: np.ndarray, task: TargetTask) -> Split | str:
    """The out-of-time (or customer) split, or why the target has too few positives for one."""
    config = task.config
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
    return split


def _baseline(
    rows: pd.DataFrame, y: np.ndarray, split: Split, task: TargetTask
) -> tuple[CandidateFit, np.ndarray]:
    """The logistic baseline on the training rows, its figures, and its test-row scores."""
    tic = time.perf_counter()
    base_x = rows[task.baseline_features].to_numpy(dtype=float)
    model = fit_baseline(
        rows.loc[split.train, task.baseline_features], y[split.train], task.config.seed
    )
    valid = model.predict_proba(base_x[split.valid])[:, 1]
    test = model.predict_proba(base_x[split.test])[:, 1]
    fit = CandidateFit(
        "logistic_baseline",
        "logistic",
        {"features": len(task.baseline_features)},
        "fitted",
        seconds=time.perf_counter() - tic,
        train_rows=int(split.train.sum()),
        valid=score_metrics(y[split.valid], valid),
        test=score_metrics(y[split.test], test),
    )
    return fit, test


def _figures(
    y: np.ndarray,
    split: Split,
    calibrated: np.ndarray,
    raw: np.ndarray,
    raw_valid: np.ndarray,
    base: CandidateFit,
    choice: CalibrationChoice,
) -> dict[str, float]:
    """The evaluation model's held-out figures beside the baseline's."""
    metrics = score_metrics(y[split.test], calibrated)
    before = score_metrics(y[split.test], raw)
    valid = score_metrics(y[split.valid], raw_valid)
    return metrics | {
        "brier_raw": before["brier"],
        "ece_raw": before["ece"],
        "baseline_roc_auc": base.test["roc_auc"],
        "baseline_pr_auc": base.test["pr_auc"],
        "valid_roc_auc": valid["roc_auc"],
        "baseline_valid_roc_auc": base.valid["roc_auc"],
        "valid_ece_raw": choice.ece_raw,
        "valid_ece_calibrated": choice.ece_calibrated,
        "calibration_kept": float(choice.kept),
    }


def _meta(task, split, winner, base, choice, threshold, metrics) -> dict:
    """What the model file records about how it was chosen and calibrated."""
    return {
        "product": task.label.split(":", 1)[1] if ":" in task.label else None,
        "split": split.scheme,
        "winner": winner.name,
        "booster_params": winner.params,
        "members": [m.name for m in winner.members],
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
        "threshold": threshold,
        "metrics": metrics,
    }


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
