"""The nightly batch under caps: the allocation across the whole base on the trained demo."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from batch.run import BatchOptions, read_output, run_batch
from features.contract import load_dataset
from models.scoring import load_champions
from serving.policy import PolicyConfig

AS_OF = dt.date(2026, 3, 31)
TOP = 2


def offered(frame: pd.DataFrame) -> pd.Series:
    actions = [frame[f"suggestion_{i}_action"] for i in range(1, TOP + 1)]
    return pd.concat(actions).dropna()


def test_the_batch_allocates_within_every_cap_and_records_what_a_cap_dropped(trained, tmp_path):
    # Given the uncapped run's offers, and caps: its most offered action at 25, 300 in all
    models = load_champions(trained.settings)
    options = BatchOptions(top=TOP, chunk_rows=2000)
    free = read_output(
        run_batch(
            load_dataset(trained.data), AS_OF, models, PolicyConfig(), tmp_path / "a", options
        ).out
    )
    busiest = offered(free).value_counts().idxmax()
    policy = PolicyConfig.model_validate(
        {"capacity": {"actions": {busiest: {"offers": 25}}, "channels": {"batch": 300}}}
    )
    # When the run allocates under them
    capped = read_output(
        run_batch(load_dataset(trained.data), AS_OF, models, policy, tmp_path / "b", options).out
    )
    # Then no cap is exceeded, nobody gets more than TOP, and what a cap took off is recorded
    shown = offered(capped)
    assert (shown == busiest).sum() <= 25, "the action's stock holds"
    assert len(shown) == 300, "the channel's 300 offers are all used (far fewer than free)"
    assert "capped_actions" not in free.columns, "without caps the output is as before"
    dropped = capped["capped_actions"].map(list)
    assert dropped.map(len).sum() >= len(offered(free)) - 300
    assert any(busiest in d for d in dropped), "a customer's capped offer is named"
    assert len(capped) == len(free)
