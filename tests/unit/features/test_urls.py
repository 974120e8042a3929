"""Database URLs: psycopg 3 for postgresql://, engines that hide their parameters, masked passwords."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from features.urls import create_engine, engine_url, safe_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://ana:pw@db:5432/base", "postgresql+psycopg://ana:pw@db:5432/base"),
        ("postgres://ana@db/base", "postgresql+psycopg://ana@db/base"),
        ("PostgreSQL://db/base", "postgresql+psycopg://db/base"),
    ],
)
def test_postgresql_urls_use_psycopg_3(url, expected):
    assert engine_url(url) == expected, "postgresql:// and postgres:// must not need psycopg2"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg2://ana@db/base",
        "postgresql+psycopg://ana@db/base",
        "sqlite:////tmp/online.db",
        "mysql+pymysql://ana@db/base",
        "http://127.0.0.1:5000",
        "/data/base",
    ],
)
def test_a_named_driver_other_databases_and_paths_are_left_alone(url):
    assert engine_url(url) == url


def test_an_engine_speaks_psycopg_3_and_hides_its_parameters():
    engine = create_engine("postgresql://ana:pw@127.0.0.1/base")  # no connection is made
    assert engine.dialect.driver == "psycopg"
    assert engine.hide_parameters, "bound parameters (customer data) stay out of errors and logs"


def test_a_failed_statement_does_not_show_its_parameters(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'base.db'}")
    with pytest.raises(sa.exc.DBAPIError) as caught, engine.connect() as conn:
        conn.execute(sa.text("INSERT INTO missing (name) VALUES (:name)"), {"name": "Ana Lima"})
    assert "Ana Lima" not in str(caught.value), "a customer's name must not reach the message"
    assert "hidden" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://ana:s3cret@db:5432/base", "postgresql://ana:***@db:5432/base"),
        ("postgresql+psycopg://ana:s3cret@db/base?sslmode=require", "postgresql+psycopg://ana:***@db/base?sslmode=require"),
        ("postgresql://ana:p%40ss@db/base", "postgresql://ana:***@db/base"),
        ("postgresql://ana:p@ss/w@db/base", "postgresql://ana:***@db/base"),
        ("postgresql://db/base?user=ana&password=s3cret", "postgresql://db/base?user=ana&password=***"),
        ("https://ana:s3cret@mlflow.example:5000", "https://ana:***@mlflow.example:5000"),
    ],
)  # fmt: skip
def test_passwords_are_masked(url, expected):
    assert safe_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ana@db/base",
        "postgresql://db:5432/base",
        "sqlite:////home/ana/online.db",
        "sqlite:///rel/with@sign.db",
        "http://127.0.0.1:5000",
        "/data/base",
        "data/base",
    ],
)
def test_urls_without_a_password_and_paths_are_shown_as_they_are(url):
    assert safe_url(url) == url


def test_a_path_object_is_shown_as_its_text():
    assert safe_url(Path("/data/base")) == "/data/base"
