# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Model evaluation: the champions, from their MLflow runs
#
# Everything here comes from the registry and the training runs of the models under the
# `champion` alias: the metrics logged at training, the held-out rows (the latest training
# snapshot, never used to fit), and the models themselves. Nothing is retrained.
#
# Paths come from the environment, as for the `tierwise` command (`TIERWISE_HOME`,
# default `.tierwise`; `MLFLOW_TRACKING_URI` if the registry lives on a server). Run
# `make demo`, `tierwise train` first.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from IPython.display import Image, display

from features.catalogue import feature_index
from features.spec import FeatureSpec
from models.metrics import calibration_points, decile_lift, score_metrics, top_decile
from models.registry import CHAMPION, client, load_aliased
from serving.reasons import top_reasons
from tierwise.settings import Settings

settings = Settings()
uri = settings.tracking_uri()
mlflow.set_tracking_uri(uri)
models = load_aliased(uri, CHAMPION, threads=settings.threads)
mlflow_client = client(uri)
runs = {m.run_id: mlflow_client.get_run(m.run_id) for m in models.values()}
scratch = Path(tempfile.mkdtemp(prefix="tierwise-notebook-"))
pd.DataFrame(
    [
        {
            "target": target,
            "model": m.name,
            "version": m.version,
            "run": m.run_id,
            "trained as of": runs[m.run_id].data.params.get("as_of", "").replace(",", ", "),
        }
        for target, m in sorted(models.items())
    ]
)

# %% [markdown]
# ## Metrics logged at training
#
# On the held-out rows: discrimination (ROC and PR AUC, against a logistic regression on
# recency, frequency and monetary value), calibration (ECE and Brier before and after
# calibration) and the top decile (lift and the share of positives it captures).

# %%
columns = [
    "roc_auc",
    "baseline_roc_auc",
    "pr_auc",
    "baseline_pr_auc",
    "ece_raw",
    "ece",
    "brier_raw",
    "brier",
    "lift_top_decile",
    "capture_top_decile",
    "base_rate",
    "rows",
]
metrics = pd.DataFrame(
    {
        target: {c: runs[m.run_id].data.metrics.get(f"{target}.{c}") for c in columns}
        for target, m in sorted(models.items())
    }
).T
metrics.style.format("{:.3f}").format({"rows": "{:,.0f}"})

# %% [markdown]
# The evaluation plots the training run logged, for churn:

# %%
churn = models.get("churn") or next(iter(models.values()))
target = churn.predictor.target
plot = mlflow.artifacts.download_artifacts(
    run_id=churn.run_id, artifact_path=f"plots/{target}_evaluation.png", dst_path=str(scratch)
)
display(Image(filename=plot))

# %% [markdown]
# ## The held-out rows, scored again by the champion
#
# The run keeps its held-out rows (features and label); scoring them again must give the
# logged figures back.

# %%
holdout = {}
for target, m in sorted(models.items()):
    path = mlflow.artifacts.download_artifacts(
        run_id=m.run_id, artifact_path=f"holdout/{target}.parquet", dst_path=str(scratch)
    )
    rows = pd.read_parquet(path)
    y = rows.pop("__label__").to_numpy(dtype=float)
    holdout[target] = (rows, y, m.predictor.predict_frame(rows))
pd.DataFrame(
    {
        target: {
            "ROC AUC now": score_metrics(y, p)["roc_auc"],
            "ROC AUC logged": runs[models[target].run_id].data.metrics[f"{target}.roc_auc"],
            "rows": len(y),
        }
        for target, (_, y, p) in holdout.items()
    }
).transpose()

# %% [markdown]
# ## Calibration
#
# Observed rate against mean predicted probability in ten equal-frequency bins: the policy
# multiplies probabilities by values, so they must mean what they say.

