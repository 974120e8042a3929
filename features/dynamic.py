"""The dynamic feature families: columns named by a dataset's own values, in its own words.

A column per product and channel (``mix``), per held product (``holdings``), per
interaction kind and named interaction role (``interactions``) and per profile column
(``profile``). Which values a model has is frozen in its ``FeatureSpec`` (``features.spec``);
``features.catalogue`` lists these families with the fixed ones in column order.
"""

from __future__ import annotations

from features.dataset_settings import InteractionRoles
from features.feature import Feature, categorical, numeric
from features.spec import FeatureSpec, slugs

KIND_WINDOWS = (30, 90, 365)  # windows of the per-product and per-kind counts


def _words(text: str) -> str:
    """A product or channel name as it reads in a sentence, safe inside a format template."""
    return str(text).replace("_", " ").replace("{", "{{").replace("}", "}}")


def _with_article(text: str) -> str:
    """The name with "a"/"an" ("a mortgage"), or bare for mass nouns ("savings", "insurance")."""
    words = _words(text)
    if words.lower().endswith(("s", "ing", "ance", "ence")):
        return words
    return f"{'an' if words[:1].lower() in 'aeiou' else 'a'} {words}"


def mix_features(spec: FeatureSpec) -> list[Feature]:
    """Shares of last year's transactions per product and channel, then per-product counts and spend."""
    f = [
        numeric(
            f"mix_product_{s}_365d",
            f"share of last-365-day transactions on product {p}",
            f"{{pct:.0f}}% of last year's transactions on {_words(p)}",
            "mix",
            zero=f"no transaction on {_words(p)} in the last year",
            missing="no transaction in the last year",
        )
        for p, s in slugs(spec.products).items()
    ]
    f += [
        numeric(
            f"mix_channel_{s}_365d",
            f"share of last-365-day transactions through channel {c}",
            f"{{pct:.0f}}% of last year's transactions via {_words(c)}",
            "mix",
            zero=f"no transaction via {_words(c)} in the last year",
            missing="no transaction in the last year",
        )
        for c, s in slugs(spec.channels).items()
    ]
    for p, s in slugs(spec.products).items():
        words = _words(p)
        for w in KIND_WINDOWS:
            f.append(
                numeric(
                    f"product_{s}_count_{w}d",
                    f"transactions on product {p} in the last {w} days",
                    f"{{value:.0f}} {words} transaction{{s}} in the last {w} days",
                    "mix",
                    zero=f"no {words} transaction in the last {w} days",
                )
            )
            f.append(
                numeric(
                    f"product_{s}_spend_{w}d",
                    f"net amount on product {p} in the last {w} days",
                    f"{{num}} spent on {words} in the last {w} days",
                    "mix",
                    negative=f"{{abs_num}} refunded on {words} in the last {w} days",
                    zero=f"nothing spent on {words} in the last {w} days",
                )
            )
    return f


def holding_features(spec: FeatureSpec) -> list[Feature]:
    """Open products and their fees, each held product, then openings and closings."""
    if "holdings" not in spec.tables:
        return []
    return [
        numeric(
            "holdings_open_count",
            "open holdings",
            "{value:.0f} open product{s}",
            "holdings",
            zero="no open product",
        ),
        *_held(spec),
        numeric(
            "holdings_monthly_fees",
            "recurring monthly fees of open holdings",
            "pays {num} a month in product fees",
            "holdings",
            zero="pays no monthly product fees",
        ),
        *_holding_changes(),
    ]


def _held(spec: FeatureSpec) -> list[Feature]:
    """Whether each product is held, then how long and at what monthly fee."""
    held = [
        numeric(
            f"held_{s}",
            f"1 if an open {p} holding, else 0",
            f"holds {_with_article(p)}",
            "holdings",
            zero=f"does not hold {_with_article(p)}",
        )
        for p, s in slugs(spec.holding_products).items()
    ]
    for p, s in slugs(spec.holding_products).items():
        held += [
            numeric(
                f"held_{s}_days",
                f"days the oldest open {p} holding has been held (null: none open)",
                f"has held {_with_article(p)} for {{duration}}",
                "holdings",
                zero=f"opened {_with_article(p)} today",
                missing=f"does not hold {_with_article(p)}",
            ),
            numeric(
                f"fee_{s}",
                f"monthly fees of open {p} holdings",
                f"pays {{num}} a month for {_words(p)}",
                "holdings",
                zero=f"pays no monthly fee for {_words(p)}",
                reason=False,  # zero for a product not held: holds / does not hold says it
            ),
        ]
    return held


