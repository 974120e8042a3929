"""The promotion gate against a real MLflow on a SQLite file: floor, baseline, champion."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models.model import Calibration, Encoding, Predictor
from models.registry import (
    CHAMPION,
    HOLDOUT_DIR,
    LABEL,
    SPEC_FILE,
    client,
    model_name,
    version_by_alias,
)
from tierwise.settings import Settings
from training.registry import Tolerances, log_target_model, promote, start_tracking

TARGET = "churn"
NAME = model_name(TARGET)


def base(seed: int = 0, n: int = 4000) -> pd.DataFrame:
    """Outcomes driven hard by ``strong``, mildly by ``weak``, not at all by ``noise``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(size=n) for c in ("strong", "weak", "noise")})
    logit = 2.0 * frame.strong + 1.0 * frame.weak - 1.0
    return frame.assign(**{LABEL: (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(float)})


HOLDOUT = base(seed=1)


def predictor(feature: str) -> Predictor:
    """A small booster on one feature of the base (its ranking on the hold-out is fixed)."""
    train = base(seed=0)
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "seed": 0}
    params |= {"deterministic": True, "force_row_wise": True, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(train[[feature]].to_numpy(), train[LABEL]), 60)
    return Predictor(TARGET, booster, Encoding([feature]), Calibration("identity"))


def holdout_auc(feature: str) -> float:
    return float(roc_auc_score(HOLDOUT[LABEL], predictor(feature).predict_frame(HOLDOUT)))


def register(settings: Settings, tmp: Path, feature: str, baseline_roc_auc: float) -> str:
    """Register a challenger the way training does: its hold-out and meta metrics in a run."""
    model = predictor(feature)
    model.meta["metrics"] = {"baseline_roc_auc": baseline_roc_auc}
    start_tracking(settings)
    with mlflow.start_run():
        path = tmp / HOLDOUT_DIR / f"{TARGET}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        HOLDOUT.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), HOLDOUT_DIR)
        folder = model.save(
            tmp / f"{feature}-{baseline_roc_auc}" / "model"
        )  # MLflow keeps the name
        (folder / SPEC_FILE).write_text("{}")
        return log_target_model(folder, TARGET, NAME, HOLDOUT[[feature]].head(5), {})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", mlflow_tracking_uri=None, threads=1)


def champion_of(settings: Settings) -> str | None:
    mv = version_by_alias(client(settings.tracking_uri()), NAME, CHAMPION)
    return None if mv is None else str(mv.version)


def test_first_version_below_the_floor_stays_unpromoted(settings, tmp_path):
    # Given a first version that ranks no better than chance (the baseline even worse)
    assert holdout_auc("noise") < 0.6
    register(settings, tmp_path, "noise", baseline_roc_auc=0.45)
    # When promoted
    [decision] = promote(settings)
    # Then it is registered but not champion, and the message says why and what it means
    assert not decision.promoted and champion_of(settings) is None, decision
    assert "below the floor 0.60" in decision.reason, decision.reason
    assert decision.message.startswith("churn v1 stays unpromoted: ROC AUC 0.")
    assert decision.message.endswith("no model serves this action"), decision.message


def test_first_version_that_does_not_beat_the_baseline_stays_unpromoted(settings, tmp_path):
    # Given a first version above the floor whose baseline did better on the same rows
    auc = holdout_auc("strong")
    register(settings, tmp_path, "strong", baseline_roc_auc=auc + 0.01)
    [decision] = promote(settings)
    assert not decision.promoted and champion_of(settings) is None, decision
    assert "does not beat the baseline" in decision.reason, decision.reason
    assert "below the floor" not in decision.reason, "the floor is met: only the baseline fails"


def test_first_version_that_beats_the_baseline_and_the_floor_becomes_champion(settings, tmp_path):
    auc = holdout_auc("strong")
    version = register(settings, tmp_path, "strong", baseline_roc_auc=auc - 0.05)
    [decision] = promote(settings)
    assert decision.promoted and champion_of(settings) == version, decision
    assert decision.message.startswith(
        f"churn v1 is now champion (first version): ROC AUC {auc:.3f} beats the baseline"
    ), decision.message


def test_a_stricter_floor_is_applied_as_configured(settings, tmp_path):
    auc = holdout_auc("strong")
    register(settings, tmp_path, "strong", baseline_roc_auc=auc - 0.05)
    [decision] = promote(settings, tolerances=Tolerances(min_roc_auc=0.99))
    assert not decision.promoted and "below the floor 0.99" in decision.reason, decision


def test_a_worse_challenger_leaves_the_champion_serving(settings, tmp_path):
    # Given a champion on the strong signal, then a challenger on the weak one
    register(settings, tmp_path, "strong", baseline_roc_auc=0.6)
    promote(settings)
    register(settings, tmp_path, "weak", baseline_roc_auc=0.55)
    assert holdout_auc("weak") > 0.6, "the challenger passes the floor and the baseline"
    [decision] = promote(settings)
    assert not decision.promoted and champion_of(settings) == "1", decision
    assert "below champion v1's" in decision.reason, decision.reason
    assert decision.message.endswith("champion v1 keeps serving"), decision.message
    assert decision.message.startswith("churn v2 stays challenger"), decision.message


def test_a_better_challenger_replaces_the_champion(settings, tmp_path):
    register(settings, tmp_path, "weak", baseline_roc_auc=0.55)
    promote(settings)
    register(settings, tmp_path, "strong", baseline_roc_auc=0.6)
    [decision] = promote(settings)
    assert decision.promoted and champion_of(settings) == "2", decision
    assert "and the previous champion v1 (0." in decision.message, decision.message


def test_a_challenger_below_the_baseline_never_replaces_the_champion(settings, tmp_path):
    # Given a champion, and a better challenger whose own baseline was better still
    register(settings, tmp_path, "weak", baseline_roc_auc=0.55)
    promote(settings)
    register(settings, tmp_path, "strong", baseline_roc_auc=0.99)
    [decision] = promote(settings)
    assert not decision.promoted and champion_of(settings) == "1", decision
    assert "does not beat the baseline 0.990" in decision.reason, decision.reason


def test_forcing_promotes_a_failing_challenger(settings, tmp_path):
    register(settings, tmp_path, "noise", baseline_roc_auc=0.45)
    [decision] = promote(settings, force=True)
    assert decision.promoted and decision.reason == "forced" and champion_of(settings) == "1"


def test_the_recorded_decision_is_valid_json_without_nan(settings, tmp_path):
    # Given a first version (no champion figures to compare with)
    register(settings, tmp_path, "strong", baseline_roc_auc=0.6)
    [decision] = promote(settings)
    tag = client(settings.tracking_uri()).get_model_version(NAME, "1").tags["promotion"]
    record = json.loads(tag, parse_constant=lambda c: pytest.fail(f"{c} in the record"))
    assert record["champion_roc_auc"] is None and record["message"] == decision.message
    assert "nan" not in decision.message.lower()
    assert math.isfinite(record["challenger_roc_auc"])
