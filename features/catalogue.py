"""The feature catalogue: every model input with its meaning and plain-language reason.

One catalogue serves training (column order), scoring (the same columns whatever new
products appear: the dataset's dynamic features are frozen in a ``FeatureSpec`` saved with
the model) and reports (``render_reason`` turns a value into words an agent can say).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from features.contract import Dataset, InteractionRoles
from features.sql import ident
from features.values import present

SPEC_VERSION = 2
TOP_VALUES = 20  # products / channels / kinds modelled: the most frequent, so columns stay bounded
MAX_CATEGORIES = 100  # a profile column with more distinct values is an id or free text
MAX_UNIQUE_SHARE = 0.5  # ... and so is one where most values are unique
MIN_DISTINCT_FOR_SHARE = 10  # below this a column is never called an id (tiny bases)
# Column names that identify a person or hold free text: never features, whatever their values.
IDENTIFYING = re.compile(
    r"(^|_)(id|ids|uuid|guid|ref|name|names|surname|email|e_mail|phone|"
    r"mobile|tel|telephone|fax|address|street|addr|postcode|postal|zip|zipcode|ssn|nin|"
    r"passport|iban|account_number|card_number|ip_address|url|notes|note|comment|comments|"
    r"description|text|remarks)($|_)"
)
# Protected attributes: features only where dataset settings allow them (``allow_protected``),
# and never shown as reasons.
PROTECTED = re.compile(
    r"(^|_)(age|age_band|age_group|birth|birthday|birth_date|date_of_birth|dob|year_of_birth|"
    r"gender|sex|ethnicity|ethnic|ethnic_group|race|religion|religious|faith|marital|"
    r"marital_status|married|nationality|citizenship|national_origin|disability|disabled|"
    r"handicap|pregnancy|pregnant|sexual_orientation|orientation|caste|senior|senior_citizen|"
    r"female|male)($|_)"
)
OPTIONAL_TABLES = ("holdings", "interactions", "tiers")
FAMILIES = ("rfm", "trend", "mix", "holdings", "interactions", "tenure", "profile", "tier")


@dataclass(frozen=True)
class Feature:
    """One model input column.

    ``template`` is ``str.format``-ed with ``value`` and the derived fields of
    ``render_reason`` (``s``, ``pct``, ``abs_pct``, ``abs``, ``num``, ``abs_num``,
    ``direction``, ``moved``, ``duration``); ``zero`` (when the value is 0), ``missing``
    (when null) and ``negative`` (below 0) replace it where the general wording would read
    badly. An empty ``missing`` means a null value is no reason at all.
    """

    name: str
    description: str
    template: str
    kind: Literal["numeric", "categorical"]
    family: str
    zero: str = ""
    missing: str = ""
    negative: str = ""  # replaces the template below zero; else a money sum below zero is no reason
    reason: bool = True  # False: context (profile, ranks), never given to an agent as a reason


class FeatureSpec(BaseModel):
    """The dataset-dependent part of the feature set, frozen at training time.

    Saved with a model and passed back at scoring, so that scoring computes exactly the
    training columns: a product that first appears later adds no column.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(SPEC_VERSION, description="catalogue version the spec was made with")
    products: list[str] = Field(default_factory=list, description="transaction products, sorted")
    channels: list[str] = Field(default_factory=list, description="transaction channels, sorted")
    holding_products: list[str] = Field(default_factory=list, description="held products, sorted")
    interaction_kinds: list[str] = Field(default_factory=list, description="kinds seen, sorted")
    profile: dict[str, Literal["categorical", "numeric"]] = Field(
        default_factory=dict, description="customer profile columns used, in table order"
    )
    dropped_profile: dict[str, str] = Field(
        default_factory=dict, description="profile columns left out, with the reason"
    )
    protected: list[str] = Field(
        default_factory=list, description="profile columns used that are protected attributes"
    )
    interaction_roles: InteractionRoles = Field(
        default_factory=InteractionRoles, description="named meanings of interaction kinds"
    )
    tables: list[str] = Field(default_factory=list, description="optional tables present")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``from_dict`` reads it back)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """The spec from ``to_dict`` output (or parsed JSON).

        Raises:
            pydantic.ValidationError: the dict is not a spec of this version's shape.
        """
        return cls.model_validate(dict(data))

    def to_json(self) -> str:
        """The spec as indented JSON text."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        """The spec from ``to_json`` text.

        Raises:
            pydantic.ValidationError: the text is not a spec of this version's shape.
        """
        return cls.model_validate_json(text)


def feature_spec(ds: Dataset) -> FeatureSpec:
    """Derive the dynamic part of the feature set from a dataset.

    Products and channels: the ``TOP_VALUES`` most frequent by transaction rows (holdings
    rows for held products, interaction rows for kinds), sorted by name. Profile columns
    from ``ds.profile``, less those named like identifying data (``IDENTIFYING``),
    categoricals that look like ids or free text (more than ``MAX_CATEGORIES`` distinct
    values, or mostly unique values), and protected attributes (``PROTECTED``) that the
    dataset settings do not allow. The interaction roles are the dataset's settings.
    """
    con = ds.con
    products = _top(con, "transactions", "product")
    channels = _top(con, "transactions", "channel")
    holding_products = _top(con, "holdings", "product") if "holdings" in ds.tables else []
    kinds = _top(con, "interactions", "kind") if "interactions" in ds.tables else []
    allowed = set(ds.settings.allow_protected)
    profile, dropped = _usable_profile(con, ds.profile, allowed)
    return FeatureSpec(
        products=products,
        channels=channels,
        holding_products=holding_products,
        interaction_kinds=kinds,
        profile=profile,
        dropped_profile=dropped,
        protected=[c for c in profile if is_protected(c)],
        interaction_roles=ds.settings.interaction_roles,
        tables=[t for t in OPTIONAL_TABLES if t in ds.tables],
    )


def is_protected(column: str) -> bool:
    """Whether a column name reads as a protected attribute (age, gender, religion, ...)."""
    return bool(PROTECTED.search(slug(column)))


def is_identifying(column: str) -> bool:
    """Whether a column name reads as identifying data or free text (name, email, phone, ...)."""
    return bool(IDENTIFYING.search(slug(column)))


def _top(con, table: str, column: str) -> list[str]:
    rows = con.execute(
        f"""SELECT {column} FROM {table} WHERE {column} IS NOT NULL
            GROUP BY {column} ORDER BY count(*) DESC, {column} LIMIT {TOP_VALUES}"""
    ).fetchall()
    return sorted(r[0] for r in rows)


def _usable_profile(
    con, profile: Mapping[str, Literal["categorical", "numeric"]], allowed: set[str]
) -> tuple[dict[str, Literal["categorical", "numeric"]], dict[str, str]]:
    used: dict[str, Literal["categorical", "numeric"]] = {}
    dropped: dict[str, str] = {}
    for column in profile:
        if is_identifying(column):
            dropped[column] = "named like identifying data or free text"
        elif is_protected(column) and column not in allowed:
            dropped[column] = "a protected attribute (allow it with allow_protected)"
    profile = {c: k for c, k in profile.items() if c not in dropped}
    categoricals = [c for c, k in profile.items() if k == "categorical"]
    stats: dict[str, tuple[int, int]] = {}
    if categoricals:
        select = ", ".join(f"count(DISTINCT {ident(c)}), count({ident(c)})" for c in categoricals)
        row = con.execute(f"SELECT {select} FROM customers").fetchone()
        stats = {c: (row[2 * i], row[2 * i + 1]) for i, c in enumerate(categoricals)}
    for column, kind in profile.items():
        if kind == "categorical":
            distinct, present = stats[column]
            if distinct > MAX_CATEGORIES:
                dropped[column] = f"{distinct} distinct values (> {MAX_CATEGORIES})"
                continue
            if distinct >= MIN_DISTINCT_FOR_SHARE and distinct > MAX_UNIQUE_SHARE * present:
                dropped[column] = f"{distinct} distinct in {present} values (mostly unique)"
                continue
        used[column] = kind
    return used, dropped


# -- names -------------------------------------------------------------------------------------


def slug(text: str) -> str:
    """A snake_case fragment for a column name ("Credit Card" -> "credit_card")."""
    s = re.sub(r"[^0-9a-z]+", "_", str(text).lower()).strip("_")
    return s or "blank"


def slugs(values: list[str]) -> dict[str, str]:
    """Value -> unique slug, stable for a given list (collisions get _2, _3 in list order)."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for v in values:
        base = candidate = slug(v)
        n = 1
        while candidate in seen:
            n += 1
            candidate = f"{base}_{n}"
        seen.add(candidate)
        out[v] = candidate
    return out


