"""CDNOW's purchase log (``lifetimes``: CDNOW_master.txt), a non-contractual retail base.

23,570 customers who made their first purchase at CDNOW in the first quarter of 1997, and
their 69,659 purchases (date, CDs, dollars) to the end of June 1998. A customer signs up
on the day of the first purchase and never closes; churn is ``inactive`` (no purchase in
the horizon after one in the year before). Real dates, so the protocol is out of time:
monthly training snapshots from July to December 1997, evaluation at 31 March 1998,
whose 90-day horizon ends inside the data.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from . import Base, Unavailable, utc, write_tables

HORIZON = 90
DATA_END = dt.date(1998, 6, 30)
EVAL_AS_OF = dt.date(1998, 3, 31)
# Six month-ends: enough history for a year-long window to fill, and a suite that stays short.
TRAIN_AS_OF = [
    dt.date(1997, 7, 31), dt.date(1997, 8, 31), dt.date(1997, 9, 30),
    dt.date(1997, 10, 31), dt.date(1997, 11, 30), dt.date(1997, 12, 31),
]  # fmt: skip


def load() -> pd.DataFrame:
    """The purchase log as shipped in the ``lifetimes`` wheel.

    Read from the package's folder without importing it: ``lifetimes.datasets`` needs
    ``pkg_resources``, which recent setuptools no longer ship.
    """
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable("pip install lifetimes")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "CDNOW_master.txt"
    return pd.read_csv(
        path,
        sep=r"\s+",
        header=0,
        names=["customer_id", "date", "cds", "dollars"],
        dtype={"customer_id": str, "date": str},
    )


def write(out: Path, seed: int = 0) -> Base:
    """Write the CDNOW base into ``out`` (customers, transactions)."""
    log = load()
    rng = np.random.default_rng(seed)
    day = pd.to_datetime(log["date"], format="%Y%m%d")
    ids = "C" + log["customer_id"].str.zfill(5)
    # Purchases carry a date only: a time of day keeps several on one day apart.
    ts = day + pd.to_timedelta(rng.integers(8 * 3600, 22 * 3600, len(log)), unit="s")
    transactions = pd.DataFrame(
        {
            "customer_id": ids,
            "ts": utc(ts),
            "amount": log["dollars"].to_numpy(),
            # The log has no product line; basket size is the closest thing to one.
            "product": np.where(log["cds"] > 1, "multi_cd", "single_cd"),
            "channel": None,
        }
    )
    customers = (
        pd.DataFrame({"customer_id": ids, "signup_date": day.dt.date})
        .groupby("customer_id", as_index=False)["signup_date"]
        .min()
    )
    customers["closed_date"] = None
    settings = {
        "churn_definition": "inactive",
        "horizon_days": HORIZON,
        "data_end": DATA_END.isoformat(),
    }
    path = write_tables(out, {"customers": customers, "transactions": transactions}, settings)
    return Base(
        name="cdnow",
        path=path,
        source="lifetimes CDNOW_master.txt (CDNOW purchases 1997-01 .. 1998-06)",
        protocol="out_of_time",
        eval_as_of=EVAL_AS_OF,
        train_as_of=TRAIN_AS_OF,
        kind="non-contractual retail (churn = inactive)",
        notes="real dates; signup = first purchase; no profile columns",
    )
