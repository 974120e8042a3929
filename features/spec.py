"""What a customer base offers the feature set, frozen in a ``FeatureSpec``.

The dataset-dependent part of the features: the products, channels, held products and
interaction kinds modelled (the most frequent), the usable profile columns (never those
named like identifying data; protected attributes only where the dataset settings allow
them), the interaction roles and the optional tables present. Saved with a model and passed
back at scoring so that scoring computes exactly the training columns; ``merged_spec``
serves several models at once. ``slug``/``slugs`` turn these values into column names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from features.contract import Dataset
from features.dataset_settings import InteractionRoles
from features.sql import ident

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
