"""Behaviour of the demo-data generator: contract, determinism and a base that behaves like a bank."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from features.demo import generate_demo_data

TABLES = ("customers", "transactions", "holdings", "interactions", "tiers")
TIER_ORDER = ["standard", "silver", "gold", "platinum"]
KINDS = ["complaint", "inquiry", "service_request", "login", "campaign_response"]
DATE, TS, STR, F64 = pa.date32(), pa.timestamp("us", tz="UTC"), pa.string(), pa.float64()
EXPECTED_TYPES = {
    "customers": {
        "customer_id": STR,
        "signup_date": DATE,
        "closed_date": DATE,
        "full_name": STR,
        "phone": STR,
    },
    "transactions": {"customer_id": STR, "ts": TS, "amount": F64, "product": STR, "channel": STR},
    "holdings": {
        "customer_id": STR,
        "product": STR,
        "opened": DATE,
        "closed": DATE,
        "monthly_fee": F64,
    },
    "interactions": {"customer_id": STR, "ts": TS, "kind": STR, "channel": STR},
    "tiers": {"customer_id": STR, "tier": STR, "effective": DATE},
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10k-customer base, generated once for the module."""
    return generate_demo_data(tmp_path_factory.mktemp("demo") / "data", customers=10_000, seed=0)


@pytest.fixture(scope="module")
def db(demo: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB views over the demo tables, plus `tier_rank` (tier, rank) from the tier order."""
    con = duckdb.connect()
    for table in TABLES:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{demo / table}.parquet')")
    con.execute("CREATE TABLE tier_rank (tier VARCHAR, rank INTEGER)")
    con.executemany(
        "INSERT INTO tier_rank VALUES (?, ?)", [(t, i) for i, t in enumerate(TIER_ORDER)]
    )
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    """The single result row of `sql`."""
    return con.execute(sql).fetchone()


def test_writes_every_table_and_settings_with_contract_columns_and_types(demo: Path) -> None:
    for table, expected in EXPECTED_TYPES.items():
        schema = pq.read_schema(demo / f"{table}.parquet")
        for column, kind in expected.items():
            assert column in schema.names, f"{table}.{column} is missing"
            assert schema.field(column).type == kind, (
                f"{table}.{column} is {schema.field(column).type}, expected {kind}"
            )
    customers = pq.read_schema(demo / "customers.parquet")
    assert pa.types.is_integer(customers.field("age").type), (
        "age should be an integer profile column"
    )
    for column in ("region", "segment", "income_band"):
        assert customers.field(column).type == STR, (
            f"customers.{column} should be a string profile column"
        )
    satisfaction = pq.read_schema(demo / "interactions.parquet").field("satisfaction").type
    assert pa.types.is_integer(satisfaction), (
        f"satisfaction is {satisfaction}, expected a 1..5 score"
    )
    settings = yaml.safe_load((demo / "tierwise.yaml").read_text())
    assert settings == {
        "churn_definition": "closed",
        "horizon_days": 90,
        "tier_order": TIER_ORDER,
        "exclude_columns": ["full_name", "phone"],
        "allow_protected": ["age"],
        "interaction_roles": {
            "complaint": ["complaint"],
            "engagement": ["login", "campaign_response"],
        },
        "data_end": dt.date(2026, 6, 30),
    }, f"unexpected tierwise.yaml: {settings}"


def test_contract_rules_hold(db: duckdb.DuckDBPyConnection) -> None:
    rules = {
        "customer_id unique and non-null": "SELECT count(*) - count(DISTINCT customer_id) + count(*) FILTER (customer_id IS NULL) FROM customers",
        "signup_date non-null": "SELECT count(*) FILTER (signup_date IS NULL) FROM customers",
        "transactions ts/amount non-null": "SELECT count(*) FILTER (ts IS NULL OR amount IS NULL) FROM transactions",
        "holdings closed >= opened": "SELECT count(*) FILTER (product IS NULL OR opened IS NULL OR closed < opened) FROM holdings",
        "satisfaction in 1..5": "SELECT count(*) FILTER (satisfaction NOT BETWEEN 1 AND 5) FROM interactions",
        "interaction kind known": f"SELECT count(*) FILTER (kind IS NULL OR kind NOT IN {tuple(KINDS)}) FROM interactions",
        "tier names from tier_order": f"SELECT count(*) FILTER (tier IS NULL OR effective IS NULL OR tier NOT IN {tuple(TIER_ORDER)}) FROM tiers",
        **{
            f"{table} customers exist": f"SELECT count(*) FROM {table} WHERE customer_id NOT IN (SELECT customer_id FROM customers)"
            for table in TABLES[1:]
        },
    }
    broken = {rule: n for rule, sql in rules.items() if (n := one(db, sql)[0])}
    assert not broken, f"rows breaking contract rules: {broken}"
    assert one(db, "SELECT min(customer_id), max(customer_id) FROM customers") == (
        "C0000001",
        "C0010000",
    )


def test_lifecycle_is_consistent(db: duckdb.DuckDBPyConnection) -> None:
    checks = {
        "events outside the period": "SELECT count(*) FROM (SELECT ts FROM transactions UNION ALL SELECT ts FROM interactions) "
        "WHERE ts < TIMESTAMPTZ '2023-07-01 00:00:00+00' OR ts >= TIMESTAMPTZ '2026-07-01 00:00:00+00'",
        "events before signup or on/after closure": "SELECT count(*) FROM (SELECT customer_id, ts FROM transactions UNION ALL "
        "SELECT customer_id, ts FROM interactions) JOIN customers USING (customer_id) "
        "WHERE ts::DATE < signup_date OR ts::DATE >= closed_date",
        "holdings open after the customer closed": "SELECT count(*) FROM holdings JOIN customers USING (customer_id) "
        "WHERE closed_date IS NOT NULL AND (closed IS NULL OR closed > closed_date)",
        "holdings opened before signup": "SELECT count(*) FROM holdings JOIN customers USING (customer_id) WHERE opened < signup_date",
        "customers without a tier at signup or start": "SELECT count(*) FROM customers LEFT JOIN (SELECT customer_id, min(effective) first "
        "FROM tiers GROUP BY 1) USING (customer_id) WHERE first IS NULL OR first > greatest(signup_date, DATE '2023-07-01')",
        "tier rows after the data or the closure": "SELECT count(*) FROM tiers JOIN customers USING (customer_id) "
        "WHERE effective > DATE '2026-06-30' OR effective >= closed_date",
        "closures after data_end": "SELECT count(*) FROM customers WHERE closed_date > DATE '2026-06-30' OR closed_date <= signup_date",
    }
    broken = {check: n for check, sql in checks.items() if (n := one(db, sql)[0])}
    assert not broken, f"rows breaking the customer lifecycle: {broken}"
    before, during = one(
        db,
        "SELECT count(*) FILTER (signup_date < DATE '2023-07-01'), count(*) FILTER (signup_date >= DATE '2023-07-01') FROM customers",
    )
    assert before > during > 0, (
        f"most customers should predate the period, some join during it: {before} before, {during} during"
    )


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    first, again, other = (
        generate_demo_data(tmp_path / name, customers=500, seed=seed)
        for name, seed in (("a", 1), ("b", 1), ("c", 2))
    )
    for table in TABLES:
        name = f"{table}.parquet"
        assert (first / name).read_bytes() == (again / name).read_bytes(), (
            f"{name} differs between runs with the same seed"
        )
        assert (first / name).read_bytes() != (other / name).read_bytes(), (
            f"{name} is the same for seeds 1 and 2"
        )
    assert (first / "tierwise.yaml").read_text() == (again / "tierwise.yaml").read_text()


def test_top_fifth_of_customers_bring_most_of_the_value(db: duckdb.DuckDBPyConnection) -> None:
    # Value as of data_end: trailing 12-month net transactions plus 12 months of fees of open holdings.
    share, customers = one(
        db,
        """
        WITH active AS (SELECT customer_id FROM customers WHERE closed_date IS NULL),
        spend AS (SELECT customer_id, sum(amount) AS v FROM transactions WHERE ts >= TIMESTAMPTZ '2025-07-01 00:00:00+00' GROUP BY 1),
        fees AS (SELECT customer_id, 12 * sum(coalesce(monthly_fee, 0)) AS v FROM holdings WHERE closed IS NULL GROUP BY 1),
        value AS (SELECT coalesce(s.v, 0) + coalesce(f.v, 0) AS v FROM active LEFT JOIN spend s USING (customer_id) LEFT JOIN fees f USING (customer_id)),
        ranked AS (SELECT v, row_number() OVER (ORDER BY v DESC) AS r, count(*) OVER () AS n FROM value)
        SELECT sum(v) FILTER (r <= 0.2 * n) / sum(v), any_value(n) FROM ranked""",
    )
    assert customers > 3000, f"too few active customers at data_end: {customers}"
    assert 0.70 <= share <= 0.88, (
        f"top 20% of customers bring {share:.1%} of value, expected 70-88%"
    )


def test_monthly_churn_rate_is_one_to_three_percent(db: duckdb.DuckDBPyConnection) -> None:
    rate, lowest, highest = one(
        db,
        """
        WITH months AS (SELECT unnest(range(DATE '2023-07-01', DATE '2026-07-01', INTERVAL 1 MONTH))::DATE AS m),
        rates AS (SELECT
            count(*) FILTER (c.closed_date >= m AND c.closed_date < m + INTERVAL 1 MONTH)
            / count(*) FILTER (c.signup_date <= m AND (c.closed_date IS NULL OR c.closed_date > m)) AS r
            FROM months CROSS JOIN customers c GROUP BY m)
        SELECT avg(r), min(r), max(r) FROM rates""",
    )
    assert 0.01 <= rate <= 0.03, (
        f"average monthly churn rate {rate:.2%}, expected 1-3% (months range {lowest:.2%}-{highest:.2%})"
    )


def _window_metrics(db: duckdb.DuckDBPyConnection, refs: str) -> dict[bool, dict[str, float]]:
    """Per group of `refs` (customer_id, ref, grp), in the 90 days before ref: mean complaints,
    mean satisfaction, median daily spend relative to the 275 days before, and the group size."""
    rows = db.execute(f"""
        WITH refs AS ({refs}),
        spend AS (SELECT r.customer_id, r.grp,
                sum(t.amount) FILTER (t.ts >= r.ref - INTERVAL 90 DAY) / 90 AS recent,
                sum(t.amount) FILTER (t.ts < r.ref - INTERVAL 90 DAY) / 275 AS earlier
            FROM refs r JOIN transactions t ON t.customer_id = r.customer_id
                AND t.ts >= r.ref - INTERVAL 365 DAY AND t.ts < r.ref GROUP BY ALL),
        contacts AS (SELECT r.customer_id, count(i.kind) FILTER (i.kind = 'complaint') AS complaints, avg(i.satisfaction) AS sat
            FROM refs r LEFT JOIN interactions i ON i.customer_id = r.customer_id
                AND i.ts >= r.ref - INTERVAL 90 DAY AND i.ts < r.ref GROUP BY ALL)
        SELECT grp, avg(complaints), avg(sat), median(coalesce(recent, 0) / earlier) FILTER (earlier > 0), count(*)
        FROM refs JOIN contacts USING (customer_id) LEFT JOIN spend USING (customer_id, grp) GROUP BY grp""").fetchall()
    names = ("complaints", "satisfaction", "spend", "customers")
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}


def test_churn_is_preceded_by_falling_spend_complaints_and_low_satisfaction(
    db: duckdb.DuckDBPyConnection,
) -> None:
    # Churners at their closure date; non-churners at the same dates (assigned in turn), both with a year of history.
    metrics = _window_metrics(
        db,
        """
        WITH churners AS (SELECT customer_id, closed_date::TIMESTAMPTZ AS ref, row_number() OVER (ORDER BY customer_id) - 1 AS i
                FROM customers WHERE closed_date >= DATE '2024-07-01' AND signup_date <= closed_date - 365),
            stayers AS (SELECT customer_id, row_number() OVER (ORDER BY customer_id) - 1 AS i
                FROM customers WHERE closed_date IS NULL AND signup_date <= DATE '2024-07-01')
        SELECT customer_id, ref, true AS grp FROM churners
        UNION ALL SELECT s.customer_id, c.ref, false FROM stayers s JOIN churners c ON c.i = s.i % (SELECT count(*) FROM churners)""",
    )
    churn, stay = metrics[True], metrics[False]
    assert churn["customers"] > 300, f"too few churners with a year of history: {churn}"
    assert churn["complaints"] > 1.5 * stay["complaints"], (
        f"complaints in the 90 days before churn: {churn} vs stayers {stay}"
    )
    assert churn["satisfaction"] < stay["satisfaction"] - 0.3, (
        f"satisfaction in the 90 days before churn: {churn} vs stayers {stay}"
    )
    assert churn["spend"] < 0.8 * stay["spend"], (
        f"spend in the 90 days before churn relative to earlier: {churn} vs stayers {stay}"
    )


def test_churners_drop_a_product_before_leaving(db: duckdb.DuckDBPyConnection) -> None:
    share = one(
        db,
        """
        SELECT avg(early::INT) FROM (SELECT c.customer_id, bool_or(h.closed < c.closed_date) AS early
        FROM customers c JOIN holdings h USING (customer_id)
        WHERE c.closed_date IS NOT NULL GROUP BY 1 HAVING count(*) > 1)""",
    )[0]
    assert share > 0.5, (
        f"only {share:.0%} of churners with several products closed one before leaving"
    )


def test_upgrades_follow_growing_spend(db: duckdb.DuckDBPyConnection) -> None:
    # Spend in the 180 days before an upgrade against the 180 days before that; non-upgraders at the same dates.
    growth = dict(
        db.execute("""
        WITH ranked AS (SELECT customer_id, effective, rank, lag(rank) OVER (PARTITION BY customer_id ORDER BY effective) AS prev
                FROM tiers JOIN tier_rank USING (tier)),
            upgrades AS (SELECT customer_id, min(effective) AS ref FROM ranked WHERE rank > prev GROUP BY 1),
            up AS (SELECT u.customer_id, u.ref::TIMESTAMPTZ AS ref, row_number() OVER (ORDER BY u.customer_id) - 1 AS i
                FROM upgrades u JOIN customers c USING (customer_id) WHERE c.signup_date <= u.ref - 360),
            flat AS (SELECT customer_id, signup_date, closed_date, row_number() OVER (ORDER BY customer_id) - 1 AS i
                FROM customers WHERE customer_id NOT IN (SELECT customer_id FROM upgrades)),
            refs AS (SELECT customer_id, ref, true AS grp FROM up UNION ALL
                SELECT f.customer_id, u.ref, false FROM flat f JOIN up u ON u.i = f.i % (SELECT count(*) FROM up)
                WHERE f.signup_date <= u.ref::DATE - 360 AND (f.closed_date IS NULL OR f.closed_date > u.ref::DATE)),
            spend AS (SELECT r.grp, r.customer_id, sum(t.amount) FILTER (t.ts >= r.ref - INTERVAL 180 DAY) AS recent,
                    sum(t.amount) FILTER (t.ts < r.ref - INTERVAL 180 DAY) AS earlier
                FROM refs r JOIN transactions t ON t.customer_id = r.customer_id
                    AND t.ts >= r.ref - INTERVAL 360 DAY AND t.ts < r.ref GROUP BY ALL)
        SELECT grp, median(coalesce(recent, 0) / earlier) FROM spend WHERE earlier > 0 GROUP BY grp""").fetchall()
    )
    assert set(growth) == {True, False}, (
        "expected both upgraders and non-upgraders with a year of history"
    )
    assert growth[True] > growth[False] + 0.05, (
        f"spend growth before upgrade {growth[True]:.2f} vs {growth[False]:.2f} without"
    )


def test_product_openings_follow_life_stage(db: duckdb.DuckDBPyConnection) -> None:
    by_product = {
        row[0]: row[1:]
        for row in db.execute("""
        SELECT product, avg(age), avg((age BETWEEN 30 AND 45)::INT), count(*) FROM holdings JOIN customers USING (customer_id)
        WHERE opened >= DATE '2023-07-01' AND age IS NOT NULL GROUP BY 1""").fetchall()
    }
    population_age, population_30_45 = one(
        db, "SELECT avg(age), avg((age BETWEEN 30 AND 45)::INT) FROM customers"
    )
    mortgage_age, mortgage_30_45, mortgages = by_product["mortgage"]
    assert mortgages > 100, f"too few mortgage openings: {mortgages}"
    assert mortgage_30_45 > max(0.6, 1.5 * population_30_45), (
        f"{mortgage_30_45:.0%} of mortgage openings are aged 30-45 (population {population_30_45:.0%})"
    )
    investment_age = by_product["investment"][0]
    assert investment_age > max(population_age, mortgage_age) + 5, (
        f"investment openers average {investment_age:.0f} years, mortgage {mortgage_age:.0f}, all {population_age:.0f}"
    )
    assert by_product["credit_card"][0] < investment_age - 10, (
        "credit cards should be opened by younger customers than investments"
    )
    assert by_product["personal_loan"][0] < population_age, (
        "personal loans should be opened by younger than average customers"
    )


def test_data_has_refunds_and_missing_values(db: duckdb.DuckDBPyConnection) -> None:
    gaps = {
        "refunds": "SELECT count(*) FILTER (amount < 0) FROM transactions",
        "null product": "SELECT count(*) FILTER (product IS NULL) FROM transactions",
        "null transaction channel": "SELECT count(*) FILTER (channel IS NULL) FROM transactions",
        "null satisfaction": "SELECT count(*) FILTER (satisfaction IS NULL) FROM interactions",
        "answered satisfaction": "SELECT count(satisfaction) FROM interactions",
        "null age": "SELECT count(*) FILTER (age IS NULL) FROM customers",
        "null income_band": "SELECT count(*) FILTER (income_band IS NULL) FROM customers",
        "open customers": "SELECT count(*) FILTER (closed_date IS NULL) FROM customers",
    }
    missing = [gap for gap, sql in gaps.items() if one(db, sql)[0] == 0]
    assert not missing, f"the demo data should contain: {missing}"
    null_product_share = one(db, "SELECT avg((product IS NULL)::INT) FROM transactions")[0]
    assert null_product_share < 0.1, (
        f"product should be set on most transactions, {null_product_share:.0%} are null"
    )
