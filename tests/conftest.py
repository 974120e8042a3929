"""Shared fixtures: hand-made datasets, a demo base, and models trained on it in a real MLflow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from features.contract import Dataset, load_dataset
from features.demo import generate_demo_data
from features.labels import default_as_of
from tierwise.settings import Settings
from training.registry import promote
from training.train import TrainingConfig, TrainingResult, train_models


def base_tables() -> dict[str, pd.DataFrame]:
    """Three customers, valid under every rule of the contract."""
    return {
        "customers": pd.DataFrame(
            {
                "customer_id": ["A", "B", "C"],
                "signup_date": ["2023-01-10", "2023-03-01", "2023-06-15"],
                "closed_date": [None, "2024-02-01", None],
                "region": ["north", "south", None],
                "age": [34, 61, 25],
            }
        ),
        "transactions": pd.DataFrame(
            {
                "customer_id": ["A", "A", "B", "C"],
                "ts": [
                    "2023-02-01T10:00:00Z",
                    "2023-12-20T09:30:00Z",
                    "2023-05-05T12:00:00Z",
                    "2023-07-01T08:00:00Z",
                ],
                "amount": [120.0, -20.0, 55.5, 10.0],
                "product": ["checking", "checking", None, "savings"],
                "channel": ["web", "app", "branch", None],
            }
        ),
        "holdings": pd.DataFrame(
            {
                "customer_id": ["A", "B"],
                "product": ["checking", "savings"],
                "opened": ["2023-01-10", "2023-03-01"],
                "closed": [None, "2024-01-15"],
                "monthly_fee": [5.0, None],
            }
        ),
        "interactions": pd.DataFrame(
            {
                "customer_id": ["B", "B"],
                "ts": ["2023-11-01T10:00:00Z", "2023-12-01T10:00:00Z"],
                "kind": ["complaint", "inquiry"],
                "channel": ["phone", None],
                "satisfaction": [1.0, None],
            }
        ),
        "tiers": pd.DataFrame(
            {
                "customer_id": ["A", "B", "C", "A"],
                "tier": ["small", "ordinary", "small", "major"],
                "effective": ["2023-01-10", "2023-03-01", "2023-06-15", "2023-12-01"],
            }
        ),
    }


@pytest.fixture
def make_dataset(tmp_path: Path):
    """Write tables (name -> frame) as files into a fresh directory and return its path."""

    def make(
        tables: dict[str, pd.DataFrame] | None = None,
        settings: dict | None = None,
        fmt: str = "csv",
        name: str = "data",
    ) -> Path:
        root = tmp_path / name
        root.mkdir()
        for table, frame in (base_tables() if tables is None else tables).items():
            if fmt == "csv":
                frame.to_csv(root / f"{table}.csv", index=False)
            else:
                frame.to_parquet(root / f"{table}.parquet", index=False)
        if settings is not None:
            (root / "tierwise.yaml").write_text(yaml.safe_dump(settings))
        return root

    return make


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
    return generate_demo_data(
        tmp_path_factory.mktemp("demo") / "bank", customers=DEMO_CUSTOMERS, seed=7
    )


def train_in(home: Path, data: Path, **config) -> Trained:
    """Train on the demo data with the MLflow store under ``home``."""
    settings = Settings(home=home, mlflow_tracking_uri=None, threads=2)
    ds = load_dataset(data)
    result = train_models(ds, settings, default_as_of(ds, SNAPSHOTS), TrainingConfig(**config))
    return Trained(settings, data, result)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, demo_data) -> Trained:
    """Models trained and promoted once per session; tests must not move its aliases.

    Training registers challengers only; the promotion gate decides which become champions.
    """
    trained = train_in(tmp_path_factory.mktemp("home"), demo_data)
    promote(trained.settings)
    return trained
