"""Row splits keep time order and customers apart."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.fit import split_rows


def snapshots(dates: list[str], customers: int = 200) -> tuple[pd.Series, pd.Series]:
    as_of = pd.Series(np.repeat(pd.to_datetime(dates), customers))
    y = pd.Series(np.tile(np.arange(customers) % 5 == 0, len(dates)).astype(float))
    return as_of, y


def test_out_of_time_split_holds_out_the_latest_snapshot():
    as_of, y = snapshots(
        ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31", "2024-06-30"]
    )
    split = split_rows(as_of, y, horizon_days=90, seed=0)
    assert split.scheme == "out_of_time"
    held = split.valid | split.test
    assert (as_of[held] == pd.Timestamp("2024-06-30")).all()
    assert as_of[split.train].max() <= pd.Timestamp("2024-06-30") - pd.Timedelta(days=90), (
        "training labels must not look past the held-out date"
    )
    assert not (split.valid & split.test).any()
    assert abs(split.valid.sum() - split.test.sum()) <= 1


def test_single_snapshot_splits_customers_stratified():
    as_of, y = snapshots(["2024-06-30"], customers=1000)
    split = split_rows(as_of, y, horizon_days=90, seed=0)
    assert split.scheme == "customer_split"
    assert (split.train.astype(int) + split.valid + split.test == 1).all(), (
        "each row in exactly one part"
    )
    for part in (split.train, split.valid, split.test):
        assert abs(y[part].mean() - 0.2) < 0.02, "stratified: same positive rate in every part"


def test_split_is_deterministic_for_a_seed():
    as_of, y = snapshots(["2024-06-30"], customers=500)
    a, b = split_rows(as_of, y, 90, seed=1), split_rows(as_of, y, 90, seed=1)
    assert (a.test == b.test).all()
