"""Writing the MLflow registry: experiment set-up, model logging, aliases and the promotion gate."""

from __future__ import annotations

import datetime as dt
import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

import models.pyfunc
from models.integrity import ModelIntegrityError, file_digests
from models.model import Predictor
from models.registry import (
    AS_OF,
    CHALLENGER,
    CHAMPION,
    DIGEST_TAG,
    HELD_OUT_SCORE,
    HOLDOUT_DIR,
    LABEL,
    PREFIX,
    client,
    load_version,
    model_name,
    tierwise_models,
    version_by_alias,
)
from tierwise.settings import Settings
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
    """Explicit pip requirements: inferring them costs ~2 s per model (docs/design.md, "MLflow")."""
    return [
        f"mlflow=={mlflow.__version__}",
        f"lightgbm=={lgb.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
    ]


def _log_pyfunc(folder: Path, target: str, name: str, signature):
    return mlflow.pyfunc.log_model(
        name=target,
        python_model=models.pyfunc.__file__,
        artifacts={"model": str(folder)},
        pip_requirements=requirements(),
        signature=signature,
        registered_model_name=name,
    )


def log_target_model(
    folder: Path, target: str, name: str, example: pd.DataFrame, tags: dict
) -> str:
    """Log a target's folder as a pyfunc model in the active run, register it, tag the version.

    The sha256 of every file in ``folder``, taken before it is uploaded, becomes the version's
    ``DIGEST_TAG`` (``models.registry.load_version`` verifies them), set before any other
    tag or alias. The new version becomes ``challenger``, never ``champion``: even a model's
    first version must pass the gate in ``promote``. Returns the version.
    """
    digests = json.dumps(file_digests(folder), sort_keys=True)
    signature = mlflow.models.infer_signature(example, np.zeros(len(example)))
    with warnings.catch_warnings():
        # An input example would make MLflow load and run the model once more per version.
        # MLflow 3 colours the text, so the pattern may not be anchored at its start.
        warnings.filterwarnings("ignore", message=".*An input example was not provided")
        info = _log_pyfunc(folder, target, name, signature)
    version = str(info.registered_model_version)
    mlflow_client = client(mlflow.get_tracking_uri())
    mlflow_client.set_model_version_tag(name, version, DIGEST_TAG, digests)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(name, version, key, str(value))
    mlflow_client.set_registered_model_alias(name, CHALLENGER, version)
    return version


class Tolerances(BaseModel):
    """What a challenger must show to become champion.

    Every challenger, a model's first version too, must rank better than the logistic
    baseline on its held-out rows and reach ``min_roc_auc``; against an existing champion
    it may be only slightly worse (``roc_auc``, ``ece``).
    """

    roc_auc: float = Field(0.005, ge=0, description="allowed drop in ROC AUC from the champion")
    ece: float = Field(0.01, ge=0, description="allowed rise in expected calibration error")
    min_roc_auc: float = Field(
        0.60, ge=0, le=1, description="held-out ROC AUC a model needs to serve at all"
    )
    baseline_margin: float = Field(
        0.0, ge=0, description="how much the challenger's ROC AUC must exceed the baseline's"
    )


@dataclass
class PromotionDecision:
    """The gate's verdict on one model; figures are NaN where they do not apply.

    ``champion_error`` says why the champion could not be loaded to compare with (its files
    fail verification, ``models.registry.load_version``); the challenger is then judged on
    the baseline and the floor alone, as a first version is. ``message`` says it in plain
    words, without NaN.
    """

    name: str
    champion: str | None  # the champion version before the decision
    challenger: str | None
    promoted: bool
    reason: str
    champion_roc_auc: float = float("nan")
    challenger_roc_auc: float = float("nan")
    champion_ece: float = float("nan")
    challenger_ece: float = float("nan")
    baseline_roc_auc: float = float("nan")
    min_roc_auc: float = float("nan")
    target: str = ""
    champion_error: str = ""

    @property
    def message(self) -> str:
        """One sentence for people: what happened, with the figures that decided it."""
        target = self.target or self.name.removeprefix(PREFIX).replace("-", "_")
        new = f"{target} v{self.challenger}"
        old = f"v{self.champion}" if self.champion else None
        if self.challenger is None:
            return f"{target} has no challenger to promote"
        if self.champion == self.challenger:
            return f"{new} is already champion"
        auc = _figure(self.challenger_roc_auc)
        unverified = (
            f"previous champion {old} could not be loaded to compare ({self.champion_error})"
        )
        if self.promoted:
            lead = f"{new} is now champion{' (forced)' if self.reason == 'forced' else ''}"
            if self.reason == "forced":
                versus = f"previous champion {old} ({_figure(self.champion_roc_auc)})"
                if self.champion_error:
                    versus = unverified
                elif old is None:
                    versus = "no previous champion"
                return f"{lead}: ROC AUC {auc}, baseline {_figure(self.baseline_roc_auc)}, {versus}"
            beats = f"ROC AUC {auc} beats the baseline {_figure(self.baseline_roc_auc)}"
            if old is None:
                return f"{lead} (first version): {beats} and the floor {self.min_roc_auc:.2f}"
            if self.champion_error:
                return f"{lead}: {beats} and the floor {self.min_roc_auc:.2f}; {unverified}"
            verb = (
                "and the previous champion"
                if self.challenger_roc_auc > self.champion_roc_auc
                else "and is within tolerance of the previous champion"
            )
            return f"{lead}: {beats} {verb} {old} ({_figure(self.champion_roc_auc)})"
        serving = f"champion {old} keeps serving" if old else "no model serves this action"
        if self.champion_error:
            serving = f"champion {old} cannot serve either ({self.champion_error})"
        state = "stays challenger" if old else "stays unpromoted"
        return f"{new} {state}: {self.reason}; {serving}"


