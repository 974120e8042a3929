"""The gate when models are refit on their held-out rows: it judges out-of-sample scores only."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from models.registry import AS_OF, HELD_OUT_SCORE, HOLDOUT_DIR, SPEC_FILE, model_name
from tests.unit.training.test_promotion import HOLDOUT, holdout_auc, predictor
from tierwise.settings import Settings
from training.registry import log_target_model, promote, start_tracking

TARGET = "churn"
NAME = model_name(TARGET)


def register(
    settings: Settings,
    tmp: Path,
    feature: str,
    holdout: pd.DataFrame,
    meta: dict,
) -> str:
    """A challenger registered with ``holdout`` as its run's held-out rows and ``meta``."""
    model = predictor(feature)
    model.meta.update(meta)
    start_tracking(settings)
    with mlflow.start_run():
        path = tmp / HOLDOUT_DIR / f"{TARGET}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        holdout.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), HOLDOUT_DIR)
        folder = model.save(tmp / f"{feature}-{len(meta)}-{id(holdout)}" / "model")
        (folder / SPEC_FILE).write_text("{}")
        return log_target_model(folder, TARGET, NAME, holdout[[feature]].head(5), {})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", mlflow_tracking_uri=None, threads=1)


def dated(day: str, scores: np.ndarray | None = None) -> pd.DataFrame:
    frame = HOLDOUT.assign(**{AS_OF: pd.Timestamp(day)})
    return frame if scores is None else frame.assign(**{HELD_OUT_SCORE: scores})


def test_the_challenger_is_judged_on_its_held_out_scores_not_its_own(settings, tmp_path):
    # Given a model that ranks the hold-out well in its own scores, but whose evaluation
    # model (fitted without those rows) scored them at random
    random = np.random.default_rng(0).uniform(size=len(HOLDOUT))
    register(
        settings,
        tmp_path,
        "strong",
        dated("2026-01-01", random),
        {"metrics": {"baseline_roc_auc": 0.55}},
    )
    [decision] = promote(settings)
    # Then the gate sees the random scores' ROC AUC, below the floor
    assert not decision.promoted
    assert decision.challenger_roc_auc < 0.6 < holdout_auc("strong")
    assert "below the floor" in decision.reason, decision.reason


def test_a_champion_refit_on_the_held_out_dates_is_judged_by_its_recorded_figures(
    settings, tmp_path
):
    # Given a champion refit on rows through the hold-out's date, with recorded figures
    recorded = {"roc_auc": 0.97, "ece": 0.001, "baseline_roc_auc": 0.5}
    meta = {"trained_through": "2026-01-01", "metrics": recorded}
    register(settings, tmp_path, "strong", dated("2026-01-01"), meta)
    assert promote(settings, force=True)[0].promoted
    # When a challenger on the same dates asks
    scores = predictor("strong").predict_frame(HOLDOUT)
    register(
        settings,
        tmp_path,
        "strong",
        dated("2026-01-01", scores),
        {"trained_through": "2026-01-01", "metrics": {"baseline_roc_auc": 0.5}},
    )
    [decision] = promote(settings)
    # Then the champion's figures are its recorded ones, not its in-sample scores there
    assert decision.champion_roc_auc == pytest.approx(0.97)
    assert decision.champion_ece == pytest.approx(0.001)
    assert not decision.promoted and "below champion" in decision.reason, decision.reason


def test_a_champion_that_never_saw_the_held_out_dates_is_scored_on_them(settings, tmp_path):
    recorded = {"roc_auc": 0.97, "ece": 0.001, "baseline_roc_auc": 0.5}
    register(
        settings,
        tmp_path,
        "weak",
        dated("2026-01-01"),
        {"trained_through": "2026-01-01", "metrics": recorded},
    )
    promote(settings, force=True)
    # Given a challenger whose held-out rows are a month after the champion's last snapshot
    scores = predictor("strong").predict_frame(HOLDOUT)
    register(
        settings,
        tmp_path,
        "strong",
        dated("2026-02-01", scores),
        {"trained_through": "2026-02-01", "metrics": {"baseline_roc_auc": 0.5}},
    )
    [decision] = promote(settings)
    # Then the champion is scored on those rows, and the better challenger replaces it
    assert decision.champion_roc_auc == pytest.approx(holdout_auc("weak"))
    assert decision.promoted, decision.reason
