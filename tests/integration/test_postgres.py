"""Tierwise on a real PostgreSQL (the session's throwaway server, tests/pg.py), as on SQLite.

The online store and the decision log each get a fresh database. One small demo base is
written into PostgreSQL and read back as a data source with ``--settings``; models trained
on it go to an MLflow backend store in PostgreSQL, are promoted and loaded as champions. The
URLs carry the server's password, which no output, log or MLflow parameter may show.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from batch.online import build_rows
from features.contract import load_dataset
from features.demo import generate_demo_data
from features.spec import feature_spec
from features.urls import create_engine, safe_url
from models.registry import client
from models.scoring import load_champions, score_customers
from serving.decisions import DecisionLog, FeedbackConflictError, read_decision_log
from serving.store import OnlineStore, open_engine
from tests.pg import Cluster
from tests.unit.serving.test_decisions import NOW, make_decision
from tests.unit.serving.test_store import AS_OF, ROLES, make_info, make_row, models_for
from tierwise.cli import app
from tierwise.settings import Settings
from training.registry import EXPERIMENT, promote

CUSTOMERS = 1500  # the smallest demo base whose churn model trains and passes the gate
SNAPSHOTS = 3
SCORE_AS_OF = "2026-06-30"  # the demo base's data_end


# -- the online store and the decision log -----------------------------------------------------


def test_the_online_store_serves_what_build_rows_made_and_a_refresh_replaces_it(
    pg_url, make_dataset
):
    # Given the hand-made base's rows refreshed into a store in PostgreSQL
    ds = load_dataset(make_dataset(settings=ROLES))
    info, chunks = build_rows(ds, AS_OF, models_for(ds))
    store = OnlineStore(pg_url)
    assert store.engine.dialect.driver == "psycopg", "postgresql:// must use psycopg 3"
    store.refresh(chunks, info)
    # Then a customer reads back whole, with what the rows were built for
    got = store.get("B")
    assert got is not None and got.as_of == AS_OF
    assert got.held == ("savings",) and got.history["last_complaint_date"] == "2023-11-01"
    assert store.info().specs == [feature_spec(ds).to_dict()]
    assert store.customer_ids() == ["A", "B", "C"]
    # And a second refresh swaps in its rows in place of the first (the renamed table keeps
    # a primary key whose name PostgreSQL must not see twice)
    later = dt.date(2024, 2, 1)
    store.refresh([[make_row("Z", later, value=7.0)]], make_info(later))
    assert store.customer_ids() == ["Z"] and store.get("B") is None
    assert store.get("Z").value == 7.0 and store.info().as_of == later
    store.close()


def test_feedback_is_stored_once_a_retry_finds_it_and_a_restart_reads_it(pg_url):
    # Given a decision in a log in PostgreSQL, and feedback on one of its suggestions
    log = DecisionLog(pg_url)
    log.record(make_decision())
    first = log.add_feedback("d1", "d1-c", "declined", "a1", "has one", now=NOW)
    # When the call is retried
    retry = log.add_feedback("d1", "d1-c", "declined", "a1", "has one", now=NOW)
    # Then the retry finds the first row and adds none
    assert first.created and not retry.created, "only the first call creates the row"
    assert retry.feedback == first.feedback and log.count() == (1, 1)
    assert log.get("d1") == make_decision(), "every field of the decision is kept"
    # And a restarted service (a new log on the same database) reads both back
    restarted = DecisionLog(pg_url)
    assert [f.response for f in restarted.feedback("d1")] == ["declined"]
    assert restarted.declines("C1", since=NOW - dt.timedelta(days=30)) == {"credit_card": [NOW]}
    decisions, feedback = read_decision_log(pg_url, dt.date(2026, 7, 31))
    assert [d.decision_id for d in decisions] == ["d1"] and len(feedback) == 1
    log.close()
    restarted.close()


def test_another_response_for_the_same_suggestion_is_a_conflict(pg_url):
    log = DecisionLog(pg_url)
    log.record(make_decision())
    log.add_feedback("d1", "d1-c", "skipped", "a1", now=NOW)
    with pytest.raises(FeedbackConflictError, match="'skipped'"):
        log.add_feedback("d1", "d1-c", "accepted", "a1", now=NOW)
    assert [f.response for f in log.feedback("d1")] == ["skipped"], "the first answer stands"
    log.close()


def test_a_failed_statement_shows_neither_customer_data_nor_the_password(postgres, pg_url):
    engine = open_engine(pg_url)
    with pytest.raises(sa.exc.DBAPIError) as caught, engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO missing (name) VALUES (:name)"), {"name": "Ana Lima"})
    message = str(caught.value)
    assert "Ana Lima" not in message, "bound parameters must stay out of error messages"
    assert postgres.password not in message
    engine.dispose()


# -- a data source in PostgreSQL, and MLflow's backend store ----------------------------------


@dataclass
class PgBase:
    url: str  # postgresql://tierwise:<password>@127.0.0.1:<port>/<database>
    settings: Path  # the base's dataset settings, in a file of their own
    password: str


@pytest.fixture(scope="module")
def pg_base(postgres: Cluster, tmp_path_factory) -> PgBase:
    """A small demo base written into PostgreSQL, and its tierwise.yaml as a settings file."""
    folder = generate_demo_data(
        tmp_path_factory.mktemp("pg-demo") / "bank", customers=CUSTOMERS, seed=7
    )
    url = postgres.create_database()
    engine = create_engine(url)
    with engine.begin() as conn:
        for path in sorted(folder.glob("*.parquet")):
            frame = pd.read_parquet(path)
            frame.to_sql(path.stem, conn, index=False, chunksize=20_000, method=_copy)
    engine.dispose()
    settings = tmp_path_factory.mktemp("pg-settings") / "bank.yaml"
    shutil.copy(folder / "tierwise.yaml", settings)
    return PgBase(url, settings, postgres.password)


def _copy(table, conn, keys, rows) -> None:
    """pandas ``to_sql`` through PostgreSQL's COPY: one round trip per chunk."""
    columns = ", ".join(f'"{k}"' for k in keys)
    cursor = conn.connection.cursor()
    with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def cli(*args: object, env: dict[str, str]):
    """A ``tierwise`` command in this process, with no Tierwise or MLflow setting from outside."""
    unset = {k: None for k in os.environ if k.startswith("TIERWISE_") or k == "MLFLOW_TRACKING_URI"}
    return CliRunner().invoke(app, [str(a) for a in args], env={**unset, **env})