def _figure(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "n/a"


def promote(
    settings: Settings,
    target: str | None = None,
    force: bool = False,
    tolerances: Tolerances | None = None,
) -> list[PromotionDecision]:
    """Judge each model's challenger on its own held-out rows and move ``champion`` if it passes.

    A challenger becomes champion only if its held-out ROC AUC beats the logistic baseline's
    (recorded at training on the same rows), reaches ``tolerances.min_roc_auc`` and, when
    there is a champion, is not worse than it beyond the tolerances; or if ``force``. A
    failing first version stays registered with no champion. The decision and its figures
    are tagged on both versions. A challenger whose files fail verification is not judged
    (the decision's reason says why); a champion whose files fail verification cannot
    serve, so the challenger is judged as a first version, with ``champion_error`` set.

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
    try:
        candidate = load_version(uri, name, new)
    except ModelIntegrityError as err:  # judged no further; the other models still are
        return PromotionDecision(name, old, new, False, str(err))
    holdout = _holdout(candidate.run_id, candidate.predictor.target)
    y = holdout.pop(LABEL).to_numpy()
    dates = holdout.pop(AS_OF) if AS_OF in holdout else None
    if HELD_OUT_SCORE in holdout:  # the registered model was refit on these rows too
        scores = holdout.pop(HELD_OUT_SCORE).to_numpy(dtype=float)
    else:
        scores = candidate.predictor.predict_frame(holdout)
    figures = score_metrics(y, scores)
    decision = PromotionDecision(
        name,
        old,
        new,
        False,
        "",
        challenger_roc_auc=figures["roc_auc"],
        challenger_ece=figures["ece"],
        baseline_roc_auc=float(
            candidate.predictor.meta.get("metrics", {}).get("baseline_roc_auc") or math.nan
        ),
        min_roc_auc=tol.min_roc_auc,
        target=candidate.predictor.target,
    )
    if old is not None:
        try:
            champion = load_version(uri, name, old)
        except ModelIntegrityError as err:  # it cannot serve: judge as a first version
            decision.champion_error = str(err)
        else:
            base = _champion_figures(champion.predictor, holdout, y, dates)
            decision.champion_roc_auc, decision.champion_ece = base["roc_auc"], base["ece"]
    failures = _failures(decision, tol)
    decision.promoted = force or not failures
    decision.reason = "forced" if failures and force else "; ".join(failures) or _passed(decision)
    record = json.dumps(
        {
            **{k: _finite(v) for k, v in asdict(decision).items()},
            "message": decision.message,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )
    mlflow_client.set_model_version_tag(name, new, "promotion", record)
    if old is not None:
        mlflow_client.set_model_version_tag(name, old, f"challenged_by_v{new}", record)
    if decision.promoted:
        mlflow_client.set_registered_model_alias(name, CHAMPION, new)
    return decision


def _champion_figures(
    champion: Predictor, holdout: pd.DataFrame, y: np.ndarray, dates: pd.Series | None
) -> dict[str, float]:
    """The champion's ROC AUC and ECE to set beside the challenger's held-out ones.

    Scored on the challenger's held-out rows, unless the champion was refit on rows of
    those dates (``trained_through``; a retrain on the same data): its scores there would
    be in-sample, so its own run's held-out figures stand in, which on the same data are
    the same rows.
    """
    through = champion.meta.get("trained_through")
    if through and dates is not None and str(pd.Timestamp(dates.min()).date()) <= through:
        recorded = champion.meta.get("metrics", {})
        return {m: float(recorded.get(m, math.nan)) for m in ("roc_auc", "ece")}
    return score_metrics(y, champion.predict_frame(holdout))


def _failures(d: PromotionDecision, tol: Tolerances) -> list[str]:
    """Why the challenger may not become champion, in words (empty: it passes)."""
    auc, baseline = d.challenger_roc_auc, d.baseline_roc_auc
    if not math.isfinite(auc):
        return ["ROC AUC is undefined on its held-out rows (one outcome only)"]
    out = []
    if auc < d.min_roc_auc:
        out.append(f"ROC AUC {auc:.3f} is below the floor {d.min_roc_auc:.2f}")
    if not math.isfinite(baseline):
        out.append("no baseline ROC AUC was recorded at training to compare with")
    elif auc <= baseline + tol.baseline_margin:
        margin = f" by more than {tol.baseline_margin:.3f}" if tol.baseline_margin else ""
        out.append(f"ROC AUC {auc:.3f} does not beat the baseline {baseline:.3f}{margin}")
    if d.champion is not None and not d.champion_error:
        if auc < d.champion_roc_auc - tol.roc_auc:
            out.append(
                f"ROC AUC {auc:.3f} is more than {tol.roc_auc:.3f} below champion"
                f" v{d.champion}'s {d.champion_roc_auc:.3f}"
            )
        if d.challenger_ece > d.champion_ece + tol.ece:
            out.append(
                f"ECE {d.challenger_ece:.4f} is more than {tol.ece:.3f} above champion"
                f" v{d.champion}'s {d.champion_ece:.4f}"
            )
    return out


def _passed(d: PromotionDecision) -> str:
    if d.champion is None:
        return "first version: beats the baseline and the floor"
    if d.champion_error:
        return "beats the baseline and the floor; the champion could not be loaded to compare"
    return "beats the baseline and the floor; not worse than the champion beyond tolerances"


def _finite(value):
    """NaN as null: the promotion tag must be valid JSON."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _holdout(run_id: str, target: str) -> pd.DataFrame:
    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=f"{HOLDOUT_DIR}/{target}.parquet"
    )
    return pd.read_parquet(path)
