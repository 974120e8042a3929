"""Uplift models per action, from the holdout experiment: fit, Qini gate, MLflow, champion.

Every decision that ranked an action for the list either offered it or, for the customers in
the action's no-offer holdout (``serving.policy.in_holdout``, a random draw), held it back;
``decision_outcomes`` records what happened over the horizon. Those rows are a randomized
experiment, so a model of the outcome by arm estimates what an offer changes for each
customer: ``UpliftModel.predict`` = P(outcome | offered) - P(outcome | not offered).

Method: the two-model learner (``two_model``, a "T-learner"): one LightGBM classifier on the
offered rows and one on the held-out rows, uplift = the difference. The holdout is small
(5% by default), so the offered arm is about 19 times the held-out one; the transformed
outcome ``z = y * (t / e - (1 - t) / (1 - e))`` (e = the offered share) then gives each
held-out row a weight of -1 / (1 - e) = -20 against 1 / e = 1.05 for an offered row, and a
single regression on z fits mostly that noise. The two-model learner instead fits each arm
on its own scale; its small held-out model is kept simple (few, shallow, regularised trees)
so that its noise stays small. Measured on the synthetic experiment of
``tests/uplift_synthetic.py`` (persuadables, sure things, sleeping dogs, lost causes; 5%
holdout; the latest 30% of decisions held out; 5 seeds each), against the true uplift: Qini
measured with the true uplift 0.030 (two-model) vs 0.020 (transformed outcome) at 5,000
decisions and 0.035 vs 0.031 at 20,000 (a perfect ranking: 0.042), correlation with the true
uplift 0.69 vs 0.40 and 0.81 vs 0.68; the two-model learner won on every seed at 5,000.
The normalised Qini coefficient measured with the outcomes of the few held-out rows (the
gate's figure, ``models.uplift.qini_coefficient``) is too noisy to tell them apart: 0.088 vs
0.087 at 5,000 and 0.155 vs 0.149 at 20,000 (seeds 0 to 4). ``UpliftConfig.method`` keeps
the other for comparison.

Gate: on a time-ordered split (the latest ``validation_share`` of the decisions) the
evaluation model's Qini coefficient must be above 0 with the lower bound of its seeded
bootstrap 95% interval above 0, and the action needs ``min_uplift_decisions`` rows with at
least ``min_holdout_rows`` held out; a model that fails is registered (challenger) but not
promoted, and the reason is tagged and returned. The registered model is refit on every row
with the evaluation model's tree counts, as the target models are.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

import models.uplift_pyfunc
from features.catalogue import features_of
from features.contract import Dataset, fingerprint
from features.pipeline import feature_sql
from features.spec import FeatureSpec, feature_spec, slug
from features.urls import safe_url
from models.integrity import file_digests
from models.model import Encoding
from models.registry import (
    CHALLENGER,
    CHAMPION,
    DIGEST_TAG,
    SETTINGS_FILE,
    SPEC_FILE,
    client,
    uplift_model_name,
    version_by_alias,
)
from models.uplift import Method, UpliftModel, qini_coefficient, qini_interval
from tierwise.settings import Settings
from training.fit import BoosterParams, fit_booster
from training.registry import requirements, start_tracking
from training.target import refit_all

log = logging.getLogger(__name__)

OFFERED, HOLDOUT = "offered", "holdout"
# Columns of the outcome rows the fit reads besides the features.
ROW_KEYS = ["decision_id", "decided_at", "arm", "outcome"]


def default_uplift_params() -> BoosterParams:
    """Small, regularised trees: the held-out arm has a few hundred rows, and a difference
    of two models doubles their noise."""
    return BoosterParams(
        learning_rate=0.05,
        num_leaves=7,
        max_depth=3,
        min_child_samples=40,
        lambda_l2=10.0,
        max_rounds=500,
        early_stopping_rounds=30,
    )


class UpliftConfig(BaseModel):
    """How uplift models are trained and gated."""

    min_uplift_decisions: int = Field(
        1000, ge=1, description="decisions with outcomes (both arms) an action needs"
    )
    min_holdout_rows: int = Field(100, ge=1, description="...of which held out, at least")
    validation_share: float = Field(
        0.3, gt=0, lt=1, description="the latest decisions held out for the gate"
    )
    early_stopping_share: float = Field(
        0.2, gt=0, lt=1, description="training rows of each arm that stop the boosting"
    )
    method: Method = "two_model"
    params: BoosterParams = Field(default_factory=default_uplift_params)
    bootstrap: int = Field(200, ge=10, description="bootstrap replicates of the Qini interval")
    seed: int = 0


@dataclass(frozen=True)
class UpliftTask:
    """What fitting one action's uplift needs besides the rows."""

    action: str
    kind: str
    product: str | None
    features: list[str]
    categorical: list[str]
    threads: int
    config: UpliftConfig