def test_validate_reads_a_postgresql_source_with_its_settings_file(pg_base, tmp_path):
    # Given the demo base in PostgreSQL, whose tier names only its settings know
    env = {"TIERWISE_HOME": str(tmp_path / "home")}
    # When validated without and with --settings
    refused = cli("validate", "--data", pg_base.url, env=env)
    accepted = cli("validate", "--data", pg_base.url, "--settings", pg_base.settings, env=env)
    # Then only the settings make the base valid, and the report names it without the password
    assert refused.exit_code == 1 and "tiers.tier: must be one of tier_order" in refused.output
    assert accepted.exit_code == 0, accepted.output
    assert f"customers {CUSTOMERS:,}" in accepted.output and "OK" in accepted.output
    assert accepted.output.startswith(safe_url(pg_base.url) + ":"), accepted.output
    for result in (refused, accepted):
        assert pg_base.password not in result.output, "the database password was printed"


@dataclass
class PgTrained:
    base: PgBase
    settings: Settings  # MLFLOW_TRACKING_URI: postgresql://, with the password
    output: str  # what `tierwise train` printed
    run_id: str


@pytest.fixture(scope="module")
def pg_trained(postgres: Cluster, pg_base: PgBase, tmp_path_factory) -> PgTrained:
    """`tierwise train` on the PostgreSQL base into an MLflow backend store in PostgreSQL."""
    home = tmp_path_factory.mktemp("pg-home")
    tracking = postgres.create_database()
    settings = Settings(home=home, mlflow_tracking_uri=tracking, threads=1)
    # With a database backend store and no server, MLflow would put artifacts in ./mlruns of
    # the working directory (training.registry redirects only SQLite's): keep them in home.
    mlflow.MlflowClient(settings.tracking_uri()).create_experiment(
        EXPERIMENT, artifact_location=(home / "mlartifacts").as_uri()
    )
    env = {"TIERWISE_HOME": str(home), "MLFLOW_TRACKING_URI": tracking, "TIERWISE_THREADS": "1"}
    result = cli(
        "train", "--data", pg_base.url, "--settings", pg_base.settings,
        "--snapshots", SNAPSHOTS, env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run_id = re.search(r"MLflow run (\w+)", result.output)
    assert run_id, result.output
    return PgTrained(pg_base, settings, result.output, run_id.group(1))


def test_train_prints_neither_password_and_hints_at_the_masked_store(pg_trained):
    output = pg_trained.output
    assert pg_trained.base.password not in output, "a database password was printed"
    assert "churn" in output and "run `tierwise promote`" in output
    shown = safe_url(pg_trained.settings.tracking_uri())
    assert f"mlflow ui --backend-store-uri {shown}" in output, output
    assert shown.startswith("postgresql+psycopg://tierwise:***@127.0.0.1:"), shown


def test_the_mlflow_run_names_its_dataset_without_the_password(pg_trained):
    run = client(pg_trained.settings.tracking_uri()).get_run(pg_trained.run_id)
    params = run.data.params
    assert params["dataset"] == safe_url(pg_trained.base.url), params["dataset"]
    leaked = [k for k, v in params.items() if pg_trained.base.password in v]
    assert not leaked, f"MLflow parameters hold the database password: {leaked}"


def test_a_champion_promoted_in_postgresql_loads_and_scores_the_postgresql_base(pg_trained):
    # Given the run's challengers in the PostgreSQL backend store; when put through the gate
    decisions = {d.name: d for d in promote(pg_trained.settings, target="churn")}
    assert decisions["tierwise-churn"].promoted, decisions["tierwise-churn"].message
    # Then the champion loads from there and scores the base read from PostgreSQL
    models = load_champions(pg_trained.settings)
    assert models.versions == {"tierwise-churn": "1"}, models.versions
    ds = load_dataset(pg_trained.base.url, settings_file=pg_trained.base.settings)
    scores = score_customers(ds, SCORE_AS_OF, models)
    assert len(scores) > CUSTOMERS / 2 and scores.churn_probability.between(0, 1).all()
    assert scores.model_versions.iloc[0] == "tierwise-churn=1"
