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
# # Policy what-if: what agents would see under other settings and queue pressure
#
# Every customer of the base is put through the next-best-action policy
# (`serving.policy.rank_actions`, the same code the service runs) as if they called in,
# once per policy setting and queue pressure. The counts say how many suggestions of each
# kind agents would see, and the expected value what those suggestions are worth
# (calibrated probability x value), before anyone acts on them.
#
# Paths come from the environment, as for the `tierwise` command: `TIERWISE_HOME`
# (models, default `.tierwise`), `TIERWISE_DATA` (default `$TIERWISE_HOME/demo-data`),
# `TIERWISE_POLICY_FILE` (the policy the service runs; defaults without one).

# %%
import datetime as dt
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import yaml

from batch.online import build_rows
from features.contract import load_dataset
from models.scoring import load_champions, probability_column, score_customers
from serving.policy import PRESSURES, Context, Customer, PolicyConfig, rank_actions
from serving.suggest import Scorer
from tierwise.settings import Settings

settings = Settings()
data = Path(os.environ.get("TIERWISE_DATA", settings.home / "demo-data"))
ds = load_dataset(data)
as_of = ds.settings.data_end
models = load_champions(settings)
scorer = Scorer.from_models(models)
policy = (
    PolicyConfig.model_validate(yaml.safe_load(settings.policy_file.read_text()) or {})
    if settings.policy_file
    else PolicyConfig()
)
print(f"{len(models.models)} champion models: {', '.join(sorted(models.models))}; as of {as_of}")

# %% [markdown]
# ## The customers as the service sees them
#
# The online-store rows (tier, value, the way to the next tier, products held, profile)
# and the champions' calibrated probabilities, as of the end of the data.

# %%
scores = score_customers(ds, as_of, models).set_index("customer_id")
_, chunks = build_rows(ds, as_of, models)
rows = [row for chunk in chunks for row in chunk]
customers = []
for row in rows:
    features = json.loads(row["features"])
    customers.append(
        Customer(
            customer_id=row["customer_id"],
            tier=row["tier"],
            tier_rank=row["tier_rank"],
            next_tier=row["next_tier"],
            value=row["value"],
            probabilities={
                target: scores.at[row["customer_id"], probability_column(target)]
                for target in models.models
            },
            held=frozenset(json.loads(row["held"])),
            profile={
                column: features.get(name) for column, name in scorer.profile_features.items()
            },
            gap_to_next_tier=row["gap_to_next_tier"],
        )
    )
print(f"{len(customers):,} customers")
scores.filter(like="_probability").describe().round(3)

# %% [markdown]
# ## Policy settings to compare
#
# The control group is switched off here (it shows a random order on purpose); every
# other setting starts from the policy in use.

# %%
base = policy.model_dump()
scenarios = {
    "in use": {},
    "offers need p >= 5%": {"min_probability": 0.05},
    "retention sooner (bands 5% / 20%)": {"risk_bands": {"medium": 0.05, "high": 0.20}},
    "busy bar 100": {"high_pressure_min_expected_value": 100.0},
}
configs = {
    name: PolicyConfig.model_validate({**base, **changes, "control_share": 0.0})
    for name, changes in scenarios.items()
}
now = dt.datetime.combine(as_of, dt.time(12), tzinfo=dt.UTC)
max_suggestions = 3
shown = []
for name, config in configs.items():
    for pressure in PRESSURES:
        context = Context(channel="phone", queue_pressure=pressure, agent_id="what-if")
        for customer in customers:
            ranking = rank_actions(
                customer,
                context,
                config,
                {},
                now,
                max_suggestions,
                f"what-if:{customer.customer_id}",
                scorer.product_by_target,
            )
            shown += [
                {
                    "scenario": name,
                    "pressure": pressure,
                    "customer_id": customer.customer_id,
                    "tier": customer.tier,
                    "kind": s.kind,
                    "action": s.action,
                    "expected_value": s.expected_value,
                }
                for s in ranking.suggestions
            ]
shown = pd.DataFrame(shown)
print(f"{len(shown):,} suggestions over {len(configs) * len(PRESSURES)} settings x pressures")

# %% [markdown]
# ## Suggestions per 100 contacts, by kind

# %%
contacts = len(customers)
per_100 = (
    shown.groupby(["scenario", "pressure", "kind"])
    .size()
    .unstack("kind", fill_value=0)
    .reindex(pd.MultiIndex.from_product([list(configs), PRESSURES]), fill_value=0)
    .div(contacts / 100)
)
per_100.round(1)

# %%
fig, ax = plt.subplots(figsize=(11, 4))
per_100.plot.bar(stacked=True, ax=ax)
ax.set(ylabel="suggestions per 100 contacts", xlabel="")
ax.set_xticklabels([f"{s}\n{p}" for s, p in per_100.index], rotation=60, ha="right", fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Expected value and how many contacts get anything
#
# Under high pressure an agent gets at most one suggestion, and only one worth the time:
# fewer suggestions, but what is left carries most of the value.

# %%
summary = shown.groupby(["scenario", "pressure"]).agg(
    suggestions=("kind", "size"),
    customers_with_one=("customer_id", "nunique"),
    expected_value=("expected_value", "sum"),
)
summary = summary.reindex(pd.MultiIndex.from_product([list(configs), PRESSURES]), fill_value=0)
summary["share_of_contacts_with_a_suggestion"] = summary["customers_with_one"] / contacts
summary["expected_value_per_contact"] = summary["expected_value"] / contacts
summary["expected_value_per_suggestion"] = summary["expected_value"] / summary["suggestions"].where(
    summary["suggestions"] > 0
)
summary.drop(columns=["customers_with_one"]).style.format(
    {
        "share_of_contacts_with_a_suggestion": "{:.0%}",
        "expected_value": "{:,.0f}",
        "expected_value_per_contact": "{:,.2f}",
        "expected_value_per_suggestion": "{:,.2f}",
    }
)

# %% [markdown]
# ## Suggestions per 100 contacts by tier (policy in use, normal pressure)

# %%
in_use = shown[(shown.scenario == "in use") & (shown.pressure == "normal")]
tier_sizes = pd.Series([c.tier for c in customers]).value_counts()
by_tier = in_use.groupby(["tier", "kind"]).size().unstack("kind", fill_value=0)
by_tier = by_tier.div(tier_sizes.reindex(by_tier.index) / 100, axis=0)
by_tier["expected_value_per_contact"] = in_use.groupby("tier")["expected_value"].sum() / tier_sizes
by_tier.round(2)

# %% [markdown]
# ## What cross-sell would offer, by product (policy in use, normal pressure)

# %%
(
    in_use[in_use.kind == "cross_sell"]
    .groupby("action")["expected_value"]
    .agg(suggestions="size", mean_expected_value="mean")
    .sort_values("suggestions", ascending=False)
    .round(2)
)