@dataclass
class FittedUplift:
    """An action's model to register, with the held-out figures that judge it."""

    model: UpliftModel
    metrics: dict[str, float]  # qini, qini_low, qini_high, rows, ...
    valid: pd.DataFrame  # the validation rows: decision_id, arm, outcome, uplift (evaluation)

    @property
    def failures(self) -> list[str]:
        """Why the model may not become champion, in words (empty: it passes the gate)."""
        m = self.metrics
        if not math.isfinite(m["qini"]) or not math.isfinite(m["qini_low"]):
            return [
                "the Qini coefficient is undefined on the validation rows"
                " (one arm only, or no outcome)"
            ]
        out = []
        if m["qini"] <= 0:
            out.append(f"Qini {m['qini']:.4f} is not above 0 on the latest decisions")
        if m["qini_low"] <= 0:
            out.append(
                f"the lower bound of its 95% interval ({m['qini_low']:.4f}, {m['qini_high']:.4f})"
                " is not above 0"
            )
        return out


def too_few(rows: pd.DataFrame, config: UpliftConfig) -> str | None:
    """Why an action's outcome rows are too few for an uplift model (None: enough)."""
    held = int((rows["arm"] == HOLDOUT).sum())
    if len(rows) < config.min_uplift_decisions:
        return f"{len(rows)} decisions with outcomes (< {config.min_uplift_decisions})"
    if held < config.min_holdout_rows:
        return f"{held} held-out decisions (< {config.min_holdout_rows})"
    if held == len(rows):
        return "no offered decision"
    return None


def fit_uplift(rows: pd.DataFrame, task: UpliftTask) -> FittedUplift | str:
    """Fit one action's uplift model on its outcome rows and judge it; no I/O.

    Args:
        rows: one row per decision of the action: ``ROW_KEYS`` (arm ``offered`` or
            ``holdout``, outcome 0/1) and the feature columns.
        task: the action, its features and the configuration.

    Returns:
        The fitted model (the refit on every row) with the evaluation model's figures on
        the latest decisions, or why the action gets no model.
    """
    config = task.config
    reason = too_few(rows, config)
    if reason:
        return reason
    rows = rows.sort_values(["decided_at", "decision_id"], kind="stable").reset_index(drop=True)
    valid = np.arange(len(rows)) >= len(rows) - math.ceil(len(rows) * config.validation_share)
    offered = (rows["arm"] == OFFERED).to_numpy()
    y = rows["outcome"].to_numpy(dtype=float)
    encoding = Encoding.fit(rows[~valid], task.features, task.categorical)
    x = encoding.matrix(rows)
    fit = _two_model if config.method == "two_model" else _transformed_outcome
    evaluated, trees = fit(x, y, offered, ~valid, encoding, task)
    uplift = _model(task, evaluated, encoding).predict(x[valid])
    qini = qini_coefficient(y[valid], offered[valid], uplift)
    low, high = qini_interval(y[valid], offered[valid], uplift, config.bootstrap, config.seed)
    shipped = _refit(x, y, offered, trees, encoding, task)
    metrics = {
        "qini": qini,
        "qini_low": low,
        "qini_high": high,
        "rows": float(len(rows)),
        "holdout_rows": float((~offered).sum()),
        "valid_rows": float(valid.sum()),
        "valid_holdout_rows": float((valid & ~offered).sum()),
        "valid_mean_uplift": float(np.mean(uplift)),
        "valid_observed_uplift": _observed(y[valid], offered[valid]),
        **{f"trees_{role}": float(n) for role, n in trees.items()},
    }
    model = _model(task, shipped, encoding)
    model.meta.update(
        {
            "metrics": metrics,
            "trained_through": pd.Timestamp(rows["decided_at"].max()).isoformat(),
            "booster_params": config.params.model_dump(),
        }
    )
    frame = rows.loc[valid, ["decision_id", "arm", "outcome"]].assign(uplift=uplift)
    return FittedUplift(model, metrics, frame.reset_index(drop=True))


