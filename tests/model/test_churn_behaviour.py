"""Behavioural checks of the trained models: directional, invariance, minimum quality."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from models.registry import load_aliased
from models.scoring import load_champions, score_customers


@pytest.fixture(scope="module")
def churn(trained):
    return load_aliased(trained.settings.tracking_uri())["churn"].predictor


@pytest.fixture(scope="module")
def holdout(trained) -> pd.DataFrame:
    mlflow.set_tracking_uri(trained.settings.tracking_uri())
    path = mlflow.artifacts.download_artifacts(
        run_id=trained.result.run_id, artifact_path="holdout/churn.parquet"
    )
    return pd.read_parquet(path)


def with_two_recent_complaints(rows: pd.DataFrame) -> pd.DataFrame:
    """Every feature two complaints 5 days ago change: the role's counts, the complaint kind's
    own counts, recency and trend, the service contacts, and a satisfaction of 1."""
    a = rows.kind_complaint_30d
    q = (a - rows.kind_complaint_trend) / (rows.kind_complaint_trend + 1)  # the 90 days before / 3
    return rows.assign(
        complaints_30d=rows.complaints_30d + 2,
        complaints_90d=rows.complaints_90d + 2,
        days_since_last_complaint=5.0,
        kind_complaint_30d=a + 2,
        kind_complaint_90d=rows.kind_complaint_90d + 2,
        kind_complaint_365d=rows.kind_complaint_365d + 2,
        kind_complaint_days_since=5.0,
        kind_complaint_trend=(a + 2 - q) / (q + 1),
        contacts_30d=rows.contacts_30d + 2,
        contacts_90d=rows.contacts_90d + 2,
        satisfaction_last_365d=1.0,
    )


def test_more_complaints_never_lower_churn_risk_in_aggregate(churn, holdout):
    # Given held-out customers; when each gets two recent complaints and worse satisfaction
    worse = with_two_recent_complaints(holdout)
    before, after = churn.predict_frame(holdout), churn.predict_frame(worse)
    # Then the churn risk rises on average and for most customers
    assert after.mean() > before.mean(), (before.mean(), after.mean())
    assert (after >= before).mean() >= 0.9


def test_falling_spend_never_lowers_churn_risk_in_aggregate(churn, holdout):
    falling = holdout.assign(
        txn_amount_30d=holdout.txn_amount_30d * 0.2,
        txn_amount_90d=holdout.txn_amount_90d * 0.3,
        txn_count_30d=np.floor(holdout.txn_count_30d * 0.2),
        txn_count_90d=np.floor(holdout.txn_count_90d * 0.3),
        spend_change_90d=-0.7,
        txn_count_change_90d=-0.7,
    )
    before, after = churn.predict_frame(holdout), churn.predict_frame(falling)
    assert after.mean() > before.mean(), (before.mean(), after.mean())


def test_churn_quality_floor_well_above_the_baseline(trained):
    metrics = next(t.metrics for t in trained.result.targets if t.target == "churn")
    assert metrics["roc_auc"] >= 0.70, metrics
    assert metrics["roc_auc"] >= metrics["baseline_roc_auc"] + 0.03, (
        "gain over logistic regression on RFM"
    )
    assert metrics["lift_top_decile"] >= 2.0, (
        "the riskiest tenth holds at least twice the base rate"
    )


def test_probabilities_are_calibrated_on_held_out_rows(trained, holdout):
    for target in ("churn", "upgrade"):
        metrics = next(t.metrics for t in trained.result.targets if t.target == target)
        assert metrics["ece"] <= 0.03, f"{target}: ECE {metrics['ece']:.4f}"


def test_renaming_customers_changes_no_score(trained, tmp_path):
    # Given the same base with every customer_id renamed; when scored with the same models
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    for path in trained.data.iterdir():
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
            table["customer_id"] = "X-" + table["customer_id"].str[::-1]
            table.to_parquet(renamed / path.name, index=False)
        else:
            (renamed / path.name).write_bytes(path.read_bytes())
    from features.contract import load_dataset

    models = load_champions(trained.settings)
    original = score_customers(trained.dataset(), "2026-06-30", models)
    moved = score_customers(load_dataset(renamed), "2026-06-30", models)
    # Then every customer keeps its scores
    moved["customer_id"] = moved.customer_id.str[2:].str[::-1]
    merged = original.merge(
        moved, on="customer_id", suffixes=("", "_renamed"), validate="one_to_one"
    )
    assert len(merged) == len(original)
    for column in original.filter(like="_probability").columns:
        np.testing.assert_array_equal(merged[column], merged[f"{column}_renamed"], err_msg=column)
