"""Monitoring readers: what the champions' MLflow runs hold.

The only monitoring code that reads MLflow (the dataset is read by ``monitoring.sections``
through ``features``; the decision log through ``serving.decisions.read_decision_log``, its
one reader). Nothing reads ``training``: what monitoring knows of models comes from MLflow.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from models.registry import HELD_OUT_SCORE, HOLDOUT_DIR, LABEL, PROFILE_FILE, client
from models.scoring import ModelSet


@dataclass
class TargetReference:
    """What the champion's MLflow run says of one target at training time."""

    target: str
    name: str
    version: str
    run_id: str
    metrics: dict[str, float]
    training_dates: list[dt.date]
    holdout_scores: np.ndarray | None = None  # the champion's scores on the held-out rows
    holdout_labels: np.ndarray | None = None


@dataclass
class TrainingReference:
    """The champions' training-time figures: targets and each run's feature profile."""

    targets: dict[str, TargetReference]
    profiles: dict[str, dict[str, dict] | None]  # run id -> feature profile (None: not logged)


def training_reference(tracking_uri: str, models: ModelSet) -> TrainingReference:
    """Training-time figures of the champions from their MLflow runs.

    Reads each run's metrics (``<target>.roc_auc``, ...), as-of dates and feature profile,
    and each target's held-out rows (``holdout/<target>.parquet``) with their out-of-sample
    scores (the champion scores them itself for runs older than that column), which give
    the score distribution at training. A run without a profile or a held-out file leaves
    that part empty.
    """
    mlflow_client = client(tracking_uri)
    runs: dict[str, Any] = {}
    profiles: dict[str, dict[str, dict] | None] = {}
    targets: dict[str, TargetReference] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for target, model in sorted(models.models.items()):
            if model.run_id not in runs:
                runs[model.run_id] = mlflow_client.get_run(model.run_id)
                profiles[model.run_id] = _artifact_json(
                    tracking_uri, model.run_id, PROFILE_FILE, Path(tmp)
                )
            run = runs[model.run_id]
            prefix = f"{target}."
            metrics = {
                k[len(prefix) :]: float(v)
                for k, v in run.data.metrics.items()
                if k.startswith(prefix)
            }
            dates = [
                dt.date.fromisoformat(d) for d in run.data.params.get("as_of", "").split(",") if d
            ]
            reference = TargetReference(
                target, model.name, model.version, model.run_id, metrics, dates
            )
            holdout = _artifact_parquet(
                tracking_uri, model.run_id, f"{HOLDOUT_DIR}/{target}.parquet", Path(tmp)
            )
            if holdout is not None and LABEL in holdout:
                reference.holdout_labels = holdout.pop(LABEL).to_numpy(dtype=float)
                # The evaluation model's scores where recorded: the champion itself was
                # refit on these rows, so its own scores there would be in-sample.
                held = holdout.pop(HELD_OUT_SCORE) if HELD_OUT_SCORE in holdout else None
                reference.holdout_scores = (
                    held.to_numpy(dtype=float)
                    if held is not None
                    else model.predictor.predict_frame(holdout)
                )
            targets[target] = reference
    return TrainingReference(targets, profiles)


def _artifact_json(uri: str, run_id: str, path: str, tmp: Path) -> dict | None:
    local = _download(uri, run_id, path, tmp)
    return None if local is None else json.loads(Path(local).read_text())


def _artifact_parquet(uri: str, run_id: str, path: str, tmp: Path) -> pd.DataFrame | None:
    local = _download(uri, run_id, path, tmp)
    return None if local is None else pd.read_parquet(local)


def _download(uri: str, run_id: str, path: str, tmp: Path) -> str | None:
    try:
        return mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=path, dst_path=str(tmp / run_id), tracking_uri=uri
        )
    except (OSError, mlflow.exceptions.MlflowException):
        return None
