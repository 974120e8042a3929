"""The integration fixtures live in tests/conftest.py (model tests share them)."""

from tests.conftest import DEMO_CUSTOMERS, SNAPSHOTS, Trained, train_in

__all__ = ["DEMO_CUSTOMERS", "SNAPSHOTS", "Trained", "train_in"]
