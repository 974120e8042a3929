"""Uplift models end to end on real parts: a contract dataset on disk, DuckDB features at each
decision's day, LightGBM, MLflow on a SQLite file, the decision store and the CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contract import load_dataset
from features.pipeline import build_features
from features.spec import FeatureSpec
from models.integrity import ModelIntegrityError
from models.registry import CHAMPION, client, tierwise_models, uplift_models, version_by_alias
from models.scoring import load_uplift_champions
from serving.decisions import DecisionLog
from tests.uplift_synthetic import START, synthetic_customers, synthetic_outcomes
from tierwise.cli import app
from tierwise.settings import Settings
from training.uplift import UpliftRun, train_uplift

AS_OF = dt.date(2026, 5, 1)  # every horizon (90 days from early January) has ended


def write_base(folder: Path, customers: pd.DataFrame) -> Path:
    """customers (the synthetic features as profile columns) and one transaction each."""
    folder.mkdir(parents=True)
    table = customers[["customer_id", "x1", "x2", "x3", "x4", "segment"]].assign(
        signup_date=dt.date(2024, 1, 1), closed_date=pd.NaT
    )
    table.to_parquet(folder / "customers.parquet", index=False)
    pd.DataFrame(
        {
            "customer_id": customers.customer_id,
            "ts": START - pd.Timedelta(days=30),
            "amount": 10.0,
            "product": "card",
            "channel": "web",
        }
    ).to_parquet(folder / "transactions.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A base of 20,000 customers: Credit Card offers have a real effect, Savings offers none."""
    tmp = tmp_path_factory.mktemp("uplift")
    customers = synthetic_customers(20_000, seed=3)
    outcomes = pd.concat(
        [
            synthetic_outcomes(customers, seed=1003, action="Credit Card"),
            synthetic_outcomes(customers.head(6000), seed=7, action="Savings", effect=False),
        ],
        ignore_index=True,
    )
    settings = Settings(home=tmp / "home", mlflow_tracking_uri=None, threads=1)
    ds = load_dataset(write_base(tmp / "base", customers))
    run = train_uplift(ds, outcomes, settings, AS_OF)
    return settings, customers, outcomes, run, tmp


def test_an_action_with_an_effect_becomes_champion_and_one_without_stays_unpromoted(experiment):
    settings, _, _, run, _ = experiment
    results = {r.action: r for r in run.actions}
    assert results["Credit Card"].promoted, results["Credit Card"].message
    assert not results["Savings"].promoted
    assert "not above 0" in results["Savings"].reason, results["Savings"].message
    mlflow_client = client(settings.tracking_uri())
    assert uplift_models(mlflow_client) == [
        "tierwise-uplift-credit-card",
        "tierwise-uplift-savings",
    ]
    assert version_by_alias(mlflow_client, "tierwise-uplift-savings", CHAMPION) is None
    assert tierwise_models(mlflow_client) == [], "uplift models are not target models"


def test_the_champion_loads_verified_and_predicts_the_uplift(experiment):
    settings, customers, _, _, tmp = experiment
    champions = load_uplift_champions(settings)
    assert list(champions) == ["Credit Card"], "only the promoted action has a champion"
    model = champions["Credit Card"]
    assert (model.name, model.version, model.method) == (
        "tierwise-uplift-credit-card",
        "1",
        "two_model",
    )
    assert model.spec["profile"], "the feature spec travels with the model"
    # The matrix is the model's own Encoding of the feature rows of its spec, as for targets.
    ds = load_dataset(tmp / "base")
    rows = build_features(ds, [START.date()], FeatureSpec.from_dict(model.spec))
    rows = rows.merge(customers[["customer_id", "true_uplift"]], on="customer_id")
    predicted = model.predict(model.encoding.matrix(rows))
    corr = np.corrcoef(rows.true_uplift, predicted)[0, 1]
    assert corr > 0.7, f"correlation with the true uplift {corr:.2f}"
    harmed = (rows.true_uplift < -0.1).to_numpy()
    assert (predicted[harmed] < 0).mean() > 0.8, "sleeping dogs are predicted to be harmed"


def test_a_tampered_champion_is_refused_naming_the_file(experiment):
    settings, *_ = experiment
    champions = load_uplift_champions(settings)
    stored = sorted((settings.home / "mlartifacts").rglob("offered.txt"))
    assert stored, "the artifact store holds the native files"
    for path in stored:
        path.write_text(path.read_text() + "\n")
    try:
        with pytest.raises(ModelIntegrityError, match=r"offered\.txt changed"):
            load_uplift_champions(settings)
    finally:
        for path in stored:
            path.write_text(path.read_text()[:-1])
    assert (
        load_uplift_champions(settings)["Credit Card"].version == champions["Credit Card"].version
    )


def test_the_same_rows_train_the_same_models(experiment, tmp_path):
    settings, _, outcomes, run, tmp = experiment
    again = Settings(home=tmp_path / "home", mlflow_tracking_uri=None, threads=1)
    rerun: UpliftRun = train_uplift(load_dataset(tmp / "base"), outcomes, again, AS_OF)
    first = load_uplift_champions(settings)["Credit Card"]
    second = load_uplift_champions(again)["Credit Card"]
    for role in ("offered", "holdout"):
        assert first.boosters[role].model_to_string() == second.boosters[role].model_to_string()
    assert [r.metrics for r in rerun.actions] == [r.metrics for r in run.actions]


def test_train_uplift_command_reads_the_decision_store(experiment, tmp_path, monkeypatch):
    _, _, outcomes, _, tmp = experiment
    home = tmp_path / "cli-home"
    monkeypatch.setenv("TIERWISE_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("TIERWISE_DECISION_STORE_URL", raising=False)
    args = ["train-uplift", "--data", str(tmp / "base"), "--as-of", AS_OF.isoformat()]
    empty = CliRunner().invoke(app, args)
    assert empty.exit_code == 1 and "run `tierwise outcomes` first" in empty.output, empty.output
    log = DecisionLog(Settings(home=home).decisions_url())
    log.write_outcomes(outcomes[outcomes.action == "Savings"])
    log.close()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "kept      uplift Savings v1 stays unpromoted" in result.output, result.output
