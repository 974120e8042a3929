"""The installation's settings: the MLflow URI a client is given."""

from __future__ import annotations

from tierwise.settings import Settings


def test_a_postgresql_tracking_uri_uses_psycopg_3(tmp_path):
    settings = Settings(home=tmp_path, mlflow_tracking_uri="postgresql://ana:pw@db/mlflow")
    assert settings.tracking_uri() == "postgresql+psycopg://ana:pw@db/mlflow"


def test_other_tracking_uris_and_the_default_are_left_alone(tmp_path):
    server = Settings(home=tmp_path, mlflow_tracking_uri="http://127.0.0.1:5000")
    assert server.tracking_uri() == "http://127.0.0.1:5000"
    embedded = Settings(home=tmp_path, mlflow_tracking_uri=None)
    assert embedded.tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
