"""Point-in-time features in DuckDB SQL: one row per ``(customer_id, as_of)`` of the spine.

Every as-of date is computed in one query by joining the spine to the tables; a row dated
after an as-of date never reaches that date's features. Transactions are read through one
range join bounded to the 365 days before each date and aggregated with FILTER clauses;
recency beyond that year is looked up only for the spine rows with no transaction in it.
The SQL keeps to the portable subset of docs/design.md so it can be transpiled to Spark SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.catalogue import features_of
from features.contract import Dataset
from features.dynamic import KIND_WINDOWS
from features.spec import FeatureSpec, feature_spec, slugs
from features.spine import register_spine
from features.sql import ident, literal
from features.tiers import tier_sql

_MONTHS = 12  # the 365-day window split into 12 equal months for the slope and active months
# Closed-form least squares over x = 0..11 with every month present (zero when idle):
# slope = (n*Sxy - Sx*Sy) / (n*Sxx - Sx^2), Sx = 66, n*Sxx - Sx^2 = 1716.
_SX = _MONTHS * (_MONTHS - 1) // 2
_DENOM = _MONTHS * sum(x * x for x in range(_MONTHS)) - _SX * _SX


@dataclass
class _Family:
    """SQL pieces of one feature family: CTEs, joins onto the spine ``s``, column exprs."""

    ctes: list[tuple[str, str]] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    exprs: dict[str, str] = field(default_factory=dict)


def feature_sql(
    ds: Dataset,
    spec: FeatureSpec,
    spine: str = "spine",
    *,
    families: Collection[str] | None = None,
) -> str:
    """One SELECT computing every feature of ``spec`` for every row of ``spine``.

    Args:
        ds: the dataset (its typed views are read).
        spec: the dynamic feature set (``feature_spec`` of the training data).
        spine: a table or view with ``customer_id`` and ``as_of DATE``.
        families: only these feature families (catalogue names); all by default.

    Returns:
        SQL with columns ``customer_id, as_of`` then ``features_of(spec)`` in order,
        numerics DOUBLE and categoricals VARCHAR, ordered by customer_id, as_of. Features
        of a table the spec has but the dataset lacks come out null.
    """
    features = [f for f in features_of(spec) if families is None or f.family in families]
    wanted = {f.family for f in features}
    builders = [
        ({"rfm", "trend", "mix"}, lambda: _transactions(spec, spine)),
        ({"holdings"}, lambda: _holdings(ds, spec, spine)),
        ({"interactions"}, lambda: _interactions(ds, spec, spine)),
        ({"tenure", "profile"}, lambda: _customers(ds, spec)),
        ({"tier"}, lambda: _tiers(ds, spine)),
    ]
    parts = [build() for covers, build in builders if covers & wanted]
    ctes = [c for f in parts for c in f.ctes]
    joins = [j for f in parts for j in f.joins]
    exprs = {k: v for f in parts for k, v in f.exprs.items()}
    # A table the spec was made with but the scoring data lacks: its features are unknown.
    absent = {t for t in ("holdings", "interactions") if t not in ds.tables}
    columns = []
    for feature in features:
        sql_type = "DOUBLE" if feature.kind == "numeric" else "VARCHAR"
        expr = "NULL" if feature.family in absent else exprs[feature.name]
        columns.append(f"CAST({expr} AS {sql_type}) AS {ident(feature.name)}")
    with_ = "WITH " + ",\n".join(f"{name} AS ({sql})" for name, sql in ctes) + "\n" if ctes else ""
    body = ",\n       ".join(columns)
    return f"""{with_}SELECT s.customer_id, s.as_of,
       {body}
