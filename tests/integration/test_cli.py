"""One smoke run per command: the CLI parses, calls the library and reports like a user sees it."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from tests.conftest import base_tables
from tierwise.cli import app


@pytest.fixture
def run(monkeypatch, tmp_path):
    monkeypatch.setenv("TIERWISE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def invoke(*args: str, env: dict | None = None):
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        return CliRunner().invoke(app, [str(a) for a in args])

    return invoke


def test_validate_accepts_good_data_and_rejects_broken_data(run, make_dataset):
    good = run("validate", "--data", make_dataset(name="good"))
    assert good.exit_code == 0 and "OK" in good.output
    tables = base_tables()
    tables["holdings"].loc[0, "closed"] = "2000-01-01"
    bad = run("validate", "--data", make_dataset(tables, name="bad"))
    assert bad.exit_code == 1
    assert "holdings.closed: must not be before opened (1 rows); e.g. customer_id A" in bad.output


def test_validate_lists_the_columns_that_are_not_features_and_why(run, make_dataset):
    tables = base_tables()
    tables["customers"]["email"] = ["a@example.com", "b@example.com", "c@example.com"]
    result = run("validate", "--data", make_dataset(tables))
    assert result.exit_code == 0, result.output
    assert "not a feature: customers.email (named like identifying data" in result.output
    assert "not a feature: customers.age (a protected attribute" in result.output


def test_settings_file_serves_a_sqlite_source(run, tmp_path):
    # Given the base in SQLite with tiers of its own names, and its settings in a file
    tables = base_tables()
    tables["tiers"]["tier"] = ["bronze", "silver", "bronze", "gold"]
    url = f"sqlite:///{tmp_path / 'base.db'}"
    engine = sa.create_engine(url)
    for name, frame in tables.items():
        frame.to_sql(name, engine, index=False)
    engine.dispose()
    settings = tmp_path / "base.yaml"
    settings.write_text(yaml.safe_dump({"tier_order": ["bronze", "silver", "gold"]}))
    # When validated without and with --settings
    refused = run("validate", "--data", url)
    accepted = run("validate", "--data", url, "--settings", settings)
    # Then only the settings make its tier names known
    assert refused.exit_code == 1 and "tiers.tier: must be one of tier_order" in refused.output
    assert accepted.exit_code == 0, accepted.output
    # And the environment variable does the same for every command
    out = tmp_path / "features.parquet"
    env = {"TIERWISE_DATASET_SETTINGS": str(settings)}
    made = run("features", "--data", url, "--as-of", "2023-12-31", "--out", out, env=env)
    assert made.exit_code == 0, made.output
    assert set(pd.read_parquet(out)["tier"].dropna()) <= {"bronze", "silver", "gold"}


def test_features_writes_the_table(run, make_dataset, tmp_path):
    out = tmp_path / "features.parquet"
    result = run(
        "features",
        "--data",
        make_dataset(),
        "--as-of",
        "2023-12-31",
        "--as-of",
        "2023-09-30",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert sorted(frame.as_of.astype(str).unique()) == ["2023-09-30", "2023-12-31"]


def test_commands_refuse_broken_data_before_writing(run, make_dataset, tmp_path):
    out = tmp_path / "features.parquet"
    tables = base_tables()
    tables["customers"].loc[1, "customer_id"] = "A"
    result = run("features", "--data", make_dataset(tables), "--as-of", "2023-12-31", "--out", out)
    assert result.exit_code == 1 and "customers.customer_id: must be unique" in result.output
    assert not out.exists(), "nothing is written from data that breaks the contract"


def test_train_promote_and_monitor(run, demo_data, tmp_path):
    trained = run("train", "--data", demo_data, "--snapshots", "4")
    assert trained.exit_code == 0, trained.output
    assert (
        "churn" in trained.output and "mlflow ui --backend-store-uri sqlite:///" in trained.output
    )
    assert "run `tierwise promote`" in trained.output
    promoted = run("promote")
    assert promoted.exit_code == 0, promoted.output
    assert "churn v1 is now champion (first version): ROC AUC" in promoted.output, promoted.output
    assert "nan" not in promoted.output.lower()
    again = run("promote")
    assert "churn v1 is already champion" in again.output, again.output
    report = tmp_path / "report.html"
    lenient = run(
        "monitor",
        "--data",
        demo_data,
        "--as-of",
        "2026-06-30",
        "--out",
        report,
        "--psi",
        "10",
        "--score-psi",
        "10",
        "--auc-drop",
        "1",
        "--ece-rise",
        "1",
    )
    assert lenient.exit_code == 0 and "no alert" in lenient.output, lenient.output
    assert report.exists() and report.with_suffix(".json").exists()
    strict = run(
        "monitor", "--data", demo_data, "--as-of", "2026-06-30", "--out", report, "--psi", "0"
    )
    assert strict.exit_code == 1, "an alert makes the command fail so a scheduler can page"
    assert "ALERT feature " in strict.output and "drifted: PSI" in strict.output, strict.output


def test_score_without_models_is_a_clear_error(run, make_dataset, tmp_path):
    result = run(
        "score", "--data", make_dataset(), "--as-of", "2023-12-31", "--out", tmp_path / "s.parquet"
    )
    assert result.exit_code == 1, result.output
    assert "no Tierwise models are registered at sqlite:///" in result.output, result.output
    assert "run `tierwise train` first" in result.output, result.output


def test_value_tiers_are_chosen_on_the_command_line(run, make_dataset, tmp_path):
    data = make_dataset(
        {k: v for k, v in base_tables().items() if k != "tiers"}, name="no-service-tiers"
    )
    out = tmp_path / "abc.parquet"
    made = run(
        "features", "--data", data, "--as-of", "2023-12-31", "--out", out, "--value-tiers", "abc"
    )
    assert made.exit_code == 0, made.output
    assert set(pd.read_parquet(out)["value_tier"].dropna()) <= {"A", "B", "C"}
    bad = run("validate", "--data", data, "--value-tiers", "pyramids")
    assert bad.exit_code == 1, bad.output
    assert "value_tiers" in bad.output, "the message names the setting"
    assert "Input should be 'pyramid' or 'abc' (got 'pyramids')" in bad.output, bad.output


def test_promoting_an_unknown_target_names_it_and_what_is_registered(run):
    result = run("promote", "--target", "mortgage")
    assert result.exit_code == 1, result.output
    assert "no registered model for target 'mortgage'; registered: none" in result.output


def test_demo_data_refuses_an_unknown_flavour(run, tmp_path):
    result = run("demo-data", "--out", tmp_path / "demo", "--flavour", "retail")
    assert result.exit_code == 1, result.output
    assert "--flavour must be bank or saas, got 'retail'" in result.output, result.output
    assert not (tmp_path / "demo").exists(), "nothing is written"
