"""A customer's own recent history, point in time, for talking points (DuckDB SQL).

One row per ``(customer_id, as_of)`` of the spine: the last transaction (date, product,
channel, amount), the signup date, the last complaint, the last satisfaction score of the
year and the products held. Like the features, only rows dated on or before ``as_of`` are
read, and the SQL keeps to the portable subset of docs/design.md ("Portable SQL for Spark") (row_number instead of
QUALIFY or arg_max, explicit NULLS LAST, money through DECIMAL) so it can be transpiled to
Spark SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from features.contract import Dataset
from features.spine import register_spine
from features.sql import literal

RECENT = 5  # transactions shown on the customer card, latest first
MONTHS = 12  # monthly net amounts of the card's value trend (the 12 equal months of 365 days)
TIER_CHANGES = 3  # latest service tier changes on the card
# Columns of ``history_sql`` after the keys, in order (``products_held`` is added by
# ``build_history`` from ``held_products_sql``).
COLUMNS = (
    "signup_date",
    "closed_date",
    "last_transaction_date",
    "last_transaction_product",
    "last_transaction_channel",
    "last_transaction_amount",
    "last_complaint_date",
    "last_satisfaction",
    "last_satisfaction_date",
    *(
        f"txn_{i}_{field}"
        for i in range(2, RECENT + 1)
        for field in ("date", "product", "channel", "amount")
    ),
    *(f"spend_month_{m}" for m in range(1, MONTHS + 1)),  # 1: the latest month
    *(f"tier_change_{i}_{field}" for i in range(1, TIER_CHANGES + 1) for field in ("date", "tier")),
)
SATISFACTION_DAYS = 365  # an older score says little about how the customer feels now


def history_sql(ds: Dataset, spine: str = "spine") -> str:
    """One SELECT of the recent history of every row of ``spine``.

    Args:
        ds: the dataset (its typed views are read).
        spine: a table or view with ``customer_id`` and ``as_of DATE``.

    Returns:
        SQL with columns ``customer_id, as_of`` then ``COLUMNS``, ordered by customer_id,
        as_of. Ties between same-time transactions go to the larger amount, then product
        and channel by name; between same-time scores to the higher one. Without an
        ``interactions`` table the complaint and satisfaction columns are null.
    """
    ctes = [
        (
            "hx_recent",
            f"""SELECT customer_id, as_of, day, product, channel, amount, pos FROM (
                SELECT s.customer_id, s.as_of, CAST(t.ts AS DATE) AS day, t.product, t.channel,
                       CAST(CAST(t.amount AS DECIMAL(18,2)) AS DOUBLE) AS amount,
                       row_number() OVER (
                           PARTITION BY s.customer_id, s.as_of
                           ORDER BY t.ts DESC, t.amount DESC,
                                    t.product ASC NULLS LAST, t.channel ASC NULLS LAST) AS pos
                FROM {spine} s JOIN transactions t
                  ON t.customer_id = s.customer_id AND CAST(t.ts AS DATE) <= s.as_of) r
            WHERE pos <= {RECENT}""",
        ),
        (
            # One row per customer and date: the latest transaction's fields, then the
            # next ones as txn_<pos>_<field> (conditional aggregation is portable SQL).
            "hx_last",
            f"""SELECT customer_id, as_of,
                   {", ".join(_at(pos, f) for pos in range(1, RECENT + 1) for f in _FIELDS)}
            FROM hx_recent GROUP BY customer_id, as_of""",
        ),
        (
            "hx_months",
            f"""SELECT customer_id, as_of,
                   {", ".join(_month(m) for m in range(1, MONTHS + 1))}
            FROM (SELECT s.customer_id, s.as_of, CAST(t.amount AS DECIMAL(18,2)) AS amount,
                         CAST(floor(date_diff('day', CAST(t.ts AS DATE), s.as_of) * {MONTHS}
                                    / 365) AS INTEGER) AS m
                  FROM {spine} s JOIN transactions t
                    ON t.customer_id = s.customer_id
                   AND CAST(t.ts AS DATE) <= s.as_of
                   AND CAST(t.ts AS DATE) > CAST(s.as_of - INTERVAL 365 DAY AS DATE)) w
            GROUP BY customer_id, as_of""",
        ),
    ]
    joins = [
        "LEFT JOIN hx_last hx_tx ON hx_tx.customer_id = s.customer_id AND hx_tx.as_of = s.as_of",
        "LEFT JOIN hx_months ON hx_months.customer_id = s.customer_id"
        " AND hx_months.as_of = s.as_of",
    ]
    if "tiers" in ds.tables:
        ctes.append(
            (
                "hx_tiers",
                f"""SELECT customer_id, as_of,
                   {", ".join(_change(i) for i in range(1, TIER_CHANGES + 1))}
                FROM (SELECT s.customer_id, s.as_of, r.effective, r.tier,
                             row_number() OVER (PARTITION BY s.customer_id, s.as_of
                                                ORDER BY r.effective DESC, r.tier) AS pos
                      FROM {spine} s JOIN tiers r
                        ON r.customer_id = s.customer_id AND r.effective <= s.as_of) x
                WHERE pos <= {TIER_CHANGES}
                GROUP BY customer_id, as_of""",
            )
        )
        joins.append(
            "LEFT JOIN hx_tiers ON hx_tiers.customer_id = s.customer_id"
            " AND hx_tiers.as_of = s.as_of"
        )
        changes = [
            f"hx_tiers.tier_change_{i}_{f}"
            for i in range(1, TIER_CHANGES + 1)
            for f in ("date", "tier")
        ]
    else:
        changes = [
            f"CAST(NULL AS {'DATE' if f == 'date' else 'VARCHAR'}) AS tier_change_{i}_{f}"
            for i in range(1, TIER_CHANGES + 1)
            for f in ("date", "tier")
        ]
    roles = ds.settings.interaction_roles
    if "interactions" in ds.tables:
        # Complaints are the kinds the dataset settings name so (none: no complaint date).
        complaint_kinds = ", ".join(literal(k) for k in roles.complaint) or "NULL"
        scored = "i.satisfaction IS NOT NULL"
        if roles.satisfaction is not None:
            scored += (
                f" AND i.kind IN ({', '.join(literal(k) for k in roles.satisfaction) or 'NULL'})"
            )
        ctes += [
            (
                "hx_complaint",
                f"""SELECT s.customer_id, s.as_of, max(CAST(i.ts AS DATE)) AS day
                FROM {spine} s JOIN interactions i
                  ON i.customer_id = s.customer_id AND CAST(i.ts AS DATE) <= s.as_of
                WHERE i.kind IN ({complaint_kinds})
                GROUP BY s.customer_id, s.as_of""",
            ),
            (
                "hx_sat",
                f"""SELECT customer_id, as_of, day, score FROM (
                SELECT s.customer_id, s.as_of, CAST(i.ts AS DATE) AS day,
                       i.satisfaction AS score,
                       row_number() OVER (
                           PARTITION BY s.customer_id, s.as_of
                           ORDER BY i.ts DESC, i.satisfaction DESC) AS pos
                FROM {spine} s JOIN interactions i
                  ON i.customer_id = s.customer_id
                 AND CAST(i.ts AS DATE) <= s.as_of
                 AND CAST(i.ts AS DATE) > CAST(s.as_of - INTERVAL {SATISFACTION_DAYS} DAY AS DATE)
                WHERE {scored}) r
            WHERE pos = 1""",
            ),
        ]
        joins += [
            "LEFT JOIN hx_complaint ON hx_complaint.customer_id = s.customer_id"
            " AND hx_complaint.as_of = s.as_of",
            "LEFT JOIN hx_sat ON hx_sat.customer_id = s.customer_id AND hx_sat.as_of = s.as_of",
        ]
        complaint, score, score_day = "hx_complaint.day", "hx_sat.score", "hx_sat.day"
    else:
        complaint = score = score_day = "NULL"
    later = ", ".join(f"hx_tx.txn_{pos}_{f}" for pos in range(2, RECENT + 1) for f in _FIELDS)
    months = ", ".join(
        f"coalesce(hx_months.spend_month_{m}, 0) AS spend_month_{m}" for m in range(1, MONTHS + 1)
    )
    with_ = "WITH " + ",\n".join(f"{name} AS ({sql})" for name, sql in ctes)
    return f"""{with_}
