"""Session fixtures: a demo base and models trained on it, in a real MLflow (SQLite file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from features.contract import Dataset, load_dataset
from features.demo import generate_demo_data
from features.labels import default_as_of
from features.settings import Settings
from training.train import TrainingConfig, TrainingResult, train_models

DEMO_CUSTOMERS = 6000
SNAPSHOTS = 6


@dataclass
class Trained:
    settings: Settings
    data: Path
    result: TrainingResult

    def dataset(self) -> Dataset:
        return load_dataset(self.data)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    return generate_demo_data(tmp_path_factory.mktemp("demo") / "bank", customers=DEMO_CUSTOMERS, seed=7)


def train_in(home: Path, data: Path, **config) -> Trained:
    """Train on the demo data with the MLflow store under ``home``."""
    settings = Settings(home=home, mlflow_tracking_uri=None, threads=2)
    ds = load_dataset(data)
    result = train_models(ds, settings, default_as_of(ds, SNAPSHOTS), TrainingConfig(**config))
    return Trained(settings, data, result)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, demo_data) -> Trained:
    """Models trained once per session; tests must not move its aliases."""
    return train_in(tmp_path_factory.mktemp("home"), demo_data)
