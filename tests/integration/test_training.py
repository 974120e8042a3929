"""train -> register -> promote -> score against a real MLflow on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.spine import register_spine
from models.integrity import file_digests
from models.model import FILES, LINEAR_FILE
from models.registry import (
    DIGEST_TAG,
    MODEL_FOLDER,
    SETTINGS_FILE,
    SPEC_FILE,
    client,
    load_aliased,
    load_version,
    model_name,
    version_by_alias,
)
from models.scoring import load_champions, score_customers
from tests.conftest import train_in
from training.fit import BoosterParams
from training.registry import promote
from training.search import Candidate
from training.train import TrainingConfig


def trained_targets(trained) -> dict:
    return {t.target: t for t in trained.result.targets if t.status == "trained"}


def test_every_supported_target_is_registered_as_challenger_and_gated(trained):
    targets = trained_targets(trained)
    assert {"churn", "upgrade"} <= set(targets), trained.result.targets
    assert any(t.startswith("cross_sell_") for t in targets)
    mlflow_client = client(trained.settings.tracking_uri())
    for target, result in targets.items():
        name = "tierwise-" + target.replace("_", "-")
        challenger = version_by_alias(mlflow_client, name, "challenger")
        assert challenger is not None and str(challenger.version) == result.version, name
        # The session's models were promoted through the gate: champion iff it passed
        decision = json.loads(challenger.tags["promotion"])
        champion = version_by_alias(mlflow_client, name, "champion")
        assert (champion is not None) == decision["promoted"], (name, decision["message"])
    for target in ("churn", "upgrade"):
        assert version_by_alias(mlflow_client, model_name(target), "champion"), (
            f"{target} beats its baseline and the floor on the demo"
        )
    skipped = [t for t in trained.result.targets if t.status == "skipped"]
    assert all("positives" in t.reason for t in skipped), "a skipped target says why"


def test_run_records_params_metrics_and_artifacts(trained):
    run = client(trained.settings.tracking_uri()).get_run(trained.result.run_id)
    assert run.data.params["data.horizon_days"] == "90"
    assert len(run.data.params["data_fingerprint"]) == 16
    for metric in (
        "roc_auc",
        "pr_auc",
        "brier",
        "brier_raw",
        "ece",
        "ece_raw",
        "lift_top_decile",
        "baseline_roc_auc",
        "valid_roc_auc",
        "baseline_valid_roc_auc",
        "calibration_kept",
    ):
        assert f"churn.{metric}" in run.data.metrics, metric
    trained_targets = [t.target for t in trained.result.targets if t.status == "trained"]
    for target in trained_targets:  # every model's business figures, at the policy's values
        assert f"{target}.expected_profit" in run.data.metrics, target
        assert f"{target}.operating_threshold" in run.data.metrics, target
    mlflow.set_tracking_uri(trained.settings.tracking_uri())
    profit = {
        a.path
        for a in mlflow.artifacts.list_artifacts(run_id=run.info.run_id, artifact_path="profit")
    }
    assert {f"profit/{t}.json" for t in trained_targets} <= profit, profit
    mlflow.set_tracking_uri(trained.settings.tracking_uri())
    listed = {a.path for a in mlflow.artifacts.list_artifacts(run_id=trained.result.run_id)}
    assert {
        "feature_profile.json",
        "feature_spec.json",
        SETTINGS_FILE,
        "plots",
        "holdout",
        "slices",
        "candidates",
    } <= listed
    plots = {
        a.path
        for a in mlflow.artifacts.list_artifacts(
            run_id=trained.result.run_id, artifact_path="plots"
        )
    }
    assert "plots/churn_evaluation.png" in plots and "plots/churn_importance.png" in plots


def test_artifacts_stay_under_tierwise_home(trained):
    assert (trained.settings.home / "mlartifacts").is_dir(), (
        "embedded store keeps artifacts under home"
    )


def test_pyfunc_returns_the_calibrated_probabilities(trained):
    uri = trained.settings.tracking_uri()
    native = load_version(uri, "tierwise-churn", trained_targets(trained)["churn"].version)
    mlflow.set_tracking_uri(uri)
    holdout = pd.read_parquet(
        mlflow.artifacts.download_artifacts(
            run_id=trained.result.run_id, artifact_path="holdout/churn.parquet"
        )
    ).drop(columns="__label__")
    pyfunc = mlflow.pyfunc.load_model("models:/tierwise-churn@champion")
    np.testing.assert_allclose(
        pyfunc.predict(holdout), native.predictor.predict_frame(holdout), rtol=0, atol=1e-12
    )


def test_scores_one_row_per_customer_with_versions(trained, tmp_path):
    ds = trained.dataset()
    models = load_champions(trained.settings)
    as_of = "2026-06-30"
    scores = score_customers(ds, as_of, models)
    population = len(
        register_spine(ds, [as_of]) and ds.con.execute("SELECT * FROM spine").fetchall()
    )
    assert len(scores) == population and scores.customer_id.is_unique
    assert {
        "customer_id",
        "as_of",
        "tier",
        "value",
        "churn_probability",
        "upgrade_probability",
    } <= set(scores.columns)
    probs = scores.filter(like="_probability")
    assert ((probs >= 0) & (probs <= 1) | probs.isna()).all().all()
    assert "tierwise-churn=" in scores.model_versions.iloc[0]


def test_cross_sell_is_missing_for_holders(trained):
    ds = trained.dataset()
    models = load_champions(trained.settings)
    scores = score_customers(ds, "2026-06-30", models).set_index("customer_id")
    product, target = next(
        (m.predictor.meta["product"], t)
        for t, m in models.models.items()
        if m.predictor.meta.get("product")
    )
    holders = (
        ds.con.execute(
            "SELECT DISTINCT customer_id FROM holdings WHERE product = ? AND opened <= DATE '2026-06-30'"
            " AND (closed IS NULL OR closed > DATE '2026-06-30')",
            [product],
        )
        .df()
        .customer_id
    )
    held = scores.loc[scores.index.intersection(holders), f"{target}_probability"]
    assert len(held) and held.isna().all(), f"{product} holders get no {target} score"


def test_every_candidate_is_logged_with_its_figures(trained):
    # Given the session's run; then each trained target has a table of every candidate
    mlflow.set_tracking_uri(trained.settings.tracking_uri())
    searched = [c.name for c in TrainingConfig().candidates]
    run = client(trained.settings.tracking_uri()).get_run(trained.result.run_id)
    for target in trained_targets(trained):
        path = mlflow.artifacts.download_artifacts(
            run_id=trained.result.run_id, artifact_path=f"candidates/{target}.json"
        )
        table = json.loads(Path(path).read_text())
        rows = pd.DataFrame(table["data"], columns=table["columns"]).set_index("candidate")
        # the logistic member and the blend follow where validation is small (the demo's)
        assert list(rows.index) == ["logistic_baseline", *searched, "linear", "blend"], target
        assert rows.chosen.sum() == 1
        assert rows.loc[rows.chosen, "kind"].item() in ("lightgbm", "blend"), target
        fitted = rows[rows.status == "fitted"]
        for figure in ("valid_roc_auc", "valid_pr_auc", "valid_ece", "test_roc_auc", "seconds"):
            assert fitted[figure].notna().all(), f"{target}: {figure}"
        assert set(rows.status) <= {"fitted", "skipped"}
        assert f"{target}.candidates.logistic_baseline.valid_roc_auc" in run.data.metrics


def test_a_model_carries_the_dataset_settings_it_was_trained_under(trained):
    model = load_aliased(trained.settings.tracking_uri(), alias="challenger")["churn"]
    assert model.settings == trained.dataset().settings.model_dump(mode="json")


def test_every_registered_version_records_the_sha256_of_the_files_its_loader_reads(trained):
    uri = trained.settings.tracking_uri()
    mlflow_client = client(uri)
    mlflow.set_tracking_uri(uri)
    for target, result in trained_targets(trained).items():
        version = mlflow_client.get_model_version(model_name(target), result.version)
        recorded = json.loads(version.tags[DIGEST_TAG])
        # linear.json where the model is a blend with a logistic member
        meta = load_version(uri, model_name(target), result.version).predictor.meta
        blend = "linear" in meta["members"]
        expected = {*FILES, SPEC_FILE, SETTINGS_FILE} | ({LINEAR_FILE} if blend else set())
        assert set(recorded) == expected, (target, sorted(recorded))
        root = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{version.name}/{version.version}"
            )
        )
        assert file_digests(root.joinpath(*MODEL_FOLDER)) == recorded, f"{target}: as stored"


def test_same_data_and_settings_give_the_same_models(demo_data, tmp_path):
    # Given two runs with the search on (a subsample, so winners are refit), unhurried
    config = {
        "candidates": TrainingConfig().candidates[:2],
        "search_rows": 5000,
        "search_seconds": 1e9,
    }
    first = train_in(tmp_path / "first", demo_data, **config)
    second = train_in(tmp_path / "second", demo_data, **config)
    # Then every target's challenger gives the same probabilities on the held-out rows
    a = load_aliased(first.settings.tracking_uri(), alias="challenger")
    b = load_aliased(second.settings.tracking_uri(), alias="challenger")
    assert set(a) == set(b) and "churn" in a
    mlflow.set_tracking_uri(first.settings.tracking_uri())
    for target in a:
        assert a[target].predictor.booster.model_to_string() == (
            b[target].predictor.booster.model_to_string()
        ), target
        holdout = pd.read_parquet(
            mlflow.artifacts.download_artifacts(
                run_id=first.result.run_id, artifact_path=f"holdout/{target}.parquet"
            )
        ).drop(columns="__label__")
        np.testing.assert_array_equal(
            a[target].predictor.predict_frame(holdout),
            b[target].predictor.predict_frame(holdout),
            err_msg=target,
        )


def test_promotion_gate_keeps_a_worse_challenger_unless_forced(demo_data, tmp_path):
    # Given a champion, and a stump model trained afterwards as challenger
    home = tmp_path / "home"
    first = train_in(home, demo_data)
    promote(first.settings, target="churn")
    stump = Candidate(name="stump", params=BoosterParams(max_rounds=1, num_leaves=2, max_depth=1))
    train_in(home, demo_data, candidates=[stump])
    mlflow_client = client(first.settings.tracking_uri())
    champion = str(version_by_alias(mlflow_client, "tierwise-churn", "champion").version)
    # When promoted; then the worse challenger is kept out and the decision is recorded
    [decision] = promote(first.settings, target="churn")
    assert not decision.promoted and decision.challenger_roc_auc < decision.champion_roc_auc, (
        decision
    )
    assert str(version_by_alias(mlflow_client, "tierwise-churn", "champion").version) == champion
    tags = mlflow_client.get_model_version("tierwise-churn", decision.challenger).tags
    assert '"promoted": false' in tags["promotion"]
    # And forcing it moves the alias
    [forced] = promote(first.settings, target="churn", force=True)
    assert forced.promoted and forced.reason == "forced"
    assert (
        str(version_by_alias(mlflow_client, "tierwise-churn", "champion").version)
        == forced.challenger
    )


def test_promote_unknown_target_is_a_clear_error(trained):
    with pytest.raises(LookupError, match="no registered model for target 'yacht'"):
        promote(trained.settings, target="yacht")


def test_scoring_without_models_is_a_clear_error(tmp_path):
    from tierwise.settings import Settings

    with pytest.raises(LookupError, match="run `tierwise train` first"):
        load_champions(Settings(home=tmp_path, mlflow_tracking_uri=None))