# %%
fig, axes = plt.subplots(1, len(holdout), figsize=(4.5 * len(holdout), 3.8), squeeze=False)
for ax, (target, (_, y, p)) in zip(axes[0], holdout.items(), strict=True):
    observed, predicted = calibration_points(y, p)
    top = max(observed.max(), predicted.max())
    ax.plot(predicted, observed, marker="o")
    ax.plot([0, top], [0, top], color="grey", linewidth=0.5)
    ax.set(title=target, xlabel="mean predicted", ylabel="observed rate")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Lift by score decile, and by tier
#
# Lift of each score decile (highest scores first) over the base rate; then, within each
# service tier, the top-decile lift, so a model that only separates tiers shows itself.

# %%
fig, axes = plt.subplots(1, len(holdout), figsize=(4.5 * len(holdout), 3.5), squeeze=False)
for ax, (target, (_, y, p)) in zip(axes[0], holdout.items(), strict=True):
    lift = decile_lift(y, p)
    ax.bar(np.arange(1, len(lift) + 1), lift)
    ax.axhline(1, color="grey", linewidth=0.5)
    ax.set(title=target, xlabel="decile (1 = highest scores)", ylabel="lift")
fig.tight_layout()
plt.show()

# %%
by_tier = []
for target, (rows, y, p) in holdout.items():
    if "tier" not in rows:
        continue
    for tier, index in rows.groupby("tier").groups.items():
        mask = rows.index.isin(index)
        lift, capture = top_decile(y[mask], p[mask])
        figures = score_metrics(y[mask], p[mask])
        by_tier.append(
            {
                "target": target,
                "tier": tier,
                "rows": int(mask.sum()),
                "base_rate": figures["base_rate"],
                "mean_score": float(p[mask].mean()),
                "roc_auc": figures["roc_auc"],
                "top_decile_lift": lift,
                "top_decile_capture": capture,
            }
        )
pd.DataFrame(by_tier).set_index(["target", "tier"]).style.format("{:.3f}").format(
    {"rows": "{:,.0f}"}
)

# %% [markdown]
# The same slices as logged by the training run (`slices/<target>_by_tier.json`):

# %%
slices = {
    target: mlflow.artifacts.load_dict(f"runs:/{m.run_id}/slices/{target}_by_tier.json")
    for target, m in sorted(models.items())
}
pd.concat({t: pd.DataFrame(s).T for t, s in slices.items()}, names=["target", "tier"])

# %% [markdown]
# ## Global reasons: what drives each model
#
# Mean absolute contribution (TreeSHAP, in log-odds) of each feature over the held-out
# rows, with the catalogue's plain description.

# %%
sample = 1000
for target, (rows, _, _) in holdout.items():
    predictor = models[target].predictor
    index = feature_index(FeatureSpec.from_dict(models[target].spec))
    part = rows.head(sample)
    contributions = predictor.contributions(predictor.encoding.matrix(part))[:, :-1]
    strength = pd.Series(
        np.abs(contributions).mean(axis=0), index=predictor.encoding.features, name="mean |SHAP|"
    ).sort_values(ascending=False)
    top = strength.head(12).to_frame()
    top["description"] = [index[f].description if f in index else "" for f in top.index]
    print(f"{target}: {len(part)} held-out rows")
    display(top.style.format({"mean |SHAP|": "{:.3f}"}))

# %% [markdown]
# ## Per-customer reasons
#
# For the three held-out customers the churn model ranks highest: the features that push
# their score up most, in the words an agent sees (`serving.reasons.top_reasons`).

# %%
target = churn.predictor.target
rows, y, p = holdout[target]
predictor = churn.predictor
index = feature_index(FeatureSpec.from_dict(churn.spec))
for position in np.argsort(-p, kind="stable")[:3]:
    values = {k: (None if pd.isna(v) else v) for k, v in rows.iloc[position].items()}
    reasons = top_reasons(predictor, predictor.encoding.row(values), values, index, k=3)
    outcome = "churned" if y[position] == 1 else "stayed"
    print(f"p({target}) = {p[position]:.2f}, {outcome} within the horizon")
    for reason in reasons:
        print(f"  - {reason.text}  (+{reason.contribution:.2f} log-odds)")