def _model(task: UpliftTask, boosters: dict[str, lgb.Booster], encoding: Encoding) -> UpliftModel:
    meta = {"kind": task.kind, "product": task.product, "threads": task.threads}
    return UpliftModel(task.action, task.config.method, boosters, encoding, meta)


def _arms(offered: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """The offered and the held-out rows of ``mask``."""
    return {"offered": mask & offered, "holdout": mask & ~offered}


def _stopping(mask: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A seeded ``share`` of ``mask``'s rows, which stop the boosting instead of fitting."""
    index = np.flatnonzero(mask)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(index, max(1, round(len(index) * share)), replace=False)
    out = np.zeros_like(mask)
    out[chosen] = True
    return out


def _two_model(x, y, offered, train, encoding, task):
    """One classifier per arm on the training rows, each stopped on its own held-back rows."""
    config = task.config
    boosters, trees = {}, {}
    for role, mask in _arms(offered, train).items():
        stop = _stopping(mask, config.early_stopping_share, config.seed)
        fit = mask & ~stop
        boosters[role] = fit_booster(
            x[fit], y[fit], x[stop], y[stop], encoding, config.params, config.seed, task.threads
        )
        trees[role] = boosters[role].num_trees()
    return boosters, trees


def _transformed(y: np.ndarray, offered: np.ndarray) -> np.ndarray:
    """``y * (t / e - (1 - t) / (1 - e))``: its expectation given x is the uplift."""
    e = offered.mean()
    return y * np.where(offered, 1.0 / e, -1.0 / (1.0 - e))


def _regression(config: UpliftConfig, threads: int) -> dict:
    return {**config.params.lightgbm(config.seed, threads), "objective": "regression"}


def _transformed_outcome(x, y, offered, train, encoding, task):
    """One regression on the transformed outcome, stopped on a seeded share of the rows."""
    config = task.config
    stop = _stopping(train, config.early_stopping_share, config.seed)
    fit = train & ~stop
    z = _transformed(y, offered)
    names, categorical = encoding.features, encoding.categorical_indices
    data = lgb.Dataset(x[fit], z[fit], feature_name=names, categorical_feature=categorical)
    booster = lgb.train(
        _regression(config, task.threads),
        data,
        num_boost_round=config.params.max_rounds,
        valid_sets=[lgb.Dataset(x[stop], z[stop], reference=data)],
        callbacks=[lgb.early_stopping(config.params.early_stopping_rounds, verbose=False)],
    )
    return {"uplift": booster}, {"uplift": booster.num_trees()}


def _refit(x, y, offered, trees, encoding, task) -> dict[str, lgb.Booster]:
    """The evaluation model's boosters refit on every row for their tree counts (no early
    stopping: the stopping points were found on rows they did not fit)."""
    config = task.config
    seed, threads = config.seed, task.threads
    if config.method == "two_model":
        return {
            role: refit_all(x[mask], y[mask], encoding, config.params, trees[role], seed, threads)
            for role, mask in _arms(offered, np.ones(len(y), dtype=bool)).items()
        }
    data = lgb.Dataset(
        x,
        _transformed(y, offered),
        feature_name=encoding.features,
        categorical_feature=encoding.categorical_indices,
    )
    rounds = max(trees["uplift"], 1)
    return {"uplift": lgb.train(_regression(config, threads), data, num_boost_round=rounds)}


def _observed(y: np.ndarray, offered: np.ndarray) -> float:
    """The outcome rate offered minus held out (NaN without both arms)."""
    if offered.all() or not offered.any():
        return float("nan")
    return float(y[offered].mean() - y[~offered].mean())


# -- the run: outcome rows -> features -> fit -> MLflow -> gate --------------------------------


@dataclass
class UpliftResult:
    """One action's outcome of a run: skipped (why), or registered and promoted or not."""

    action: str
    status: Literal["trained", "skipped"]
    reason: str = ""
    version: str | None = None
    promoted: bool = False
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """One sentence for people, with the figures that decided."""
        if self.status == "skipped":
            return f"uplift {self.action}: no model ({self.reason})"
        m = self.metrics
        figures = (
            f"Qini {m['qini']:.4f} (95% {m['qini_low']:.4f} .. {m['qini_high']:.4f}) on the"
            f" {int(m['valid_rows'])} latest decisions ({int(m['valid_holdout_rows'])} held out)"
        )
        if self.promoted:
            return f"uplift {self.action} v{self.version} is now champion: {figures}"
        return f"uplift {self.action} v{self.version} stays unpromoted: {self.reason}; {figures}"


@dataclass
class UpliftRun:
    run_id: str
    as_of: dt.date
    actions: list[UpliftResult]
    rows_without_features: int  # outcome rows whose customer had no features (e.g. closed)


def usable_outcomes(outcomes: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The randomized rows known by ``as_of``: arm offered or holdout, an outcome, and a
    horizon that ended on or before ``as_of``."""
    known = (
        outcomes["arm"].isin([OFFERED, HOLDOUT])
        & outcomes["outcome"].notna()
        & (pd.to_datetime(outcomes["horizon_end"]) <= pd.Timestamp(as_of))
        & (pd.to_datetime(outcomes["decided_at"]) < pd.Timestamp(as_of))
    )
    return outcomes[known].reset_index(drop=True)


def feature_day(decided_at: pd.Series) -> pd.Series:
    """The as-of date of a decision's features: the day before the decision's day.

    For a batch decision (decided when its as-of day ends, ``batch.run.decision_time``) that
    is the batch's as-of date; for the service it is the latest full day, at or after the
    online store's date. Rows of the decision's own day are left out: some may follow the
    offer, and a feature must not see the treatment.
    """
    return (pd.to_datetime(decided_at).dt.normalize() - pd.Timedelta(days=1)).dt.date


def decision_rows(ds: Dataset, outcomes: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Each outcome row joined to its customer's features as of ``feature_day``.

    One query over a spine of the distinct (customer_id, feature day) pairs: the same SQL as
    ``features.pipeline.build_features`` (tiers ranked among the whole population of each
    date), without computing every customer at every decision day. Rows whose customer has
    no features that day are dropped.
    """
    pairs = pd.DataFrame(  # noqa: F841 (read by the SQL below)
        {
            "customer_id": outcomes["customer_id"].astype(str),
            "as_of": feature_day(outcomes["decided_at"]),
        }
    ).drop_duplicates()
    # ``pairs`` is read by DuckDB's scan of the local frame (a register() would refuse while
    # the connection holds an unfinished result).
    ds.con.execute(
        "CREATE OR REPLACE TEMP TABLE uplift_spine AS SELECT DISTINCT"
        " CAST(customer_id AS VARCHAR) AS customer_id, CAST(as_of AS DATE) AS as_of FROM pairs"
    )
    features = ds.con.execute(feature_sql(ds, spec, "uplift_spine")).df()
    features["as_of"] = pd.to_datetime(features["as_of"]).dt.date
    keyed = outcomes.assign(
        customer_id=outcomes["customer_id"].astype(str), as_of=feature_day(outcomes["decided_at"])
    )
    clash = [
        c for c in keyed.columns if c in features.columns and c not in ("customer_id", "as_of")
    ]
    return keyed.drop(columns=clash).merge(features, on=["customer_id", "as_of"], how="inner")


def train_uplift(
    ds: Dataset,
    outcomes: pd.DataFrame,
    settings: Settings,
    as_of: dt.date,
    config: UpliftConfig | None = None,
) -> UpliftRun:
    """Fit, register and gate an uplift model for every action with enough outcome rows.

    Args:
        ds: a validated dataset covering the decisions (features are computed from it).
        outcomes: ``serving.decisions.read_outcomes``'s rows (read by the caller: training
            does not import the decision log).
        settings: where MLflow lives, and the thread budget.
        as_of: only decisions whose horizon ended by this date count.
        config: minimums, split, method and seed.

    Every trained action is registered as ``tierwise-uplift-<action>`` (challenger); it
    becomes champion only when it passes the Qini gate (``FittedUplift.failures``).
    """
    config = config or UpliftConfig()
    rows = usable_outcomes(outcomes, as_of)
    spec = feature_spec(ds)
    catalogue = features_of(spec)
    names = [f.name for f in catalogue]
    categorical = [f.name for f in catalogue if f.kind == "categorical"]
    frame = decision_rows(ds, rows, spec) if len(rows) else rows
    data_settings = ds.settings.model_dump(mode="json")
    start_tracking(settings)
    with (
        mlflow.start_run(run_name=f"train-uplift-{as_of.isoformat()}") as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        mlflow.log_params(
            {
                "as_of": as_of.isoformat(),
                "dataset": safe_url(ds.source),
                "data_fingerprint": fingerprint(ds),
                "outcome_rows": len(rows),
                "rows_with_features": len(frame),
                **{
                    f"uplift.{k}": v
                    for k, v in config.model_dump(mode="json").items()
                    if k != "params"
                },
                **{f"uplift.params.{k}": v for k, v in config.params.model_dump().items()},
            }
        )
        results = []
        for action in sorted(frame["action"].unique()) if len(frame) else []:
            part = frame[frame["action"] == action]
            product = part["product"].dropna()
            task = UpliftTask(
                action,
                str(part["kind"].iloc[0]),
                str(product.iloc[0]) if len(product) else None,
                names,
                categorical,
                settings.threads,
                config,
            )
            work = Path(tmp) / slug(action)
            results.append(_train_action(part, task, spec.to_dict(), data_settings, work))
        mlflow.log_dict({r.action: _summary(r) for r in results}, "uplift.json")
        return UpliftRun(run.info.run_id, as_of, results, len(rows) - len(frame))


def _train_action(
    rows: pd.DataFrame, task: UpliftTask, spec: dict, data_settings: dict, work: Path
) -> UpliftResult:
    """Fit one action; if it gets a model, log and register it, then gate it."""
    fitted = fit_uplift(rows, task)
    if isinstance(fitted, str):
        log.info("uplift %s: no model (%s)", task.action, fitted)
        return UpliftResult(task.action, "skipped", fitted)
    key = slug(task.action)
    mlflow.log_metrics(
        {f"uplift.{key}.{m}": v for m, v in fitted.metrics.items() if math.isfinite(v)}
    )
    valid = work / "validation.parquet"
    work.mkdir(parents=True, exist_ok=True)
    fitted.valid.to_parquet(valid, index=False)
    mlflow.log_artifact(str(valid), f"uplift/{key}")
    folder = fitted.model.save(work / "model")
    (folder / SPEC_FILE).write_text(json.dumps(spec, indent=1, sort_keys=True))
    (folder / SETTINGS_FILE).write_text(json.dumps(data_settings, indent=1, sort_keys=True))
    name = uplift_model_name(task.action)
    example = rows[task.features].head(5)
    version = _register(folder, key, name, example, task, fitted.metrics)
    failures = fitted.failures
    result = UpliftResult(
        task.action,
        "trained",
        "; ".join(failures) or "Qini and its 95% lower bound above 0",
        version,
        not failures,
        fitted.metrics,
    )
    _record_gate(name, result)
    log.info("%s", result.message)
    return result


def _register(
    folder: Path, key: str, name: str, example: pd.DataFrame, task: UpliftTask, metrics: dict
) -> str:
    """Log the folder as a pyfunc (``models.uplift_pyfunc``) in the active run, register it
    with its files' sha256 (``DIGEST_TAG``, before any other tag) and make it challenger."""
    digests = json.dumps(file_digests(folder), sort_keys=True)
    signature = mlflow.models.infer_signature(example, np.zeros(len(example)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*An input example was not provided")
        info = mlflow.pyfunc.log_model(
            name=f"uplift-{key}",
            python_model=models.uplift_pyfunc.__file__,
            artifacts={"model": str(folder)},
            pip_requirements=requirements(),
            signature=signature,
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    mlflow_client = client(mlflow.get_tracking_uri())
    mlflow_client.set_model_version_tag(name, version, DIGEST_TAG, digests)
    tags = {
        "action": task.action,
        "kind": task.kind,
        "method": task.config.method,
        **{m: f"{metrics[m]:.5f}" for m in ("qini", "qini_low", "qini_high")},
    }
    for tag, value in tags.items():
        mlflow_client.set_model_version_tag(name, version, tag, value)
    mlflow_client.set_registered_model_alias(name, CHALLENGER, version)
    return version


def _record_gate(name: str, result: UpliftResult) -> None:
    """Tag the gate's decision on the version; move ``champion`` to it if it passed."""
    mlflow_client = client(mlflow.get_tracking_uri())
    before = version_by_alias(mlflow_client, name, CHAMPION)
    record = {
        **_summary(result),
        "champion_before": None if before is None else str(before.version),
        "message": result.message,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    mlflow_client.set_model_version_tag(name, result.version, "promotion", json.dumps(record))
    if result.promoted:
        mlflow_client.set_registered_model_alias(name, CHAMPION, result.version)


def _summary(result: UpliftResult) -> dict:
    """The result as JSON-able data (NaN as null)."""
    return {
        "status": result.status,
        "reason": result.reason,
        "version": result.version,
        "promoted": result.promoted,
        "metrics": {k: v if math.isfinite(v) else None for k, v in result.metrics.items()},
    }
