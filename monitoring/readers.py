"""Monitoring readers: what the champions' MLflow runs and the decision log hold.

The only monitoring code that reads MLflow and the decision log (the dataset is read by
``monitoring.sections`` through ``features``). Nothing reads ``training``: what monitoring
knows of models comes from MLflow; the decision tables come from ``serving.decisions``.
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
import sqlalchemy as sa

from models.registry import HOLDOUT_DIR, LABEL, PROFILE_FILE, client
from models.scoring import ModelSet
from serving.decisions import (
    DecisionRecord,
    FeedbackRecord,
    decision_record,
    decisions_table,
    feedback_record,
    feedback_table,
)
from serving.store import StoreMissingError, open_engine


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
    and scores each target's held-out rows (``holdout/<target>.parquet``) with the
    champion, which gives the score distribution at training. A run without a profile or
    a held-out file leaves that part empty.
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
                reference.holdout_scores = model.predictor.predict_frame(holdout)
            targets[target] = reference
    return TrainingReference(targets, profiles)


def read_decision_log(
    url: str, until: dt.date | None = None
) -> tuple[list[DecisionRecord], list[FeedbackRecord]] | None:
    """Decisions (and their feedback) made on store data as of ``until`` or earlier.

    Decisions without a store date count as well. Reads the tables of ``serving.decisions``
    and never creates anything: a missing SQLite file or missing tables give None.
    """
    try:
        engine = open_engine(url, create=False, begin=None)
    except StoreMissingError:
        return None
    try:
        inspector = sa.inspect(engine)
        if not (inspector.has_table("decisions") and inspector.has_table("feedback")):
            return None
        query = sa.select(decisions_table)
        if until is not None:
            query = query.where(
                sa.or_(decisions_table.c.as_of.is_(None), decisions_table.c.as_of <= until)
            )
        with engine.connect() as conn:
            decision_rows = conn.execute(query.order_by(decisions_table.c.created_at)).all()
            feedback_rows = conn.execute(
                sa.select(feedback_table).order_by(feedback_table.c.feedback_id)
            ).all()
    finally:
        engine.dispose()
    decisions = [decision_record(r) for r in decision_rows]
    kept = {d.decision_id for d in decisions}
    feedback = [feedback_record(r) for r in feedback_rows if r.decision_id in kept]
    return decisions, feedback


def safe_url(url: str) -> str:
    """The URL without its password, for the report."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


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