def _words(text: str) -> str:
    """A product or channel name as it reads in a sentence, safe inside a format template."""
    return str(text).replace("_", " ").replace("{", "{{").replace("}", "}}")


def _with_article(text: str) -> str:
    """The name with "a"/"an" ("a mortgage"), or bare for mass nouns ("savings", "insurance")."""
    words = _words(text)
    if words.lower().endswith(("s", "ing", "ance", "ence")):
        return words
    return f"{'an' if words[:1].lower() in 'aeiou' else 'a'} {words}"


# -- the catalogue -----------------------------------------------------------------------------

WINDOWS = (30, 90, 180, 365)


def _n(name, desc, template, family, zero="", missing="", negative="", reason=True) -> Feature:
    return Feature(name, desc, template, "numeric", family, zero, missing, negative, reason)


def _c(name, desc, template, family, missing="", reason=True) -> Feature:
    return Feature(name, desc, template, "categorical", family, "", missing, "", reason)


def _rfm() -> list[Feature]:
    f = [
        _n(
            f"txn_count_{w}d",
            f"transactions in the last {w} days",
            f"{{value:.0f}} transaction{{s}} in the last {w} days",
            "rfm",
            zero=f"no transaction in the last {w} days",
        )
        for w in WINDOWS
    ]
    f += [
        _n(
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
        _n(
            "days_since_last_txn",
            "days since the last transaction (null: none ever)",
            "no transaction for {duration}",
            "rfm",
            zero="transacted today",
            missing="no transaction on record",
        ),
        _n(
            "txn_avg_amount_365d",
            "average transaction amount over the last 365 days",
            "average transaction of {num} over the last year",
            "rfm",
            negative="average refund of {abs_num} over the last year",
            missing="no transaction in the last year",
        ),
        _n(
            "active_months_12m",
            "months with a transaction, of the 12 equal months of the last 365 days",
            "active in {value:.0f} of the last 12 months",
            "rfm",
            zero="not active in any of the last 12 months",
        ),
        _n(
            "txn_mean_gap_days_365d",
            "mean days between transactions over the last 365 days (null: fewer than 2)",
            "a transaction every {num} days on average over the last year",
            "rfm",
            missing="too few transactions in the last year to judge regularity",
        ),
    ]


def _trend() -> list[Feature]:
    return [
        _n(
            "spend_change_90d",
            "net amount, last 90 days vs the 90 before: (a - b) / (|b| + 1)",
            "spend {moved} {abs_pct:.0f}% against the previous 90 days",
            "trend",
            zero="spend flat against the previous 90 days",
        ),
        _n(
            "txn_count_change_90d",
            "transaction count, last 90 days vs the 90 before: (a - b) / (b + 1)",
            "transactions {moved} {abs_pct:.0f}% against the previous 90 days",
            "trend",
            zero="as many transactions as in the previous 90 days",
        ),
        _n(
            "spend_slope_12m",
            "least-squares slope of monthly net amount over the 12 months of the last 365 days",
            "monthly spend trending {direction} by {abs_num} a month over the last year",
            "trend",
            zero="monthly spend steady over the last year",
        ),
    ]


def _mix(spec: FeatureSpec) -> list[Feature]:
    f = [
        _n(
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
        _n(
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
                _n(
                    f"product_{s}_count_{w}d",
                    f"transactions on product {p} in the last {w} days",
                    f"{{value:.0f}} {words} transaction{{s}} in the last {w} days",
                    "mix",
                    zero=f"no {words} transaction in the last {w} days",
                )
            )
            f.append(
                _n(
                    f"product_{s}_spend_{w}d",
                    f"net amount on product {p} in the last {w} days",
                    f"{{num}} spent on {words} in the last {w} days",
                    "mix",
                    negative=f"{{abs_num}} refunded on {words} in the last {w} days",
                    zero=f"nothing spent on {words} in the last {w} days",
                )
            )
    return f


def _holdings(spec: FeatureSpec) -> list[Feature]:
    if "holdings" not in spec.tables:
        return []
    held = [
        _n(
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
            _n(
                f"held_{s}_days",
                f"days the oldest open {p} holding has been held (null: none open)",
                f"has held {_with_article(p)} for {{duration}}",
                "holdings",
                zero=f"opened {_with_article(p)} today",
                missing=f"does not hold {_with_article(p)}",
            ),
            _n(
                f"fee_{s}",
                f"monthly fees of open {p} holdings",
                f"pays {{num}} a month for {_words(p)}",
                "holdings",
                zero=f"pays no monthly fee for {_words(p)}",
                reason=False,  # zero for a product not held: holds / does not hold says it
            ),
        ]
    return [
        _n(
            "holdings_open_count",
            "open holdings",
            "{value:.0f} open product{s}",
            "holdings",
            zero="no open product",
        ),
        *held,
        _n(
            "holdings_monthly_fees",
            "recurring monthly fees of open holdings",
            "pays {num} a month in product fees",
            "holdings",
            zero="pays no monthly product fees",
        ),
        _n(
            "holdings_fee_change_90d",
            "monthly fees of open holdings now less those of 90 days before",
            "monthly fees {direction} by {abs_num} over the last 90 days",
            "holdings",
            zero="monthly fees unchanged over the last 90 days",
        ),
        _n(
            "days_since_last_opened",
            "days since a holding was last opened (null: never)",
            "last opened a product {duration} ago",
            "holdings",
            zero="opened a product today",
        ),
        _n(
            "days_since_last_closed",
            "days since a holding was last closed (null: never)",
            "closed a product {duration} ago",
            "holdings",
            zero="closed a product today",
        ),
        _n(
            "holdings_opened_90d",
            "holdings opened in the last 90 days",
            "opened {value:.0f} product{s} in the last 90 days",
            "holdings",
            zero="opened no product in the last 90 days",
        ),
        _n(
            "holdings_closed_90d",
            "holdings closed in the last 90 days",
            "closed {value:.0f} product{s} in the last 90 days",
            "holdings",
            zero="closed no product in the last 90 days",
        ),
    ]


KIND_WINDOWS = (30, 90, 365)


def _interactions(spec: FeatureSpec) -> list[Feature]:
    """Per-kind counts, recency and trend in the data's own words, then the named roles."""
    if "interactions" not in spec.tables:
        return []
    f = []
    for kind, s in slugs(spec.interaction_kinds).items():
        words = _words(kind)
        f += [
            _n(
                f"kind_{s}_{w}d",
                f"interactions of kind {kind} in the last {w} days",
                f"{{value:.0f}} {words} event{{s}} in the last {w} days",
                "interactions",
                zero=f"no {words} in the last {w} days",
            )
            for w in KIND_WINDOWS
        ]
        f += [
            _n(
                f"kind_{s}_days_since",
                f"days since the last interaction of kind {kind} in the last 365 days",
                f"last {words} {{duration}} ago",
                "interactions",
                zero=f"{words} today",
                missing=f"no {words} in the last year",
            ),
            _n(
                f"kind_{s}_trend",
                f"{kind} in the last 30 days against the monthly rate of the 90 before: "
                "(a - b/3) / (b/3 + 1)",
                f"{words} events {{moved}} {{abs_pct:.0f}}% in the last 30 days "
                "against the three months before",
                "interactions",
                zero=f"{words} at the usual rate",
            ),
        ]
    roles = spec.interaction_roles
    if roles.complaint:
        f += [
            _n(
                f"complaints_{w}d",
                f"complaints ({', '.join(roles.complaint)}) in the last {w} days",
                f"{{value:.0f}} complaint{{s}} in the last {w} days",
                "interactions",
                zero=f"no complaint in the last {w} days",
            )
            for w in (30, 90)
        ]
        f.append(
            _n(
                "days_since_last_complaint",
                "days since the last complaint (null: none ever)",
                "last complained {duration} ago",
                "interactions",
                zero="complained today",
                missing="no complaint on record",
            )
        )
    f += [
        _n(
            f"contacts_{w}d",
            f"service contacts (every kind but engagement) in the last {w} days",
            f"{{value:.0f}} service contact{{s}} in the last {w} days",
            "interactions",
            zero=f"no service contact in the last {w} days",
        )
        for w in (30, 90)
    ]
    f += [
        _n(
            "satisfaction_last_365d",
            "last satisfaction score (1-5) in the last 365 days",
            "last satisfaction score {value:.0f} of 5",
            "interactions",
            missing="no satisfaction score in the last year",
        ),
        _n(
            "satisfaction_mean_365d",
            "mean satisfaction score (1-5) over the last 365 days",
            "average satisfaction {value:.1f} of 5 over the last year",
            "interactions",
            missing="no satisfaction score in the last year",
        ),
    ]
    if roles.engagement:
        f += [
            _n(
                "engagement_30d",
                f"engagement events ({', '.join(roles.engagement)}) in the last 30 days",
                "{value:.0f} engagement event{s} in the last 30 days",
                "interactions",
                zero="no engagement in the last 30 days",
            ),
            _n(
                "engagement_trend",
                "engagement in the last 30 days against the monthly rate of the 90 before",
                "engagement {moved} {abs_pct:.0f}% in the last 30 days "
                "against the three months before",
                "interactions",
                zero="engagement at the usual rate",
            ),
        ]
    return f


def _tenure() -> list[Feature]:
    return [
        _n(
            "tenure_days",
            "days since signup",
            "customer for {duration}",
            "tenure",
            zero="joined today",
        )
    ]


def _profile(spec: FeatureSpec) -> list[Feature]:
    out = []
    names = slugs(list(spec.profile))
    for column, kind in spec.profile.items():
        name = f"profile_{names[column]}"
        label = _words(column)
        if kind == "categorical":
            out.append(
                _c(name, f"customer {column}", f"{label} is {{value}}", "profile", reason=False)
            )
        else:
            out.append(
                _n(
                    name,
                    f"customer {column}",
                    f"{label} is {{num}}",
                    "profile",
                    reason=False,
                )
            )
    return out


def _tier() -> list[Feature]:
    return [
        _n(
            "value",
            "customer value: trailing 12-month net revenue plus recurring holdings revenue",
            "customer value of {num} a year",
            "tier",
            negative="more refunded than spent over the last year",
            zero="no value over the last year",
        ),
        _c("value_tier", "value tier (customer pyramid)", "in the {value} value tier", "tier"),
        _n(
            "value_tier_rank",
            "rank of the value tier (higher is more valuable)",
            "value tier {value:.0f} from the bottom",
            "tier",
            reason=False,
        ),
        _n(
            "value_percentile",
            "share of customers with lower value at the same date (0-1)",
            "more valuable than {pct:.0f}% of customers",
            "tier",
        ),
        _n(
            "gap_to_next_tier",
            "value still needed to reach the next value tier (null at the top)",
            "{num} of value short of the next tier",
            "tier",
            missing="already in the top value tier",
        ),
        _c("tier", "service tier at the date", "in the {value} tier", "tier"),
        _n(
            "tier_rank",
            "rank of the service tier in tier_order (higher is better)",
            "service tier {value:.0f} from the bottom",
            "tier",
            reason=False,
        ),
        _n(
            "days_in_tier",
            "days since the service tier last changed",
            "in the current tier for {duration}",
            "tier",
            zero="moved to this tier today",
            reason=False,  # years in a tier since signup is no reason an agent can use
        ),
        _n(
            "tier_changes_365d",
            "service tier changes in the last 365 days",
            "{value:.0f} tier change{s} in the last year",
            "tier",
            zero="no tier change in the last year",
        ),
        _n(
            "tier_ups_365d",
            "moves up a service tier in the last 365 days",
            "moved up {value:.0f} tier{s} in the last year",
            "tier",
            zero="no move up a tier in the last year",
        ),
        _n(
            "tier_downs_365d",
            "moves down a service tier in the last 365 days",
            "moved down {value:.0f} tier{s} in the last year",
            "tier",
            zero="no move down a tier in the last year",
        ),
    ]


def features_of(spec: FeatureSpec) -> list[Feature]:
    """Every feature for a spec, in the exact column order the pipeline writes."""
    return [
        *_rfm(),
        *_trend(),
        *_mix(spec),
        *_holdings(spec),
        *_interactions(spec),
        *_tenure(),
        *_profile(spec),
        *_tier(),
    ]


def feature_index(spec: FeatureSpec) -> dict[str, Feature]:
    """Feature name -> Feature for a spec (for reason rendering by column name)."""
    return {f.name: f for f in features_of(spec)}


# -- reasons -----------------------------------------------------------------------------------


def _duration(days: float) -> str:
    days = abs(days)
    if days < 120:
        n, unit = round(days), "day"
    elif days < 730:
        n, unit = math.floor(days / 30.44), "month"
    else:
        n, unit = math.floor(days / 365.25), "year"
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _num(value: float) -> str:
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def render_reason(feature: Feature, value: Any) -> str:
    """A feature's value as a short phrase an agent can read ("3 complaints in the last 90 days").

    Never raises, and never shows a raw field dump: a value with no fitting wording (null
    without ``missing``, infinite, a money sum below zero without ``negative``, or one the
    template cannot format) gives "", which callers leave out.
    """
    if not present(value):
        return feature.missing
    try:
        if feature.kind == "categorical":
            return feature.template.format(value=value)
        v = float(value)
        if math.isinf(v):
            return ""
        if v == 0 and feature.zero:
            return feature.zero
        template = feature.template
        if v < 0 and feature.negative:
            template = feature.negative
        elif v < 0 and "{num}" in template:
            return ""
        fields = {
            "value": v,
            "abs": abs(v),
            "num": _num(v),
            "abs_num": _num(abs(v)),
            "pct": 100 * v,
            "abs_pct": abs(100 * v),
            "direction": "up" if v >= 0 else "down",
            "moved": "rose" if v >= 0 else "fell",
            "duration": _duration(v),
            "s": "" if round(v) == 1 else "s",
        }
        return template.format(**fields)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        return ""


def merged_spec(specs: Sequence[FeatureSpec]) -> FeatureSpec:
    """One spec whose features include every feature of each of ``specs``.

    Models trained at different times may carry different specs (say, a product that
    appeared later); a feature name means the same definition in all of them, so the union
    of their dynamic parts computes every column each model needs.

    Raises:
        ValueError: no spec, or specs of different catalogue versions.
    """
    if not specs:
        raise ValueError("no feature spec to compute")
    if len({s.version for s in specs}) > 1:
        raise ValueError(f"models of different feature versions: {[s.version for s in specs]}")
    if len(specs) == 1:
        return specs[0]

    def union(field: str) -> list[str]:
        return sorted({v for s in specs for v in getattr(s, field)})

    profile: dict[str, Any] = {}
    for spec in specs:
        for name, kind in spec.profile.items():
            profile.setdefault(name, kind)
    roles = {s.interaction_roles.model_dump_json() for s in specs}
    if len(roles) > 1:  # a role family computed two ways cannot serve both models
        raise ValueError(f"models trained under different interaction roles: {sorted(roles)}")
    return FeatureSpec(
        version=specs[0].version,
        products=union("products"),
        channels=union("channels"),
        holding_products=union("holding_products"),
        interaction_kinds=union("interaction_kinds"),
        profile=profile,
        protected=union("protected"),
        interaction_roles=specs[0].interaction_roles,
        tables=union("tables"),
    )
