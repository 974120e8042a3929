"""The promotion decision: its message in every case, and the gate rules ``test_promotion.py``
leaves out (tolerances both ways, calibration, an undefined ROC AUC, no baseline, a forced
replacement, targets), through ``promote`` on a real MLflow on a SQLite file."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from models.model import Calibration, Predictor
from models.registry import HOLDOUT_DIR, LABEL, SPEC_FILE, client, model_name
from tests.unit.training.test_promotion import (
    HOLDOUT,
    NAME,
    TARGET,
    champion_of,
    holdout_auc,
    predictor,
    register,
)
from tierwise.settings import Settings
from training.registry import (
    PromotionDecision,
    Tolerances,
    log_target_model,
    promote,
    start_tracking,
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", mlflow_tracking_uri=None, threads=1)


def register_model(
    settings: Settings,
    tmp: Path,
    model: Predictor,
    holdout: pd.DataFrame = HOLDOUT,
    baseline_roc_auc: float | None = 0.55,
    files: dict[str, dict] | None = None,
) -> str:
    """``register`` for any predictor and hold-out, as a challenger of its target's model.

    ``baseline_roc_auc`` None records no baseline at all; ``files`` (name -> JSON) go beside
    the model's files (default: an empty feature spec).
    """
    model = replace(model, meta=dict(model.meta))
    if baseline_roc_auc is not None:
        model.meta["metrics"] = {"baseline_roc_auc": baseline_roc_auc}
    start_tracking(settings)
    with mlflow.start_run() as run:
        path = tmp / run.info.run_id / HOLDOUT_DIR / f"{model.target}.parquet"
        path.parent.mkdir(parents=True)
        holdout.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), HOLDOUT_DIR)
        folder = model.save(tmp / run.info.run_id / "model")
        for name, content in (files or {SPEC_FILE: {}}).items():
            (folder / name).write_text(json.dumps(content))
        example = holdout[model.encoding.features].head(5)
        return log_target_model(folder, model.target, model_name(model.target), example, {})


def decision(**changes) -> PromotionDecision:
    """A challenger v2 against champion v1 (figures only where a test gives them)."""
    values = {"name": NAME, "champion": "1", "challenger": "2", "promoted": False, "reason": ""}
    return PromotionDecision(**{**values, **changes})


# -- the message -------------------------------------------------------------------------------


def test_the_message_says_when_there_is_nothing_to_promote():
    assert decision(challenger=None).message == "churn has no challenger to promote"
    assert decision(challenger="1").message == "churn v1 is already champion"


def test_a_first_version_that_passes_names_the_baseline_and_the_floor():
    d = decision(
        champion=None,
        promoted=True,
        reason="first version: beats the baseline and the floor",
        challenger="1",
        challenger_roc_auc=0.75,
        baseline_roc_auc=0.7,
        min_roc_auc=0.6,
    )
    assert d.message == (
        "churn v1 is now champion (first version): "
        "ROC AUC 0.750 beats the baseline 0.700 and the floor 0.60"
    )


def test_a_challenger_that_beats_the_champion_says_so():
    d = decision(promoted=True, challenger_roc_auc=0.8, champion_roc_auc=0.7, baseline_roc_auc=0.6)
    assert d.message == (
        "churn v2 is now champion: ROC AUC 0.800 beats the baseline 0.600 "
        "and the previous champion v1 (0.700)"
    )


def test_a_challenger_no_better_than_the_champion_is_within_tolerance():
    d = decision(promoted=True, challenger_roc_auc=0.7, champion_roc_auc=0.7, baseline_roc_auc=0.6)
    assert d.message.endswith("and is within tolerance of the previous champion v1 (0.700)"), (
        d.message
    )


def test_a_kept_challenger_says_why_and_who_serves():
    kept = decision(reason="ROC AUC 0.650 is more than 0.005 below champion v1's 0.700")
    assert kept.message == (
        "churn v2 stays challenger: ROC AUC 0.650 is more than 0.005 below champion v1's 0.700; "
        "champion v1 keeps serving"
    )
    first = decision(champion=None, challenger="1", reason="ROC AUC 0.550 is below the floor 0.60")
    assert first.message == (
        "churn v1 stays unpromoted: ROC AUC 0.550 is below the floor 0.60; "
        "no model serves this action"
    )


def test_a_forced_promotion_says_so_with_figures_that_are_missing_as_n_a():
    first = decision(champion=None, challenger="1", promoted=True, reason="forced")
    assert first.message == (
        "churn v1 is now champion (forced): ROC AUC n/a, baseline n/a, no previous champion"
    )
    over = decision(
        promoted=True,
        reason="forced",
        challenger_roc_auc=0.55,
        champion_roc_auc=0.8,
        baseline_roc_auc=0.6,
    )
    assert over.message == (
        "churn v2 is now champion (forced): ROC AUC 0.550, baseline 0.600, "
        "previous champion v1 (0.800)"
    )


def test_the_message_names_the_target_of_a_cross_sell_model():
    d = decision(name="tierwise-cross-sell-credit-card", challenger=None)
    assert d.message == "cross_sell_credit_card has no challenger to promote"
    assert decision(target="upgrade", challenger=None).message.startswith("upgrade ")


# -- the gate, through promote -----------------------------------------------------------------


def test_a_challenger_as_good_as_the_champion_replaces_it(settings, tmp_path):
    # Given a champion, and a challenger that is the same model retrained
    register(settings, tmp_path, "strong", baseline_roc_auc=0.6)
    promote(settings)
    register(settings, tmp_path, "strong", baseline_roc_auc=0.6)
    # When promoted
    [d] = promote(settings)
    # Then equal figures are within tolerance: the newer model serves
    assert d.promoted and champion_of(settings) == "2", d
    assert d.challenger_roc_auc == pytest.approx(d.champion_roc_auc)
    assert "within tolerance of the previous champion v1" in d.message, d.message


def test_a_worse_challenger_within_a_looser_roc_auc_tolerance_replaces_the_champion(
    settings, tmp_path
):
    register(settings, tmp_path, "strong", baseline_roc_auc=0.6)
    promote(settings)
    register(settings, tmp_path, "weak", baseline_roc_auc=0.55)
    drop = holdout_auc("strong") - holdout_auc("weak")
    assert drop > 0.005, "worse than the default tolerance allows"
    # (its calibration is worse too: only the ranking is judged here)
    [d] = promote(settings, tolerances=Tolerances(roc_auc=drop + 0.01, ece=1.0))
    assert d.promoted and champion_of(settings) == "2", d


def test_a_challenger_worse_calibrated_than_the_champion_is_kept(settings, tmp_path):
    # Given a champion, and a challenger ranking the same but shifted up in probability
    register(settings, tmp_path, "strong", baseline_roc_auc=0.6)
    promote(settings)
    shifted = replace(predictor("strong"), calibration=Calibration("platt", a=1.0, b=1.5))
    register_model(settings, tmp_path, shifted, baseline_roc_auc=0.6)
    # When promoted under the default and under a loose calibration tolerance
    [kept] = promote(settings)
    # Then the same ROC AUC does not make up for the calibration error
    assert kept.challenger_roc_auc == pytest.approx(kept.champion_roc_auc), "same ranking"
    assert not kept.promoted and champion_of(settings) == "1", kept
    assert "ECE " in kept.reason and "is more than 0.010 above champion v1's" in kept.reason, (
        kept.reason
    )
    assert "ROC AUC" not in kept.reason, "only the calibration fails"
    [loose] = promote(settings, tolerances=Tolerances(ece=1.0))
    assert loose.promoted and champion_of(settings) == "2", loose


def test_a_hold_out_with_one_outcome_leaves_roc_auc_undefined_and_only_forcing_promotes(
    settings, tmp_path
):
    one_outcome = HOLDOUT.assign(**{LABEL: 0.0})
    register_model(settings, tmp_path, predictor("strong"), holdout=one_outcome)
    [d] = promote(settings)
    assert not d.promoted and champion_of(settings) is None, d
    assert math.isnan(d.challenger_roc_auc)
    assert d.reason == "ROC AUC is undefined on its held-out rows (one outcome only)", d.reason
    assert d.message == (
        "churn v1 stays unpromoted: ROC AUC is undefined on its held-out rows (one outcome "
        "only); no model serves this action"
    )
    # And forcing it says the figure is missing rather than NaN
    [forced] = promote(settings, force=True)
    assert forced.promoted and champion_of(settings) == "1", forced
    assert forced.message.startswith(
        "churn v1 is now champion (forced): ROC AUC n/a, baseline 0.550"
    )


def test_a_model_without_a_recorded_baseline_is_not_promoted(settings, tmp_path):
    register_model(settings, tmp_path, predictor("strong"), baseline_roc_auc=None)
    [d] = promote(settings)
    assert not d.promoted and champion_of(settings) is None, d
    assert d.reason == "no baseline ROC AUC was recorded at training to compare with", d.reason


def test_a_baseline_margin_asks_for_more_than_beating_the_baseline(settings, tmp_path):
    auc = holdout_auc("strong")
    register(settings, tmp_path, "strong", baseline_roc_auc=auc - 0.05)
    [d] = promote(settings, tolerances=Tolerances(baseline_margin=0.1))
    assert not d.promoted, d
    assert d.reason == (
        f"ROC AUC {auc:.3f} does not beat the baseline {auc - 0.05:.3f} by more than 0.100"
    ), d.reason


def test_forcing_replaces_a_better_champion_and_says_which(settings, tmp_path):
    register(settings, tmp_path, "strong", baseline_roc_auc=0.6)
    promote(settings)
    register(settings, tmp_path, "noise", baseline_roc_auc=0.45)
    [d] = promote(settings, force=True)
    assert d.promoted and d.reason == "forced" and champion_of(settings) == "2", d
    assert f"previous champion v1 ({holdout_auc('strong'):.3f})" in d.message, d.message
    tags = client(settings.tracking_uri()).get_model_version(NAME, "1").tags
    assert "challenged_by_v2" in tags, "the replaced champion records who challenged it"


def test_a_target_is_found_by_key_or_registered_name_and_an_unknown_one_is_refused(
    settings, tmp_path
):
    register(settings, tmp_path, "strong", baseline_roc_auc=0.6)
    with pytest.raises(LookupError) as caught:
        promote(settings, target="upgrade")
    assert str(caught.value) == "no registered model for target 'upgrade'; registered: " + NAME
    [by_name] = promote(settings, target=NAME)
    assert by_name.promoted and by_name.target == TARGET, by_name
    [by_key] = promote(settings, target=TARGET)
    assert by_key.message == "churn v1 is already champion"
