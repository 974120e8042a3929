"""The feature catalogue: every model input with its meaning and plain-language reason.

One catalogue serves training (column order), scoring (the same columns whatever new
products appear: the dataset's dynamic features are frozen in a ``FeatureSpec`` saved with
the model, ``features.spec``) and reports (``features.feature.render_reason`` turns a value
into words an agent can say). The fixed families are declared here; those named by the
dataset's own values (mix, holdings, interactions, profile) in ``features.dynamic``.
"""

from __future__ import annotations

from features.dynamic import holding_features, interaction_features, mix_features, profile_features
from features.feature import Feature, categorical, numeric
from features.spec import FeatureSpec

FAMILIES = ("rfm", "trend", "mix", "holdings", "interactions", "tenure", "profile", "tier")
WINDOWS = (30, 90, 180, 365)


def features_of(spec: FeatureSpec) -> list[Feature]:
    """Every feature for a spec, in the exact column order the pipeline writes."""
    return [
        *_rfm(),
        *_trend(),
        *mix_features(spec),
        *holding_features(spec),
        *interaction_features(spec),
        *_tenure(),
        *profile_features(spec),
        *_value_tier(),
        *_service_tier(),
    ]


def feature_index(spec: FeatureSpec) -> dict[str, Feature]:
    """Feature name -> Feature for a spec (for reason rendering by column name)."""
    return {f.name: f for f in features_of(spec)}


# -- the fixed families ------------------------------------------------------------------------


def _rfm() -> list[Feature]:
    """Recency, frequency and net spend over ``WINDOWS``, and how regular the spending is."""
    f = [
        numeric(
            f"txn_count_{w}d",
            f"transactions in the last {w} days",
            f"{{value:.0f}} transaction{{s}} in the last {w} days",
            "rfm",
            zero=f"no transaction in the last {w} days",
        )
        for w in WINDOWS
    ]
    f += [
        numeric(
            f"txn_amount_{w}d",
            f"net transaction amount in the last {w} days",
            f"net spend of {{num}} in the last {w} days",
            "rfm",
            zero=f"no net spend in the last {w} days",
            negative=f"refunds exceeded spend by {{abs_num}} in the last {w} days",
        )
        for w in WINDOWS
    ]
    return [
        *f,
        numeric(
            "days_since_last_txn",
            "days since the last transaction (null: none ever)",
            "no transaction for {duration}",
            "rfm",
            zero="transacted today",
            missing="no transaction on record",
        ),
        numeric(
            "txn_avg_amount_365d",
            "average transaction amount over the last 365 days",
            "average transaction of {num} over the last year",
            "rfm",
            negative="average refund of {abs_num} over the last year",
            missing="no transaction in the last year",
        ),
        numeric(
            "active_months_12m",
            "months with a transaction, of the 12 equal months of the last 365 days",
            "active in {value:.0f} of the last 12 months",
            "rfm",
            zero="not active in any of the last 12 months",
        ),
        numeric(
            "txn_mean_gap_days_365d",
            "mean days between transactions over the last 365 days (null: fewer than 2)",
            "a transaction every {num} days on average over the last year",
            "rfm",
            missing="too few transactions in the last year to judge regularity",
        ),
    ]


def _trend() -> list[Feature]:
    """Spend and transactions against the period before, and the monthly spend slope."""
    return [
        numeric(
            "spend_change_90d",
            "net amount, last 90 days vs the 90 before: (a - b) / (|b| + 1)",
            "spend {moved} {abs_pct:.0f}% against the previous 90 days",
            "trend",
            zero="spend flat against the previous 90 days",
        ),
        numeric(
            "txn_count_change_90d",
            "transaction count, last 90 days vs the 90 before: (a - b) / (b + 1)",
            "transactions {moved} {abs_pct:.0f}% against the previous 90 days",
            "trend",
            zero="as many transactions as in the previous 90 days",
        ),
        numeric(
            "spend_slope_12m",
            "least-squares slope of monthly net amount over the 12 months of the last 365 days",
            "monthly spend trending {direction} by {abs_num} a month over the last year",
            "trend",
            zero="monthly spend steady over the last year",
        ),
    ]


def _tenure() -> list[Feature]:
    """How long the customer has been with us."""
    return [
        numeric(
            "tenure_days",
            "days since signup",
            "customer for {duration}",
            "tenure",
            zero="joined today",
        )
    ]


def _value_tier() -> list[Feature]:
    """The value pyramid (``features.tiers``): value, tier, rank, percentile, gap to the next."""
    return [
        numeric(
            "value",
            "customer value: trailing 12-month net revenue plus recurring holdings revenue",
            "customer value of {num} a year",
            "tier",
            negative="more refunded than spent over the last year",
            zero="no value over the last year",
        ),
        categorical(
            "value_tier", "value tier (customer pyramid)", "in the {value} value tier", "tier"
        ),
        numeric(
            "value_tier_rank",
            "rank of the value tier (higher is more valuable)",
            "value tier {value:.0f} from the bottom",
            "tier",
            reason=False,
        ),
        numeric(
            "value_percentile",
            "share of customers with lower value at the same date (0-1)",
            "more valuable than {pct:.0f}% of customers",
            "tier",
        ),
        numeric(
            "gap_to_next_tier",
            "value still needed to reach the next value tier (null at the top)",
            "{num} of value short of the next tier",
            "tier",
            missing="already in the top value tier",
        ),
    ]


def _service_tier() -> list[Feature]:
    """The service tier (the tiers table's, else the value tier) and its changes."""
    return [
        categorical("tier", "service tier at the date", "in the {value} tier", "tier"),
        numeric(
            "tier_rank",
            "rank of the service tier in tier_order (higher is better)",
            "service tier {value:.0f} from the bottom",
            "tier",
            reason=False,
        ),
        numeric(
            "days_in_tier",
            "days since the service tier last changed",
            "in the current tier for {duration}",
            "tier",
            zero="moved to this tier today",
            reason=False,  # years in a tier since signup is no reason an agent can use
        ),
        numeric(
            "tier_changes_365d",
            "service tier changes in the last 365 days",
            "{value:.0f} tier change{s} in the last year",
            "tier",
            zero="no tier change in the last year",
        ),
        numeric(
            "tier_ups_365d",
            "moves up a service tier in the last 365 days",
            "moved up {value:.0f} tier{s} in the last year",
            "tier",
            zero="no move up a tier in the last year",
        ),
        numeric(
            "tier_downs_365d",
            "moves down a service tier in the last 365 days",
            "moved down {value:.0f} tier{s} in the last year",
            "tier",
            zero="no move down a tier in the last year",
        ),
    ]