FROM {spine} s
{chr(10).join(joins)}
ORDER BY s.customer_id, s.as_of"""


def build_features(
    ds: Dataset, as_of: Sequence[dt.date | str], spec: FeatureSpec | None = None
) -> pd.DataFrame:
    """Features of the population at each as-of date, as a DataFrame.

    Registers the temp table ``spine`` on ``ds.con`` (replacing any previous one).

    Args:
        ds: the dataset.
        as_of: the as-of dates (dates or ISO strings); all computed in one query.
        spec: the feature set to compute; by default derived from ``ds``.

    Returns:
        One row per (customer_id, as_of), ordered so, with ``customer_id, as_of`` then the
        features in ``features_of(spec)`` order.

    Raises:
        ValueError: no as-of dates, or one that is not an ISO date.
    """
    spec = spec or feature_spec(ds)
    register_spine(ds, as_of)
    return ds.con.execute(feature_sql(ds, spec)).df()


def write_features(
    ds: Dataset,
    as_of: Sequence[dt.date | str],
    out: Path,
    spec: FeatureSpec | None = None,
) -> int:
    """Stream the features of ``build_features`` to one parquet file with DuckDB COPY.

    No DataFrame is built, so memory stays within DuckDB's limit at any base size.

    Returns:
        The number of rows written.

    Raises:
        ValueError: no as-of dates, or one that is not an ISO date.
    """
    spec = spec or feature_spec(ds)
    register_spine(ds, as_of)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = "'" + str(out).replace("'", "''") + "'"
    con = ds.con
    # The file must come out in ORDER BY order, which DuckDB only promises for COPY while
    # insertion order is preserved; the setting is put back afterwards.
    keep = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    con.execute("SET preserve_insertion_order = true")
    try:
        rows = con.execute(
            f"COPY ({feature_sql(ds, spec)}) TO {path} (FORMAT parquet, COMPRESSION zstd)"
        ).fetchall()
    finally:
        con.execute(f"SET preserve_insertion_order = {'true' if keep else 'false'}")
    return int(rows[0][0])


# -- families ----------------------------------------------------------------------------------


def _on(alias: str) -> str:
    return f"LEFT JOIN {alias} ON {alias}.customer_id = s.customer_id AND {alias}.as_of = s.as_of"


def _money(expr: str) -> str:
    """Exact money sum (order independent, identical on Spark), as DOUBLE."""
    return f"CAST(sum(CAST({expr} AS DECIMAL(18,2))) AS DOUBLE)"


def _transactions(spec: FeatureSpec, spine: str) -> _Family:
    """rfm, trend and mix: one bounded range join of transactions to the spine."""
    products = slugs(spec.products)
    channels = slugs(spec.channels)
    mix = [
        f"count(*) FILTER (WHERE product = {literal(p)}) AS mix_p_{s}" for p, s in products.items()
    ]
    mix += [
        f"count(*) FILTER (WHERE channel = {literal(c)}) AS mix_c_{s}" for c, s in channels.items()
    ]
    mix += [
        f"count(*) FILTER (WHERE product = {literal(p)} AND age < {w}) AS pn{w}_{s}, "
        f"sum(amount) FILTER (WHERE product = {literal(p)} AND age < {w}) AS pa{w}_{s}"
        for p, s in products.items()
        for w in KIND_WINDOWS
    ]
    windows = [
        f"count(*) FILTER (WHERE age < {w}) AS n{w}, sum(amount) FILTER (WHERE age < {w}) AS a{w}"
        for w in (30, 90, 180)
    ]
    ctes = [
        (
            # Each transaction meets only the as-of dates it precedes by under 365 days; m12
            # numbers the 12 equal months of those 365 days, 0 the latest.
            "fx_txw",
            f"""SELECT customer_id, as_of, age, amount, product, channel,
                   CAST(floor(age * {_MONTHS} / 365) AS INTEGER) AS m12
            FROM (SELECT s.customer_id, s.as_of,
                   date_diff('day', CAST(t.ts AS DATE), s.as_of) AS age,
                   CAST(t.amount AS DECIMAL(18,2)) AS amount,
                   t.product, t.channel
            FROM {spine} s JOIN transactions t
              ON t.customer_id = s.customer_id
             AND CAST(t.ts AS DATE) <= s.as_of
             AND CAST(t.ts AS DATE) > CAST(s.as_of - INTERVAL 365 DAY AS DATE)) w""",
        ),
        (
            # Money stays DECIMAL here: the previous 90 days are 180 minus 90, exactly.
            "fx_txn",
            f"""SELECT customer_id, as_of,
                   {", ".join(windows)},
                   count(*) AS n365,
                   sum(amount) AS a365,
                   min(age) AS recency,
                   max(age) AS oldest,
                   bit_count(bit_or(CAST(pow(2, m12) AS BIGINT))) AS active_months,
                   sum(amount * ({_MONTHS - 1} - m12)) AS sxy
                   {"".join(", " + m for m in mix)}
            FROM fx_txw GROUP BY customer_id, as_of""",
        ),
        (
            # Recency beyond the year, only for spine rows idle all year (usually few). The
            # join is on customer_id alone and the date test sits in the aggregate, so that
            # DuckDB converts ts only for the joined rows, not for every transaction.
            "fx_txold",
            f"""SELECT i.customer_id, i.as_of,
                   min(CASE WHEN CAST(t.ts AS DATE) <= i.as_of
                            THEN date_diff('day', CAST(t.ts AS DATE), i.as_of) END) AS recency
            FROM (SELECT s.customer_id, s.as_of FROM {spine} s
                  LEFT JOIN fx_txn x ON x.customer_id = s.customer_id AND x.as_of = s.as_of
                  WHERE x.customer_id IS NULL) i
            JOIN transactions t ON t.customer_id = i.customer_id
            GROUP BY i.customer_id, i.as_of""",
        ),
    ]
    x = "fx_txn"
    exprs: dict[str, str] = {}
    for w in (30, 90, 180, 365):
        exprs[f"txn_count_{w}d"] = f"coalesce({x}.n{w}, 0)"
        exprs[f"txn_amount_{w}d"] = f"coalesce(CAST({x}.a{w} AS DOUBLE), 0)"
    a90, n90 = f"coalesce({x}.a90, 0)", f"coalesce({x}.n90, 0)"
    a_prev, n_prev = f"(coalesce({x}.a180, 0) - {a90})", f"(coalesce({x}.n180, 0) - {n90})"
    exprs |= {
        "days_since_last_txn": f"coalesce({x}.recency, fx_txold.recency)",
        "txn_avg_amount_365d": f"CAST({x}.a365 AS DOUBLE) / {x}.n365",
        "active_months_12m": f"coalesce({x}.active_months, 0)",
        "txn_mean_gap_days_365d": (
            f"CASE WHEN {x}.n365 > 1 "
            f"THEN CAST({x}.oldest - {x}.recency AS DOUBLE) / ({x}.n365 - 1) END"
        ),
        "spend_change_90d": f"CAST({a90} - {a_prev} AS DOUBLE) / (CAST(abs({a_prev}) AS DOUBLE) + 1)",
        "txn_count_change_90d": f"CAST({n90} - {n_prev} AS DOUBLE) / ({n_prev} + 1)",
        "spend_slope_12m": (
            f"coalesce(CAST({_MONTHS} * {x}.sxy - {_SX} * {x}.a365 AS DOUBLE) / {_DENOM}, 0)"
        ),
    }
    for s in products.values():
        exprs[f"mix_product_{s}_365d"] = f"CAST({x}.mix_p_{s} AS DOUBLE) / {x}.n365"
    for s in channels.values():
        exprs[f"mix_channel_{s}_365d"] = f"CAST({x}.mix_c_{s} AS DOUBLE) / {x}.n365"
    for s in products.values():
        for w in KIND_WINDOWS:
            exprs[f"product_{s}_count_{w}d"] = f"coalesce({x}.pn{w}_{s}, 0)"
            exprs[f"product_{s}_spend_{w}d"] = f"coalesce(CAST({x}.pa{w}_{s} AS DOUBLE), 0)"
    return _Family(ctes, [_on("fx_txn"), _on("fx_txold")], exprs)


def _holdings(ds: Dataset, spec: FeatureSpec, spine: str) -> _Family:
    """Holdings open at the date, their fees, and recent openings and closures."""
    if "holdings" not in spec.tables or "holdings" not in ds.tables:
        return _Family()
    is_open = "(h.closed IS NULL OR h.closed > s.as_of)"
    products = slugs(spec.holding_products)
    held = [
        f"max(CASE WHEN h.product = {literal(p)} AND {is_open} THEN 1 ELSE 0 END) AS held_{s}, "
        f"max(date_diff('day', h.opened, s.as_of)) FILTER (WHERE h.product = {literal(p)} "
        f"AND {is_open}) AS days_{s}, "
        f"{_money(f'CASE WHEN h.product = {literal(p)} AND {is_open} THEN h.monthly_fee END')}"
        f" AS fee_{s}"
        for p, s in products.items()
    ]
    before = "CAST(s.as_of - INTERVAL 90 DAY AS DATE)"
    was_open = f"(h.opened <= {before} AND (h.closed IS NULL OR h.closed > {before}))"
    closed = "h.closed <= s.as_of"
    ctes = [
        (
            "fx_hold",
            f"""SELECT s.customer_id, s.as_of,
                   count(*) FILTER (WHERE {is_open}) AS open_count,
                   {_money(f"CASE WHEN {is_open} THEN h.monthly_fee END")} AS fees,
                   {_money(f"CASE WHEN {was_open} THEN h.monthly_fee END")} AS fees_before,
                   min(date_diff('day', h.opened, s.as_of)) AS since_opened,
                   min(date_diff('day', h.closed, s.as_of)) FILTER (WHERE {closed}) AS since_closed,
                   count(*) FILTER (WHERE date_diff('day', h.opened, s.as_of) < 90) AS opened90,
                   count(*) FILTER (WHERE {closed} AND date_diff('day', h.closed, s.as_of) < 90)
                       AS closed90
                   {"".join(", " + h for h in held)}
            FROM {spine} s JOIN holdings h
              ON h.customer_id = s.customer_id AND h.opened <= s.as_of
            GROUP BY s.customer_id, s.as_of""",
        )
    ]
    x = "fx_hold"
    exprs = {
        "holdings_open_count": f"coalesce({x}.open_count, 0)",
        "holdings_monthly_fees": f"coalesce({x}.fees, 0)",
        "holdings_fee_change_90d": f"coalesce({x}.fees, 0) - coalesce({x}.fees_before, 0)",
        "days_since_last_opened": f"{x}.since_opened",
        "days_since_last_closed": f"{x}.since_closed",
        "holdings_opened_90d": f"coalesce({x}.opened90, 0)",
        "holdings_closed_90d": f"coalesce({x}.closed90, 0)",
    }
    for s in products.values():
        exprs[f"held_{s}"] = f"coalesce({x}.held_{s}, 0)"
        exprs[f"held_{s}_days"] = f"{x}.days_{s}"
        exprs[f"fee_{s}"] = f"coalesce({x}.fee_{s}, 0)"
    return _Family(ctes, [_on(x)], exprs)


def _kinds_in(kinds: Sequence[str]) -> str:
    return f"kind IN ({', '.join(literal(k) for k in kinds)})"


def _interactions(ds: Dataset, spec: FeatureSpec, spine: str) -> _Family:
    """Per-kind counts, recency and trend, then the named roles: complaints, contacts,
    satisfaction and engagement, from the interactions of the last year."""
    if "interactions" not in spec.tables or "interactions" not in ds.tables:
        return _Family()
    roles = spec.interaction_roles
    aggregates = []
    for kind, s in slugs(spec.interaction_kinds).items():
        is_kind = f"kind = {literal(kind)}"
        aggregates += [
            f"count(*) FILTER (WHERE {is_kind} AND age < {w}) AS k{w}_{s}" for w in KIND_WINDOWS
        ]
        aggregates += [
            f"min(age) FILTER (WHERE {is_kind}) AS ksince_{s}",
            f"count(*) FILTER (WHERE {is_kind} AND age >= 30 AND age < 120) AS kprev_{s}",
        ]
    contact = f"NOT {_kinds_in(roles.engagement)}" if roles.engagement else "TRUE"
    aggregates += [
        f"count(*) FILTER (WHERE {contact} AND age < {w}) AS contacts{w}" for w in (30, 90)
    ]
    if roles.complaint:
        complaint = _kinds_in(roles.complaint)
        aggregates += [
            f"count(*) FILTER (WHERE {complaint} AND age < {w}) AS complaints{w}" for w in (30, 90)
        ]
    if roles.engagement:
        engaged = _kinds_in(roles.engagement)
        aggregates += [
            f"count(*) FILTER (WHERE {engaged} AND age < 30) AS engaged30",
            f"count(*) FILTER (WHERE {engaged} AND age >= 30 AND age < 120) AS engaged_prev",
        ]
    scored = "satisfaction IS NOT NULL"
    if roles.satisfaction is not None:
        scored += f" AND {_kinds_in(roles.satisfaction)}" if roles.satisfaction else " AND FALSE"
    # The latest score wins; within one second the higher score, so ties are deterministic.
    order_key = (
        "(CAST(-age AS DOUBLE) * 86400 + hour(ts) * 3600 + minute(ts) * 60 + second(ts))"
        " * 10 + satisfaction"
    )
    ctes = [
        (
            "fx_ixw",
            f"""SELECT s.customer_id, s.as_of,
                   date_diff('day', CAST(i.ts AS DATE), s.as_of) AS age,
                   i.kind, i.ts, i.satisfaction
            FROM {spine} s JOIN interactions i
              ON i.customer_id = s.customer_id
             AND CAST(i.ts AS DATE) <= s.as_of
             AND CAST(i.ts AS DATE) > CAST(s.as_of - INTERVAL 365 DAY AS DATE)""",
        ),
        (
            "fx_ix",
            f"""SELECT customer_id, as_of,
                   {", ".join(aggregates)},
                   avg(satisfaction) FILTER (WHERE {scored}) AS sat_mean,
                   arg_max(satisfaction, {order_key}) FILTER (WHERE {scored}) AS sat_last
            FROM fx_ixw GROUP BY customer_id, as_of""",
        ),
    ]
    x = "fx_ix"
    joins = [_on(x)]
    exprs = {
        "satisfaction_last_365d": f"{x}.sat_last",
        "satisfaction_mean_365d": f"{x}.sat_mean",
    }
    for s in slugs(spec.interaction_kinds).values():
        for w in KIND_WINDOWS:
            exprs[f"kind_{s}_{w}d"] = f"coalesce({x}.k{w}_{s}, 0)"
        exprs[f"kind_{s}_days_since"] = f"{x}.ksince_{s}"
        exprs[f"kind_{s}_trend"] = _rate_change(f"{x}.k30_{s}", f"{x}.kprev_{s}")
    for w in (30, 90):
        exprs[f"contacts_{w}d"] = f"coalesce({x}.contacts{w}, 0)"
    if roles.engagement:
        exprs["engagement_30d"] = f"coalesce({x}.engaged30, 0)"
        exprs["engagement_trend"] = _rate_change(f"{x}.engaged30", f"{x}.engaged_prev")
    if roles.complaint:
        for w in (30, 90):
            exprs[f"complaints_{w}d"] = f"coalesce({x}.complaints{w}, 0)"
        # Complaints are rare, so their recency is looked up over all history.
        ctes.append(
            (
                "fx_complaint",
                f"""SELECT s.customer_id, s.as_of,
                       min(date_diff('day', CAST(i.ts AS DATE), s.as_of)) AS since
                FROM {spine} s JOIN interactions i
                  ON i.customer_id = s.customer_id AND CAST(i.ts AS DATE) <= s.as_of
                WHERE i.{_kinds_in(roles.complaint)}
                GROUP BY s.customer_id, s.as_of""",
            )
        )
        joins.append(_on("fx_complaint"))
        exprs["days_since_last_complaint"] = "fx_complaint.since"
    return _Family(ctes, joins, exprs)


def _rate_change(last30: str, prev90: str) -> str:
    """The last 30 days against the monthly rate of the 90 before: (a - b/3) / (b/3 + 1)."""
    a, b = f"CAST(coalesce({last30}, 0) AS DOUBLE)", f"CAST(coalesce({prev90}, 0) AS DOUBLE) / 3"
    return f"({a} - {b}) / ({b} + 1)"


def _customers(ds: Dataset, spec: FeatureSpec) -> _Family:
    """Tenure and static profile columns; closed_date is never read (it is the future)."""
    exprs = {"tenure_days": "date_diff('day', c.signup_date, s.as_of)"}
    names = slugs(list(spec.profile))
    for column in spec.profile:
        # A profile column missing from the scoring data still comes out, as null.
        exprs[f"profile_{names[column]}"] = f"c.{ident(column)}" if column in ds.profile else "NULL"
    return _Family([], ["JOIN customers c ON c.customer_id = s.customer_id"], exprs)


def _tiers(ds: Dataset, spine: str) -> _Family:
    """Value and service tier (features.tiers) joined in as the tier family."""
    on = "fx_tier.customer_id = s.customer_id AND fx_tier.as_of = s.as_of"
    join = f"LEFT JOIN ({tier_sql(ds, spine)}) fx_tier ON {on}"
    columns = (
        "value",
        "value_tier",
        "value_tier_rank",
        "value_percentile",
        "gap_to_next_tier",
        "tier",
        "tier_rank",
        "days_in_tier",
        "tier_changes_365d",
        "tier_ups_365d",
        "tier_downs_365d",
    )
    return _Family([], [join], {c: f"fx_tier.{c}" for c in columns})
