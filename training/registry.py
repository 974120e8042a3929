"""Writing the MLflow registry: experiment set-up, model logging, aliases and promotion."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

import features.pyfunc_model
from features.registry import (
    CHALLENGER,
    CHAMPION,
    HOLDOUT_DIR,
    LABEL,
    PREFIX,
    client,
    load_version,
    model_name,
    tierwise_models,
    version_by_alias,
)
from features.settings import Settings
from training.evaluate import score_metrics

EXPERIMENT = "tierwise"


def start_tracking(settings: Settings) -> str:
    """Point MLflow at the configured store and return the Tierwise experiment's id.

    With the embedded SQLite store, artifacts go under ``TIERWISE_HOME`` too (not ./mlruns).
    """
    uri = settings.tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        location = None
        if uri.startswith("sqlite:"):
            location = (settings.home / "mlartifacts").resolve().as_uri()
        mlflow.create_experiment(EXPERIMENT, artifact_location=location)
    # log_model files its LoggedModel under the active experiment, not the run's: set both.
    return mlflow.set_experiment(EXPERIMENT).experiment_id


def requirements() -> list[str]:
    """Explicit pip requirements: inferring them costs ~2 s per model (PERF_NOTES)."""
    return [
        f"mlflow=={mlflow.__version__}",
        f"lightgbm=={lgb.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
    ]


def _log_pyfunc(folder: Path, target: str, name: str, signature):
    return mlflow.pyfunc.log_model(
        name=target,
        python_model=features.pyfunc_model.__file__,
        artifacts={"model": str(folder)},
        pip_requirements=requirements(),
        signature=signature,
        registered_model_name=name,
    )


def log_target_model(
    folder: Path, target: str, name: str, example: pd.DataFrame, tags: dict
) -> str:
    """Log a target's folder as a pyfunc model in the active run, register it, tag the version.

    The new version becomes ``challenger``; the first version of a model also becomes
    ``champion``. Returns the version.
    """
    signature = mlflow.models.infer_signature(example, np.zeros(len(example)))
    with warnings.catch_warnings():
        # An input example would make MLflow load and run the model once more per version.
        warnings.filterwarnings("ignore", message="An input example was not provided")
        info = _log_pyfunc(folder, target, name, signature)
    version = str(info.registered_model_version)
    mlflow_client = client(mlflow.get_tracking_uri())
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(name, version, key, str(value))
    mlflow_client.set_registered_model_alias(name, CHALLENGER, version)
    if version_by_alias(mlflow_client, name, CHAMPION) is None:
        mlflow_client.set_registered_model_alias(name, CHAMPION, version)
        mlflow_client.set_model_version_tag(
            name, version, "promotion", "first version: champion by default"
        )
    return version


class Tolerances(BaseModel):
    """How much worse than the champion a challenger may be and still be promoted."""

    roc_auc: float = Field(0.005, ge=0, description="allowed drop in ROC AUC")
    ece: float = Field(0.01, ge=0, description="allowed rise in expected calibration error")


@dataclass
class PromotionDecision:
    name: str
    champion: str | None
    challenger: str | None
    promoted: bool
    reason: str
    champion_roc_auc: float = float("nan")
    challenger_roc_auc: float = float("nan")
    champion_ece: float = float("nan")
    challenger_ece: float = float("nan")


def promote(
    settings: Settings,
    target: str | None = None,
    force: bool = False,
    tolerances: Tolerances | None = None,
) -> list[PromotionDecision]:
    """Compare each model's challenger with its champion on the challenger's held-out rows.

    ``champion`` moves only when the challenger is not worse beyond the tolerances (or
    ``force``). The decision and its figures are tagged on both versions.

    Raises:
        LookupError: ``target`` names no registered model.
    """
    tolerances = tolerances or Tolerances()
    start_tracking(settings)
    uri = settings.tracking_uri()
    mlflow_client = client(uri)
    names = tierwise_models(mlflow_client)
    if target is not None:
        wanted = target if target.startswith(PREFIX) else model_name(target)
        if wanted not in names:
            raise LookupError(
                f"no registered model for target {target!r}; registered: {', '.join(names) or 'none'}"
            )
        names = [wanted]
    return [_decide(mlflow_client, uri, name, force, tolerances) for name in names]


def _decide(mlflow_client, uri: str, name: str, force: bool, tol: Tolerances) -> PromotionDecision:
    champion = version_by_alias(mlflow_client, name, CHAMPION)
    challenger = version_by_alias(mlflow_client, name, CHALLENGER)
    old = None if champion is None else str(champion.version)
    new = None if challenger is None else str(challenger.version)
    if new is None:
        return PromotionDecision(name, old, None, False, "no challenger")
    if old == new:
        return PromotionDecision(name, old, new, False, "challenger is already champion")
    candidate = load_version(uri, name, new)
    holdout = _holdout(candidate.run_id, candidate.predictor.target)
    y = holdout.pop(LABEL).to_numpy()
    figures = score_metrics(y, candidate.predictor.predict_frame(holdout))
    decision = PromotionDecision(name, old, new, True, "no champion yet")
    decision.challenger_roc_auc, decision.challenger_ece = figures["roc_auc"], figures["ece"]
    if old is not None:
        base = score_metrics(y, load_version(uri, name, old).predictor.predict_frame(holdout))
        decision.champion_roc_auc, decision.champion_ece = base["roc_auc"], base["ece"]
        auc_ok = figures["roc_auc"] >= base["roc_auc"] - tol.roc_auc
        ece_ok = figures["ece"] <= base["ece"] + tol.ece
        decision.promoted = force or (auc_ok and ece_ok)
        if auc_ok and ece_ok:
            decision.reason = "not worse beyond tolerances"
        elif force:
            decision.reason = "forced"
        else:
            worse = [m for m, ok in (("ROC AUC dropped", auc_ok), ("ECE rose", ece_ok)) if not ok]
            decision.reason = f"worse than champion beyond tolerance: {', '.join(worse)}"
    record = json.dumps(
        {**asdict(decision), "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    )
    mlflow_client.set_model_version_tag(name, new, "promotion", record)
    if old is not None:
        mlflow_client.set_model_version_tag(name, old, f"challenged_by_v{new}", record)
    if decision.promoted:
        mlflow_client.set_registered_model_alias(name, CHAMPION, new)
    return decision


def _holdout(run_id: str, target: str) -> pd.DataFrame:
    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=f"{HOLDOUT_DIR}/{target}.parquet"
    )
    return pd.read_parquet(path)
