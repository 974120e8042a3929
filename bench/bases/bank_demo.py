"""Tierwise's synthetic retail bank (``features.demo``), at a modest size.

Every table of the contract (tiers, seven products, five interaction kinds), three years
of dates: evaluated out of time like a real dated base.
"""

from __future__ import annotations

from pathlib import Path

from . import Base, out_of_time_dates

CUSTOMERS = 10_000  # at 20k Tierwise's training, most of the suite's time, roughly doubles
SNAPSHOTS = 6


def write(out: Path, seed: int = 0) -> Base:
    """Generate the demo bank into ``out``."""
    from features.demo import generate_demo_data

    path = generate_demo_data(out, customers=CUSTOMERS, seed=seed)
    evaluation, train = out_of_time_dates(path, SNAPSHOTS)
    return Base(
        name="bank_demo",
        path=path,
        source=f"features.demo.generate_demo_data ({CUSTOMERS:,} customers, synthetic)",
        protocol="out_of_time",
        eval_as_of=evaluation,
        train_as_of=train,
        kind="retail bank: tiers, products, interactions (synthetic)",
        notes="Tierwise's own demo: not public data, a sanity check beside the public bases",
    )
