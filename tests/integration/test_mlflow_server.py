"""train -> register -> promote -> score against a real `mlflow server` process on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from features.contract import load_dataset
from features.labels import default_as_of
from models.registry import client, version_by_alias
from models.scoring import load_champions, score_customers
from tierwise.settings import Settings
from training.registry import promote
from training.train import TrainingConfig, train_models


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow_bin), "server",
        "--backend-store-uri", f"sqlite:///{root / 'backend.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = (root / "server.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert server.poll() is None, (root / "server.log").read_text()
        time.sleep(0.5)
    else:
        server.kill()
        pytest.fail(f"mlflow server did not come up: {(root / 'server.log').read_text()[-2000:]}")
    yield url
    server.terminate()
    server.wait(timeout=30)


def test_train_promote_score_through_a_tracking_server(mlflow_server, demo_data, tmp_path):
    # Given a tracking server; when trained twice, promoted and scored through it
    settings = Settings(home=tmp_path, mlflow_tracking_uri=mlflow_server, threads=2)
    ds = load_dataset(demo_data)
    dates = default_as_of(ds, 4)
    config = TrainingConfig(min_holdout_positives=20)
    first = train_models(ds, settings, dates, config)
    [gate] = promote(settings, target="churn")
    assert gate.promoted, gate.message  # churn beats its baseline and the floor on the demo
    second = train_models(ds, settings, dates, config.model_copy(update={"seed": 1}))
    decisions = {d.name: d for d in promote(settings, target="churn")}
    scores = score_customers(ds, "2026-06-30", load_champions(settings))
    # Then the registry behind the server holds both versions and the gate's decision
    churn = decisions["tierwise-churn"]
    assert churn.champion == "1" and churn.challenger == "2", churn
    mlflow_client = client(mlflow_server)
    champion = str(version_by_alias(mlflow_client, "tierwise-churn", "champion").version)
    assert champion == ("2" if churn.promoted else "1")
    assert "promotion" in mlflow_client.get_model_version("tierwise-churn", "2").tags
    assert f"tierwise-churn={champion}" in scores.model_versions.iloc[0]
    assert scores.churn_probability.between(0, 1).all()
    assert not list(tmp_path.glob("mlartifacts")), "artifacts go to the server, not the local home"
    assert first.run_id != second.run_id
