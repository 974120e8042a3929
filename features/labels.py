"""Targets for past as-of dates (docs/data-contract.md, "Targets"): churn, upgrade, cross-sell.

One row per spine row (the population at t), every as-of date in one query. Values are
1.0 / 0.0, or NaN where the label is undefined for that row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from features.contract import Dataset
from features.spine import as_of_dates, register_spine
from features.sql import ident, literal
from features.tiers import tier_names, tier_rank_at
from features.values import months_back

LABEL_SPINE = "label_spine"  # its own temp table, so labels never replace the features' spine
CHURN_DEFINITIONS = ("closed", "inactive")


def label_end(ds: Dataset, horizon_days: int | None = None) -> dt.date:
    """The latest as-of date whose horizon ends within the data: ``data_end - H``."""
    return ds.settings.data_end - dt.timedelta(days=_horizon(ds, horizon_days))


def default_as_of(ds: Dataset, count: int = 12, horizon_days: int | None = None) -> list[dt.date]:
    """Monthly as-of dates ending at ``label_end``, oldest first.

    Steps back by calendar months on the day of month of ``label_end`` (clamped to the
    month's end, so the 31st gives 30 April, 29 February, ...). Dates before the earliest
    signup are dropped.

    Raises:
        ValueError: count below 1, or no date left (the data is shorter than the horizon).
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    end = label_end(ds, horizon_days)
    first_signup = ds.con.execute("SELECT min(signup_date) FROM customers").fetchall()[0][0]
    dates = [months_back(end, k) for k in range(count)]
    kept = sorted(d for d in dates if first_signup is not None and d >= first_signup)
    if not kept:
        raise ValueError(
            f"no as-of date with a full horizon: label end {end} is before the earliest "
            f"signup {first_signup} (data_end {ds.settings.data_end})"
        )
    return kept


def build_labels(
    ds: Dataset,
    as_of: Sequence[dt.date | str],
    horizon_days: int | None = None,
    churn_definition: str | None = None,
    products: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Churn, upgrade and cross-sell labels for the population at each as-of date t.

    With H the horizon and t the as-of date:

    - ``churn`` (``closed``): 1 if closed_date is in (t, t+H]. (``inactive``): defined only
      for customers with a transaction dated in [t-365 days, t]; 1 if they have none dated
      in (t, t+H].
    - ``upgrade``: 1 if the service tier rank at t+H is higher than at t
      (``tiers.tier_rank_at``; value tiers when there is no tiers table). NaN for customers
      already in the top tier at t. A customer who closes by t+H (no tier there) counts as
      0, not NaN: closing is a way of not moving up, and dropping those rows would make
      the upgrade model blind to them.
    - ``cross_sell:<p>``: NaN if the customer holds an open p at t (opened <= t, closed
      null or > t); else 1 if a holding of p is opened in (t, t+H].

    Registers the temp table ``label_spine`` on ``ds.con``.

    Args:
        ds: the dataset.
        as_of: as-of dates (dates or ISO strings).
        horizon_days: H; ``ds.settings.horizon_days`` by default.
        churn_definition: ``closed`` or ``inactive``; the dataset's setting by default.
        products: cross-sell products; every product in holdings (sorted) by default,
            none without a holdings table.

    Returns:
        Columns ``customer_id, as_of, churn, upgrade, cross_sell:<p>...`` ordered by
        customer_id, as_of.

    Raises:
        ValueError: an as-of date whose horizon passes data_end, an unknown churn
            definition, or products asked for without a holdings table.
    """
    horizon = _horizon(ds, horizon_days)
    definition = churn_definition or ds.settings.churn_definition
    if definition not in CHURN_DEFINITIONS:
        raise ValueError(
            f"churn_definition must be one of {', '.join(CHURN_DEFINITIONS)}, got {definition!r}"
        )
    dates = as_of_dates(as_of)
    end = ds.settings.data_end
    late = [d for d in dates if d + dt.timedelta(days=horizon) > end]
    if late:
        raise ValueError(
            f"as-of date {late[0]} plus the {horizon}-day horizon ends after data_end {end}; "
            f"the latest as-of date with labels is {end - dt.timedelta(days=horizon)}"
        )
    products = _products(ds, products)
    register_spine(ds, dates, name=LABEL_SPINE)
    return ds.con.execute(_labels_sql(ds, horizon, definition, products)).df()


# -- helpers -----------------------------------------------------------------------------------


def _horizon(ds: Dataset, horizon_days: int | None) -> int:
    horizon = ds.settings.horizon_days if horizon_days is None else int(horizon_days)
    if horizon < 1:
        raise ValueError(f"horizon_days must be at least 1, got {horizon}")
    return horizon


def _products(ds: Dataset, products: Sequence[str] | None) -> list[str]:
    if products is None:
        if "holdings" not in ds.tables:
            return []
        rows = ds.con.execute(
            "SELECT DISTINCT product FROM holdings WHERE product IS NOT NULL ORDER BY product"
        ).fetchall()
        return [r[0] for r in rows]
    if products and "holdings" not in ds.tables:
        raise ValueError(f"cross-sell labels for {list(products)} need a holdings table")
    return list(dict.fromkeys(products))


def _labels_sql(ds: Dataset, horizon: int, definition: str, products: list[str]) -> str:
    """One query over every as-of date of ``label_spine``."""
    s = LABEL_SPINE
    end = f"CAST(s.as_of + INTERVAL {horizon} DAY AS DATE)"
    ctes = [
        ("lb_rank_now", tier_rank_at(ds, s, 0)),
        ("lb_rank_later", tier_rank_at(ds, s, horizon)),
    ]
    joins = [
        "JOIN customers c ON c.customer_id = s.customer_id",
        "LEFT JOIN lb_rank_now r0 ON r0.customer_id = s.customer_id AND r0.as_of = s.as_of",
        "LEFT JOIN lb_rank_later rh ON rh.customer_id = s.customer_id AND rh.as_of = s.as_of",
    ]
    if definition == "closed":
        churn = f"CASE WHEN c.closed_date > s.as_of AND c.closed_date <= {end} THEN 1 ELSE 0 END"
    else:
        # Only days in [t-365, t+H] matter; the transactions are cut to that span first.
        ctes.append(
            (
                "lb_activity",
                f"""SELECT s.customer_id, s.as_of,
                           max(CASE WHEN t.day <= s.as_of THEN 1 ELSE 0 END) AS active_before,
                           max(CASE WHEN t.day > s.as_of THEN 1 ELSE 0 END) AS active_after
                    FROM {s} s JOIN (SELECT DISTINCT customer_id, CAST(ts AS DATE) AS day
                                     FROM transactions) t
                      ON t.customer_id = s.customer_id
                     AND t.day >= CAST(s.as_of - INTERVAL 365 DAY AS DATE)
                     AND t.day <= {end}
                    GROUP BY s.customer_id, s.as_of""",
            )
        )
        joins.append(
            "LEFT JOIN lb_activity a ON a.customer_id = s.customer_id AND a.as_of = s.as_of"
        )
        churn = "CASE WHEN a.active_before = 1 THEN 1 - a.active_after END"
    top = len(tier_names(ds)) - 1
    upgrade = f"""CASE WHEN r0.tier_rank >= {top} THEN NULL
                       WHEN rh.tier_rank IS NULL THEN 0
                       WHEN rh.tier_rank > r0.tier_rank THEN 1 ELSE 0 END"""
    columns = [f"CAST({churn} AS DOUBLE) AS churn", f"CAST({upgrade} AS DOUBLE) AS upgrade"]
    if products:
        flags = []
        for i, product in enumerate(products):
            p = literal(product)
            flags += [
                f"""max(CASE WHEN h.product = {p} AND h.opened <= s.as_of
                                  AND (h.closed IS NULL OR h.closed > s.as_of)
                             THEN 1 ELSE 0 END) AS held_{i}""",
                f"""max(CASE WHEN h.product = {p} AND h.opened > s.as_of
                             THEN 1 ELSE 0 END) AS opened_{i}""",
            ]
            columns.append(
                f"""CAST(CASE WHEN x.held_{i} = 1 THEN NULL
                              WHEN x.opened_{i} = 1 THEN 1 ELSE 0 END AS DOUBLE)
                    AS {ident("cross_sell:" + product)}"""
            )
        in_list = ", ".join(literal(p) for p in products)
        ctes.append(
            (
                "lb_holdings",
                f"""SELECT s.customer_id, s.as_of, {", ".join(flags)}
                    FROM {s} s JOIN holdings h
                      ON h.customer_id = s.customer_id
                     AND h.opened <= {end}
                     AND h.product IN ({in_list})
                    GROUP BY s.customer_id, s.as_of""",
            )
        )
        joins.append(
            "LEFT JOIN lb_holdings x ON x.customer_id = s.customer_id AND x.as_of = s.as_of"
        )
    body = ",\n".join(f"{name} AS ({sql})" for name, sql in ctes)
    newline = "\n"
    return f"""WITH {body}
        SELECT s.customer_id, s.as_of, {", ".join(columns)}
        FROM {s} s
        {newline.join(joins)}
        ORDER BY s.customer_id, s.as_of"""
