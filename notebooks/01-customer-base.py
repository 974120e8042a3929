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
# # The customer base: value pyramid, 80/20 curve, churn and holdings by tier
#
# A first look at a customer base in the data contract: who brings the value, how it is
# spread over the tiers, and how churn and product holdings differ between tiers.
#
# Paths come from the environment, as for the `tierwise` command: `TIERWISE_DATA` is the
# dataset (default `$TIERWISE_HOME/demo-data`, i.e. `.tierwise/demo-data` from the
# repository root after `make demo`).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from features.contract import load_dataset
from features.labels import build_labels, default_as_of
from features.tiers import assign_tiers, tier_names
from models.scoring import open_holdings
from monitoring.figures import tier_migrations, tier_pyramid, top_share, value_curve

home = Path(os.environ.get("TIERWISE_HOME", ".tierwise"))
data = Path(os.environ.get("TIERWISE_DATA", home / "demo-data"))
ds = load_dataset(data)
as_of = ds.settings.data_end
order = tier_names(ds)
print(f"{data}: tables {sorted(ds.tables)}, data end {as_of}, tiers (lowest first) {order}")

# %% [markdown]
# ## Size of the base

# %%
sizes = {
    table: ds.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    for table in sorted(ds.tables)
}
pd.Series(sizes, name="rows").to_frame()

# %% [markdown]
# ## The pyramid now
#
# The service tier of each customer in the population at the end of the data, with the
# 12-month value (net transactions plus recurring holding fees) that ranks them.

# %%
tiers = assign_tiers(ds, [as_of])
pyramid = tier_pyramid(tiers, order)
pyramid.style.format(
    {
        "share_customers": "{:.1%}",
        "share_value": "{:.1%}",
        "value": "{:,.0f}",
        "mean_value": "{:,.0f}",
    }
)

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
y = range(len(pyramid))[::-1]
ax.barh([v + 0.2 for v in y], pyramid["share_customers"], height=0.4, label="customers")
ax.barh([v - 0.2 for v in y], pyramid["share_value"], height=0.4, label="value")
ax.set_yticks(list(y), pyramid["tier"])
ax.set(xlabel="share", title=f"Tiers as of {as_of}")
ax.legend()
plt.show()

# %% [markdown]
# The service tier (from the `tiers` table) and the value tier (the project's own pyramid)
# need not agree: the table below counts customers by both.

# %%
pd.crosstab(tiers["tier"], tiers["value_tier"], margins=True)

# %% [markdown]
# ## The 80/20 curve

# %%
curve = value_curve(tiers["value"])
fig, ax = plt.subplots(figsize=(5, 4))
ax.plot(curve["share_customers"], curve["share_value"], label="customers by value")
ax.plot([0, 1], [0, 1], color="grey", linewidth=0.5, label="equal value")
ax.set(xlabel="share of customers (highest value first)", ylabel="share of value")
ax.legend()
plt.show()
print(
    f"top 20% of customers hold {top_share(tiers['value'], 0.2):.0%} of value; "
    f"top 5% hold {top_share(tiers['value'], 0.05):.0%}"
)

# %% [markdown]
# ## Tier migrations over the last year
#
# Customers by tier a year ago (rows) and now (columns); `(new)` joined since, `(left)`
# closed since.

# %%
year_ago = (pd.Timestamp(as_of) - pd.DateOffset(years=1)).date()
before = assign_tiers(ds, [year_ago])
tier_migrations(before, tiers, order)

# %% [markdown]
# ## Churn by tier
#
# Observed churn over the horizon for the last monthly as-of dates whose horizon lies
# inside the data, by the tier at the as-of date.

# %%
dates = default_as_of(ds, 6)
labels = build_labels(ds, dates, products=[])
past_tiers = assign_tiers(ds, dates)[["customer_id", "as_of", "tier"]]
churn = labels.merge(past_tiers, on=["customer_id", "as_of"])
by_tier = (
    churn.groupby("tier")["churn"]
    .agg(customers="count", churn_rate="mean")
    .reindex(list(reversed(order)))
)
by_tier.style.format({"churn_rate": "{:.1%}"})

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(by_tier.index, by_tier["churn_rate"])
ax.set(ylabel=f"churn within {ds.settings.horizon_days} days", title="Churn by tier")
plt.show()

# %% [markdown]
# ## Product holdings by tier
#
# Share of each tier's customers holding each product open at the end of the data.

# %%
held = open_holdings(ds, [as_of])
if held is None:
    print("no holdings table: nothing to show")
else:
    holders = held.merge(tiers[["customer_id", "tier"]], on="customer_id")
    counts = holders.groupby(["tier", "product"])["customer_id"].nunique().unstack(fill_value=0)
    sizes_by_tier = tiers.groupby("tier")["customer_id"].count()
    shares = counts.div(sizes_by_tier, axis=0).reindex(list(reversed(order)))
    display(shares.style.format("{:.0%}").background_gradient(axis=None))

# %%
if held is not None:
    products_per_customer = (
        held.groupby("customer_id")["product"]
        .nunique()
        .reindex(tiers["customer_id"], fill_value=0)
        .groupby(tiers.set_index("customer_id")["tier"])
        .mean()
        .reindex(list(reversed(order)))
    )
    print("mean number of products held, by tier:")
    print(products_per_customer.round(2).to_string())