SELECT s.customer_id, s.as_of,
       c.signup_date AS signup_date,
       CASE WHEN c.closed_date <= s.as_of THEN c.closed_date END AS closed_date,
       hx_tx.txn_1_date AS last_transaction_date,
       hx_tx.txn_1_product AS last_transaction_product,
       hx_tx.txn_1_channel AS last_transaction_channel,
       hx_tx.txn_1_amount AS last_transaction_amount,
       CAST({complaint} AS DATE) AS last_complaint_date,
       CAST({score} AS DOUBLE) AS last_satisfaction,
       CAST({score_day} AS DATE) AS last_satisfaction_date,
       {later},
       {months},
       {", ".join(changes)}
FROM {spine} s
JOIN customers c ON c.customer_id = s.customer_id
{chr(10).join(joins)}
ORDER BY s.customer_id, s.as_of"""


_FIELDS = {"date": "day", "product": "product", "channel": "channel", "amount": "amount"}


def _at(pos: int, field: str) -> str:
    return f"max(CASE WHEN pos = {pos} THEN {_FIELDS[field]} END) AS txn_{pos}_{field}"


def _month(m: int) -> str:
    return f"CAST(sum(CASE WHEN m = {m - 1} THEN amount ELSE 0 END) AS DOUBLE) AS spend_month_{m}"


def _change(i: int) -> str:
    return (
        f"max(CASE WHEN pos = {i} THEN effective END) AS tier_change_{i}_date, "
        f"max(CASE WHEN pos = {i} THEN tier END) AS tier_change_{i}_tier"
    )


def held_products_sql(ds: Dataset, spine: str = "spine") -> str | None:
    """SQL of the products each spine row holds open at its date, or None without holdings.

    Returns:
        Distinct ``customer_id, as_of, product`` rows, ordered so; a holding is open at t
        when opened <= t and (closed is null or closed > t), as in the features.
    """
    if "holdings" not in ds.tables:
        return None
    return f"""SELECT DISTINCT s.customer_id, s.as_of, h.product
