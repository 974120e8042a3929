"""Customer value tiers (the value pyramid) and the service tier, point in time, as SQL.

Value as of t = net transaction amount dated in (t-365 days, t] plus recurring holdings
revenue, 12 x the monthly fees of the holdings open at t. Customers of the population at t
are ranked by value and cut into the tiers of a ``TierScheme`` (``features.tier_schemes``),
by customer counts (``quantile``) or by cumulative share of value (``cumulative_value``). The
service tier comes from the ``tiers`` table when the dataset has one, else it is the value
tier.

Every builder returns SQL text in the portable subset of docs/design.md ("Portable SQL for Spark") (so it can be transpiled
to Spark SQL) and computes all as-of dates of a spine in one query: windows PARTITION BY
as_of, never a Python loop over dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from features.contract import Dataset
from features.spine import register_spine
from features.sql import literal
from features.tier_schemes import TierScheme, scheme_of, tier_reasons


def tier_names(ds: Dataset, scheme: TierScheme | None = None) -> tuple[str, ...]:
    """The names of the service tier (``tier``/``tier_rank``), lowest first.

    With a ``tiers`` table they are the dataset's ``tier_order``; otherwise the scheme's
    (by default the dataset's own value tiers).
    """
    return tuple(ds.tier_order) if "tiers" in ds.tables else (scheme or scheme_of(ds)).names


def tier_sql(ds: Dataset, spine: str = "spine", scheme: TierScheme | None = None) -> str:
    """SQL for value and service tiers: one row per row of ``spine``, all as-of dates at once.

    Customers are ranked among the whole population at each as-of date of the spine (not
    only among the spine's rows), so a spine of a few customers gets the same tiers as the
    full base. Spine rows outside the population get nulls. The query has no ORDER BY.

    Args:
        ds: the dataset.
        spine: name of a table or view with columns ``customer_id`` and ``as_of DATE``.
        scheme: how value tiers are cut; by default as the dataset's settings say.

    Returns:
        A SELECT with columns ``customer_id, as_of, value, value_tier, value_tier_rank,
        value_percentile, tier_threshold, next_tier, gap_to_next_tier, tier, tier_rank,
        days_in_tier, tier_changes_365d, tier_ups_365d, tier_downs_365d`` (see the module docstring and docs/data-contract.md).
        ``value_percentile`` is the share of the population ranked at or below the
        customer (1 = best); customers of equal value share it, so it does not depend on
        their ids (the tier's cut breaks such ties by id). ``tier_threshold`` is the lowest value in the customer's
        value tier; ``gap_to_next_tier`` the value missing to the lowest value of the next
        higher tier that has customers (``next_tier`` names it; both null at the top).
        With a ``tiers`` table, ``days_in_tier`` counts days since the service tier last
        changed (since signup if it never did) and ``tier_changes_365d`` the changes dated
        in (as_of-365, as_of]; a row repeating the current tier is not a change, before
        its first row a customer is in the lowest tier, and a first row dated on or before
        signup is the initial tier (not counted as a change). Without one, the service
        tier is the value tier and both counts are null.
    """
    return _tier_query(ds, spine, scheme or scheme_of(ds), offset_days=0, rank_only=False)


def tier_rank_at(
    ds: Dataset, spine: str, offset_days: int = 0, scheme: TierScheme | None = None
) -> str:
    """SQL for the service tier rank of each spine row as of ``as_of + offset_days``.

    Value tiers are recomputed over the population at ``as_of + offset_days``. A customer
    not in the population at that date (closed by then) gets a null rank, with or without
    a ``tiers`` table, so both cases mean the same.

    Returns:
        A SELECT with columns ``customer_id, as_of, tier_rank`` (``as_of`` as in the spine),
        one row per spine row.
    """
    scheme = scheme or scheme_of(ds)
    return _tier_query(ds, spine, scheme, offset_days=offset_days, rank_only=True)


def assign_tiers(
    ds: Dataset, as_of: Sequence[dt.date | str], scheme: TierScheme | None = None
) -> pd.DataFrame:
    """Value and service tiers of the population at each as-of date, with a plain reason.

    Registers the temp table ``spine`` on ``ds.con`` (replacing any previous one).

    Returns:
        The columns of ``tier_sql`` plus ``tier_reason``, e.g. "your 12-month value of
        12,340 puts you in the top 5% of customers; VIP starts at 8,100", ordered by
        customer_id, as_of.

    Raises:
        ValueError: no as-of dates, or one that is not an ISO date.
    """
    scheme = scheme or scheme_of(ds)
    register_spine(ds, as_of)
    frame = ds.con.execute(
        f"SELECT * FROM ({tier_sql(ds, 'spine', scheme)}) t ORDER BY customer_id, as_of"
    ).df()
    frame["tier_reason"] = tier_reasons(scheme, frame)
    return frame


# -- SQL builders ------------------------------------------------------------------------------


def _tier_query(
    ds: Dataset, spine: str, scheme: TierScheme, offset_days: int, rank_only: bool
) -> str:
    """Tiers over the population at each ``spine.as_of + offset_days``, joined back to the spine."""
    # CTE names are unique per builder and offset: sqlglot hoists nested CTEs to the top
    # level for Spark, so two embedded queries must never share a CTE name.
    p = _prefix(offset_days, rank_only)
    service = "tiers" in ds.tables
    ctes = [
        (f"{p}dates", f"SELECT DISTINCT {_shift('as_of', offset_days)} AS as_of FROM {spine}"),
        (
            f"{p}pop",
            f"""SELECT c.customer_id, c.signup_date, d.as_of
               FROM customers c JOIN {p}dates d
                 ON c.signup_date <= d.as_of
                AND (c.closed_date IS NULL OR c.closed_date > d.as_of)""",
        ),
    ]
    if not (rank_only and service):
        ctes += _value_ctes(ds, scheme, p)
    if service:
        ctes += _service_ctes(ds, p)
    on = f"t.customer_id = s.customer_id AND t.as_of = {_shift('s.as_of', offset_days)}"
    if rank_only:
        source = f"{p}service" if service else f"{p}value_tiers"
        rank = "tier_rank" if service else "value_tier_rank"
        select = f"""SELECT s.customer_id, s.as_of, CAST(t.{rank} AS INTEGER) AS tier_rank
                     FROM {spine} s LEFT JOIN {source} t ON {on}"""
        return _with(ctes, select)
    if service:
        tier_columns = """st.tier AS tier,
            CAST(st.tier_rank AS INTEGER) AS tier_rank,
            CAST(st.days_in_tier AS INTEGER) AS days_in_tier,
            CAST(st.tier_changes_365d AS INTEGER) AS tier_changes_365d,
            CAST(st.tier_ups_365d AS INTEGER) AS tier_ups_365d,
            CAST(st.tier_downs_365d AS INTEGER) AS tier_downs_365d"""
        join_service = (
            f"LEFT JOIN {p}service st ON st.customer_id = t.customer_id AND st.as_of = t.as_of"
        )
    else:
        tier_columns = """t.value_tier AS tier,
            CAST(t.value_tier_rank AS INTEGER) AS tier_rank,
            CAST(NULL AS INTEGER) AS days_in_tier,
            CAST(NULL AS INTEGER) AS tier_changes_365d,
            CAST(NULL AS INTEGER) AS tier_ups_365d,
            CAST(NULL AS INTEGER) AS tier_downs_365d"""
        join_service = ""
    select = f"""SELECT s.customer_id, s.as_of,
            t.value,
            t.value_tier,
            CAST(t.value_tier_rank AS INTEGER) AS value_tier_rank,
            t.value_percentile,
            t.tier_threshold,
            t.next_tier,
            t.gap_to_next_tier,
            {tier_columns}
        FROM {spine} s
        LEFT JOIN {p}value_tiers t ON {on}
        {join_service}"""
    return _with(ctes, select)


def _value_ctes(ds: Dataset, scheme: TierScheme, p: str) -> list[tuple[str, str]]:
    """CTEs from ``<p>pop`` to ``<p>value_tiers``: value, rank, tier, threshold and gap."""
    return [*_value_sum_ctes(ds, p), *_cut_ctes(scheme, p), *_threshold_ctes(scheme, p)]


def _value_sum_ctes(ds: Dataset, p: str) -> list[tuple[str, str]]:
    """CTEs from ``<p>pop`` to ``<p>value``: each customer's value at each date, exact."""
    # Transactions are summed per customer and day first: the join to the population then
    # meets at most one row per customer-day, and days outside every window are skipped.
    ctes = [
        (
            f"{p}tx_days",
            f"""SELECT customer_id, CAST(ts AS DATE) AS day,
                      sum(CAST(amount AS DECIMAL(18,2))) AS amount
               FROM transactions
               WHERE CAST(ts AS DATE) > CAST((SELECT min(as_of) FROM {p}dates) - INTERVAL 365 DAY AS DATE)
                 AND CAST(ts AS DATE) <= (SELECT max(as_of) FROM {p}dates)
               GROUP BY customer_id, CAST(ts AS DATE)""",
        ),
        (
            f"{p}tx",
            f"""SELECT p.customer_id, p.as_of, sum(t.amount) AS amount
               FROM {p}pop p JOIN {p}tx_days t
                 ON t.customer_id = p.customer_id
                AND t.day > CAST(p.as_of - INTERVAL 365 DAY AS DATE)
                AND t.day <= p.as_of
               GROUP BY p.customer_id, p.as_of""",
        ),
    ]
    if "holdings" in ds.tables:
        ctes.append(
            (
                f"{p}fees",
                f"""SELECT p.customer_id, p.as_of,
                          12 * sum(CAST(coalesce(h.monthly_fee, 0) AS DECIMAL(18,2))) AS fees
                   FROM {p}pop p JOIN holdings h
                     ON h.customer_id = p.customer_id
                    AND h.opened <= p.as_of
                    AND (h.closed IS NULL OR h.closed > p.as_of)
                   GROUP BY p.customer_id, p.as_of""",
            )
        )
        fees = "coalesce(f.fees, 0)"
        join_fees = f"LEFT JOIN {p}fees f ON f.customer_id = p.customer_id AND f.as_of = p.as_of"
    else:
        fees, join_fees = "0", ""
    # Money stays DECIMAL until the output, so ranks, cuts and gaps are exact.
    ctes.append(
        (
            f"{p}value",
            f"""SELECT p.customer_id, p.as_of,
                       CAST(coalesce(x.amount, 0) + {fees} AS DECIMAL(38,2)) AS value_dec
                FROM {p}pop p
                LEFT JOIN {p}tx x ON x.customer_id = p.customer_id AND x.as_of = p.as_of
                {join_fees}""",
        )
    )
    return ctes


def _cut_ctes(scheme: TierScheme, p: str) -> list[tuple[str, str]]:
    """CTEs from ``<p>value`` to ``<p>cut``: position, value shares and the tier rank."""
    order = "PARTITION BY as_of ORDER BY value_dec DESC, customer_id"
    # Negative values (net refunds) add nothing to the value shares: a share of total value
    # only makes sense over what customers bring.
    positive = "CASE WHEN value_dec > 0 THEN value_dec ELSE 0 END"
    ctes: list[tuple[str, str]] = []
    ctes.append(
        (
            f"{p}ranked",
            f"""SELECT customer_id, as_of, value_dec,
                       row_number() OVER ({order}) AS pos,
                       rank() OVER (PARTITION BY as_of ORDER BY value_dec DESC) AS tied_pos,
                       count(*) OVER (PARTITION BY as_of) AS n,
                       coalesce(sum({positive}) OVER ({order}
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS value_before,
                       sum({positive}) OVER (PARTITION BY as_of) AS total
                FROM {p}value""",
        )
    )
    top = len(scheme.names) - 1
    cases = []
    for i, bound in enumerate(scheme.upper_bounds()):
        # A customer belongs to the tier in which its share *before* it falls.
        if scheme.method == "quantile":
            cond = f"(pos - 1) * {bound.denominator} < n * {bound.numerator}"
        else:
            cond = f"value_before * {bound.denominator} < total * {bound.numerator}"
        cases.append(f"WHEN {cond} THEN {top - i}")
    rank = f"CASE {' '.join(cases)} ELSE 0 END" if cases else "0"
    ctes.append(
        (
            f"{p}cut",
            f"""SELECT customer_id, as_of, value_dec,
                       {rank} AS value_tier_rank,
                       CAST(n - tied_pos + 1 AS DOUBLE) / n AS value_percentile
                FROM {p}ranked""",
        )
    )
    return ctes


def _threshold_ctes(scheme: TierScheme, p: str) -> list[tuple[str, str]]:
    """CTEs from ``<p>cut`` to ``<p>value_tiers``: tier names, thresholds, the next tier, gaps."""
    top = len(scheme.names) - 1
    ctes: list[tuple[str, str]] = []
    ctes.append(
        (
            f"{p}thresholds",
            f"""SELECT as_of, value_tier_rank, threshold,
                      lead(value_tier_rank) OVER (PARTITION BY as_of ORDER BY value_tier_rank)
                          AS next_rank,
                      lead(threshold) OVER (PARTITION BY as_of ORDER BY value_tier_rank)
                          AS next_threshold
               FROM (SELECT as_of, value_tier_rank, min(value_dec) AS threshold
                     FROM {p}cut GROUP BY as_of, value_tier_rank) g""",
        )
    )
    names = _case("c.value_tier_rank", scheme.names)
    # The next tier is the nearest higher tier that has customers; if none has (possible
    # only when no one has positive value under cumulative_value), name the tier above
    # and leave the gap unknown.
    next_name = _case("coalesce(h.next_rank, c.value_tier_rank + 1)", scheme.names)
    ctes.append(
        (
            f"{p}value_tiers",
            f"""SELECT c.customer_id, c.as_of,
                       CAST(c.value_dec AS DOUBLE) AS value,
                       {names} AS value_tier,
                       c.value_tier_rank,
                       c.value_percentile,
                       CAST(h.threshold AS DOUBLE) AS tier_threshold,
                       CASE WHEN c.value_tier_rank < {top} THEN {next_name} END AS next_tier,
                       CAST(CASE WHEN h.next_threshold IS NOT NULL
                                 THEN greatest(h.next_threshold - c.value_dec, 0) END
                            AS DOUBLE) AS gap_to_next_tier
                FROM {p}cut c JOIN {p}thresholds h
                  ON h.as_of = c.as_of AND h.value_tier_rank = c.value_tier_rank""",
        )
    )
    return ctes


def _service_ctes(ds: Dataset, p: str) -> list[tuple[str, str]]:
    """CTEs from ``<p>pop`` to ``<p>service``: the tiers table's tier as of each date."""
    order = ds.tier_order
    rank = _rank_case("tier", order)
    lowest = literal(order[0])
    sequence = f"PARTITION BY customer_id ORDER BY effective, {rank}"
    return [
        # Only rows that change the tier matter: the tier at t is that of the latest change
        # on or before t (the lowest before any), and changes are what days and counts use.
        # A first row dated on or before signup is the initial tier, not a change to count.
        (
            f"{p}changes",
            f"""SELECT r.customer_id, r.tier, r.tier_rank, r.effective, r.seq,
                       CASE WHEN r.seq = 1 AND r.effective <= c.signup_date THEN 0 ELSE 1 END
                           AS counted,
                       CASE WHEN r.tier_rank > r.prev_rank THEN 1 ELSE 0 END AS up
                FROM (SELECT customer_id, tier, effective, {rank} AS tier_rank,
                             row_number() OVER ({sequence}) AS seq,
                             lag(tier, 1, {lowest}) OVER ({sequence}) AS prev_tier,
                             lag({rank}, 1, 0) OVER ({sequence}) AS prev_rank
                      FROM tiers) r
                JOIN customers c ON c.customer_id = r.customer_id
                WHERE r.tier <> r.prev_tier""",
        ),
        (
            f"{p}last_change",
            f"""SELECT customer_id, as_of, tier, tier_rank, effective, changes, ups FROM (
                    SELECT p.customer_id, p.as_of, c.tier, c.tier_rank, c.effective,
                           row_number() OVER (PARTITION BY p.customer_id, p.as_of
                                              ORDER BY c.seq DESC) AS latest,
                           sum(CASE WHEN c.effective > CAST(p.as_of - INTERVAL 365 DAY AS DATE)
                                    THEN c.counted ELSE 0 END)
                               OVER (PARTITION BY p.customer_id, p.as_of) AS changes,
                           sum(CASE WHEN c.effective > CAST(p.as_of - INTERVAL 365 DAY AS DATE)
                                    THEN c.counted * c.up ELSE 0 END)
                               OVER (PARTITION BY p.customer_id, p.as_of) AS ups
                    FROM {p}pop p JOIN {p}changes c
                      ON c.customer_id = p.customer_id AND c.effective <= p.as_of) x
                WHERE latest = 1""",
        ),
        (
            f"{p}service",
            f"""SELECT p.customer_id, p.as_of,
                       coalesce(l.tier, {lowest}) AS tier,
                       coalesce(l.tier_rank, 0) AS tier_rank,
                       date_diff('day', coalesce(l.effective, p.signup_date), p.as_of)
                           AS days_in_tier,
                       coalesce(l.changes, 0) AS tier_changes_365d,
                       coalesce(l.ups, 0) AS tier_ups_365d,
                       coalesce(l.changes, 0) - coalesce(l.ups, 0) AS tier_downs_365d
                FROM {p}pop p LEFT JOIN {p}last_change l
                  ON l.customer_id = p.customer_id AND l.as_of = p.as_of""",
        ),
    ]


def _prefix(offset_days: int, rank_only: bool) -> str:
    """CTE name prefix: ``tw_`` for tier_sql, ``tw_r90_`` / ``tw_rm30_`` for tier_rank_at."""
    if not rank_only:
        return "tw_"
    return f"tw_r{offset_days}_" if offset_days >= 0 else f"tw_rm{-offset_days}_"


def _with(ctes: list[tuple[str, str]], select: str) -> str:
    body = ",\n".join(f"{name} AS ({sql})" for name, sql in ctes)
    return f"WITH {body}\n{select}"


def _shift(column: str, days: int) -> str:
    """``column + days`` as a DATE (interval arithmetic on DATE, portable to Spark)."""
    if days == 0:
        return column
    sign = "+" if days > 0 else "-"
    return f"CAST({column} {sign} INTERVAL {abs(int(days))} DAY AS DATE)"


def _case(expr: str, names: Sequence[str]) -> str:
    """Tier name of a rank expression."""
    whens = " ".join(f"WHEN {i} THEN {literal(n)}" for i, n in enumerate(names))
    return f"CASE {expr} {whens} END"


def _rank_case(expr: str, names: Sequence[str]) -> str:
    """Rank (lowest 0) of a tier-name expression."""
    whens = " ".join(f"WHEN {literal(n)} THEN {i}" for i, n in enumerate(names))
    return f"CASE {expr} {whens} END"