def _holding_changes() -> list[Feature]:
    """Fee changes, and products opened and closed lately."""
    return [
        numeric(
            "holdings_fee_change_90d",
            "monthly fees of open holdings now less those of 90 days before",
            "monthly fees {direction} by {abs_num} over the last 90 days",
            "holdings",
            zero="monthly fees unchanged over the last 90 days",
        ),
        numeric(
            "days_since_last_opened",
            "days since a holding was last opened (null: never)",
            "last opened a product {duration} ago",
            "holdings",
            zero="opened a product today",
        ),
        numeric(
            "days_since_last_closed",
            "days since a holding was last closed (null: never)",
            "closed a product {duration} ago",
            "holdings",
            zero="closed a product today",
        ),
        numeric(
            "holdings_opened_90d",
            "holdings opened in the last 90 days",
            "opened {value:.0f} product{s} in the last 90 days",
            "holdings",
            zero="opened no product in the last 90 days",
        ),
        numeric(
            "holdings_closed_90d",
            "holdings closed in the last 90 days",
            "closed {value:.0f} product{s} in the last 90 days",
            "holdings",
            zero="closed no product in the last 90 days",
        ),
    ]


def interaction_features(spec: FeatureSpec) -> list[Feature]:
    """Per-kind counts, recency and trend in the data's own words, then the named roles."""
    if "interactions" not in spec.tables:
        return []
    roles = spec.interaction_roles
    return [
        *_per_kind(spec.interaction_kinds),
        *_service(roles),
        *_engagement(roles),
    ]


def _per_kind(kinds: list[str]) -> list[Feature]:
    """Counts over ``KIND_WINDOWS``, days since the last one and the trend, for every kind."""
    f = []
    for kind, s in slugs(kinds).items():
        words = _words(kind)
        f += [
            numeric(
                f"kind_{s}_{w}d",
                f"interactions of kind {kind} in the last {w} days",
                f"{{value:.0f}} {words} event{{s}} in the last {w} days",
                "interactions",
                zero=f"no {words} in the last {w} days",
            )
            for w in KIND_WINDOWS
        ]
        f += [
            numeric(
                f"kind_{s}_days_since",
                f"days since the last interaction of kind {kind} in the last 365 days",
                f"last {words} {{duration}} ago",
                "interactions",
                zero=f"{words} today",
                missing=f"no {words} in the last year",
            ),
            numeric(
                f"kind_{s}_trend",
                f"{kind} in the last 30 days against the monthly rate of the 90 before: "
                "(a - b/3) / (b/3 + 1)",
                f"{words} events {{moved}} {{abs_pct:.0f}}% in the last 30 days "
                "against the three months before",
                "interactions",
                zero=f"{words} at the usual rate",
            ),
        ]
    return f


def _service(roles: InteractionRoles) -> list[Feature]:
    """Complaints (when a role names them), service contacts and satisfaction scores."""
    f = []
    if roles.complaint:
        f += [
            numeric(
                f"complaints_{w}d",
                f"complaints ({', '.join(roles.complaint)}) in the last {w} days",
                f"{{value:.0f}} complaint{{s}} in the last {w} days",
                "interactions",
                zero=f"no complaint in the last {w} days",
            )
            for w in (30, 90)
        ]
        f.append(
            numeric(
                "days_since_last_complaint",
                "days since the last complaint (null: none ever)",
                "last complained {duration} ago",
                "interactions",
                zero="complained today",
                missing="no complaint on record",
            )
        )
    f += [
        numeric(
            f"contacts_{w}d",
            f"service contacts (every kind but engagement) in the last {w} days",
            f"{{value:.0f}} service contact{{s}} in the last {w} days",
            "interactions",
            zero=f"no service contact in the last {w} days",
        )
        for w in (30, 90)
    ]
    f += [
        numeric(
            "satisfaction_last_365d",
            "last satisfaction score (1-5) in the last 365 days",
            "last satisfaction score {value:.0f} of 5",
            "interactions",
            missing="no satisfaction score in the last year",
        ),
        numeric(
            "satisfaction_mean_365d",
            "mean satisfaction score (1-5) over the last 365 days",
            "average satisfaction {value:.1f} of 5 over the last year",
            "interactions",
            missing="no satisfaction score in the last year",
        ),
    ]
    return f


def _engagement(roles: InteractionRoles) -> list[Feature]:
    """Engagement and its trend, when a role names the engagement kinds."""
    if not roles.engagement:
        return []
    return [
        numeric(
            "engagement_30d",
            f"engagement events ({', '.join(roles.engagement)}) in the last 30 days",
            "{value:.0f} engagement event{s} in the last 30 days",
            "interactions",
            zero="no engagement in the last 30 days",
        ),
        numeric(
            "engagement_trend",
            "engagement in the last 30 days against the monthly rate of the 90 before",
            "engagement {moved} {abs_pct:.0f}% in the last 30 days against the three months before",
            "interactions",
            zero="engagement at the usual rate",
        ),
    ]


def profile_features(spec: FeatureSpec) -> list[Feature]:
    """The customers' usable extra columns, as context: never a reason."""
    out = []
    names = slugs(list(spec.profile))
    for column, kind in spec.profile.items():
        name = f"profile_{names[column]}"
        label = _words(column)
        if kind == "categorical":
            out.append(
                categorical(
                    name, f"customer {column}", f"{label} is {{value}}", "profile", reason=False
                )
            )
        else:
            out.append(
                numeric(
                    name,
                    f"customer {column}",
                    f"{label} is {{num}}",
                    "profile",
                    reason=False,
                )
            )
    return out