FROM {spine} s JOIN holdings h
  ON h.customer_id = s.customer_id
 AND h.opened <= s.as_of
 AND (h.closed IS NULL OR h.closed > s.as_of)
ORDER BY s.customer_id, s.as_of, h.product"""


def build_history(
    ds: Dataset, as_of: Sequence[dt.date | str], closed_within_days: int = 0
) -> pd.DataFrame:
    """The recent history of the population at each as-of date (and of the customers who
    closed in the ``closed_within_days`` before it).

    Registers the temp table ``spine`` on ``ds.con`` (replacing any previous one).

    Returns:
        One row per (customer_id, as_of), ordered so, with ``customer_id, as_of``, the
        ``COLUMNS`` (dates as ``datetime.date``, missing as None) and ``products_held``: the
        sorted list of products held open at the date (empty without holdings).

    Raises:
        ValueError: no as-of dates, or one that is not an ISO date.
    """
    register_spine(ds, as_of, closed_within_days=closed_within_days)
    frame = ds.con.execute(history_sql(ds)).df()
    for column in ("as_of", *(c for c in COLUMNS if c.endswith("_date"))):
        frame[column] = _dates(frame[column])
    held: dict[tuple[str, dt.date], list[str]] = {}
    sql = held_products_sql(ds)
    if sql is not None:
        for customer_id, day, product in ds.con.execute(sql).fetchall():
            held.setdefault((customer_id, _date(day)), []).append(product)
    frame["products_held"] = [
        held.get((c, d), []) for c, d in zip(frame["customer_id"], frame["as_of"], strict=True)
    ]
    # Nulls as None (not NaN / NaT), so a row converts to JSON as is.
    return frame.astype(object).where(frame.notna(), None)


def _dates(column: pd.Series) -> list[dt.date | None]:
    return [_date(v) for v in column]


def _date(value) -> dt.date | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    return value
