"""Dataset settings (``tierwise.yaml``): the business choices a dataset comes with.

Pure models: ``features.contract`` reads the file and command-line overrides into them,
``features.validation`` checks them against the data. The value tier presets (the customer
pyramid, ABC) live here because the settings name them.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SETTINGS_FILE = "tierwise.yaml"

# The project's own value tiers (the customer pyramid), lowest first.
VALUE_TIERS = ("small", "ordinary", "major", "VIP")


class ValueTiers(BaseModel):
    """How customers are cut into value tiers: names lowest first, one share each.

    ``quantile`` shares are of customers, ``cumulative_value`` shares of total value;
    the best customers fill the highest tier first.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    names: list[str] = Field(min_length=1, description="tier names, lowest first")
    shares: list[float] = Field(min_length=1, description="share of each tier, same order")
    method: Literal["quantile", "cumulative_value"] = "quantile"

    @model_validator(mode="after")
    def _consistent(self) -> ValueTiers:
        if len(self.shares) != len(self.names):
            raise ValueError(f"{len(self.names)} names but {len(self.shares)} shares")
        if len(set(self.names)) != len(self.names) or not all(self.names):
            raise ValueError(f"names must be unique and non-empty: {self.names}")
        if any(not 0 < s <= 1 for s in self.shares) or abs(sum(self.shares) - 1) > 1e-9:
            raise ValueError(f"shares must be positive and sum to 1: {self.shares}")
        return self


# Named schemes: the customer pyramid (50/30/15/5% of customers) and ABC 80/20 (A: the
# customers who bring the top 80% of value, B the next 15%, C the rest).
VALUE_TIER_PRESETS = {
    "pyramid": ValueTiers(names=list(VALUE_TIERS), shares=[0.50, 0.30, 0.15, 0.05]),
    "abc": ValueTiers(names=["C", "B", "A"], shares=[0.05, 0.15, 0.80], method="cumulative_value"),
}


class InteractionRoles(BaseModel):
    """Named meanings of interaction kinds: a dataset's own words, never the code's.

    Every kind gets features of its own whatever its role; roles add the named families
    (complaints, service contacts, satisfaction) and the reasons that speak of them.
    """

    model_config = ConfigDict(extra="forbid")

    complaint: list[str] = Field(default_factory=list, description="kinds that are complaints")
    engagement: list[str] = Field(
        default_factory=list,
        description="kinds that are use of the product, not service contacts (logins, events)",
    )
    satisfaction: list[str] | None = Field(
        None, description="kinds whose satisfaction scores count; default every kind"
    )


class DatasetSettings(BaseModel):
    """Business settings of a dataset (``tierwise.yaml``); command-line flags override them."""

    model_config = ConfigDict(extra="forbid")

    churn_definition: Literal["closed", "inactive"] | None = Field(
        None, description="closed, or inactive; default closed when any customer has a closed_date"
    )
    horizon_days: int = Field(90, ge=1, le=3650, description="prediction window H in days")
    tier_order: list[str] | None = Field(None, min_length=1, description="tier names, lowest first")
    cross_sell_products: list[str] | None = Field(None, description="products to model")
    exclude_columns: list[str] = Field(default_factory=list, description="never used as features")
    allow_protected: list[str] = Field(
        default_factory=list,
        description="protected customer columns (age, gender, ...) that may be features; "
        "never shown as reasons",
    )
    interaction_roles: InteractionRoles = Field(default_factory=InteractionRoles)
    value_tiers: Literal["pyramid", "abc"] | ValueTiers = Field(
        "pyramid", description="the value pyramid: pyramid, abc, or {names, shares, method}"
    )

    def value_scheme(self) -> ValueTiers:
        """The value tiers these settings name, a preset resolved."""
        if isinstance(self.value_tiers, str):
            return VALUE_TIER_PRESETS[self.value_tiers]
        return self.value_tiers

    data_end: dt.date | None = Field(None, description="last day the data covers")
