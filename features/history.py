"""A customer's own recent history, point in time, for talking points (DuckDB SQL).

One row per ``(customer_id, as_of)`` of the spine: the last transaction (date, product,
channel, amount), the signup date, the last complaint, the last satisfaction score of the
year and the products held. Like the features, only rows dated on or before ``as_of`` are
read, and the SQL keeps to the portable subset of PERF_NOTES (row_number instead of
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

# Columns of ``history_sql`` after the keys, in order (``products_held`` is added by
# ``build_history`` from ``held_products_sql``).
COLUMNS = (
    "signup_date",
    "last_transaction_date",
    "last_transaction_product",
    "last_transaction_channel",
    "last_transaction_amount",
    "last_complaint_date",
    "last_satisfaction",
    "last_satisfaction_date",
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
            "hx_tx",
            f"""SELECT customer_id, as_of, day, product, channel, amount FROM (
                SELECT s.customer_id, s.as_of, CAST(t.ts AS DATE) AS day, t.product, t.channel,
                       CAST(CAST(t.amount AS DECIMAL(18,2)) AS DOUBLE) AS amount,
                       row_number() OVER (
                           PARTITION BY s.customer_id, s.as_of
                           ORDER BY t.ts DESC, t.amount DESC,
                                    t.product ASC NULLS LAST, t.channel ASC NULLS LAST) AS pos
                FROM {spine} s JOIN transactions t
                  ON t.customer_id = s.customer_id AND CAST(t.ts AS DATE) <= s.as_of) r
            WHERE pos = 1""",
        )
    ]
    joins = ["LEFT JOIN hx_tx ON hx_tx.customer_id = s.customer_id AND hx_tx.as_of = s.as_of"]
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
    with_ = "WITH " + ",\n".join(f"{name} AS ({sql})" for name, sql in ctes)
    return f"""{with_}
SELECT s.customer_id, s.as_of,
       c.signup_date AS signup_date,
       hx_tx.day AS last_transaction_date,
       hx_tx.product AS last_transaction_product,
       hx_tx.channel AS last_transaction_channel,
       hx_tx.amount AS last_transaction_amount,
       CAST({complaint} AS DATE) AS last_complaint_date,
       CAST({score} AS DOUBLE) AS last_satisfaction,
       CAST({score_day} AS DATE) AS last_satisfaction_date
FROM {spine} s
JOIN customers c ON c.customer_id = s.customer_id
{chr(10).join(joins)}
ORDER BY s.customer_id, s.as_of"""


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


def build_history(ds: Dataset, as_of: Sequence[dt.date | str]) -> pd.DataFrame:
    """The recent history of the population at each as-of date.

    Registers the temp table ``spine`` on ``ds.con`` (replacing any previous one).

    Returns:
        One row per (customer_id, as_of), ordered so, with ``customer_id, as_of``, the
        ``COLUMNS`` (dates as ``datetime.date``, missing as None) and ``products_held``: the
        sorted list of products held open at the date (empty without holdings).

    Raises:
        ValueError: no as-of dates, or one that is not an ISO date.
    """
    register_spine(ds, as_of)
    frame = ds.con.execute(history_sql(ds)).df()
    for column in ("as_of", "signup_date", "last_transaction_date", "last_complaint_date"):
        frame[column] = _dates(frame[column])
    frame["last_satisfaction_date"] = _dates(frame["last_satisfaction_date"])
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
