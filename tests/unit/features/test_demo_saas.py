"""Behaviour of the SaaS demo generator: contract, determinism and a base that behaves like SaaS."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from features import demo as bank
from features.contract import load_dataset
from features.demo_saas import generate_saas_data
from features.demo_saas_accounts import ADDONS

TABLES = ("customers", "transactions", "holdings", "interactions", "tiers")
TIER_ORDER = ["starter", "team", "business", "enterprise"]
SCORED = ("nps_survey", "support_ticket")
DATE, TS, STR, F64 = pa.date32(), pa.timestamp("us", tz="UTC"), pa.string(), pa.float64()
EXPECTED_TYPES = {
    "customers": {
        "customer_id": STR,
        "signup_date": DATE,
        "closed_date": DATE,
        "discount_pct": F64,
        "industry": STR,
        "company_size": STR,
        "country": STR,
        "billing": STR,
        "admin_email": STR,
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
# Monthly review panel: every account subscribed at a review (the first of a month, from
# October 2023 so that the 90 days before are in the data) with its plan just before it.
PANEL = """
    WITH reviews AS (SELECT unnest(range(DATE '2023-10-01', DATE '2026-04-01', INTERVAL 1 MONTH))::DATE AS r),
    ranked AS (SELECT customer_id, effective, rank FROM tiers JOIN tier_rank USING (tier)),
    panel AS (SELECT c.customer_id, v.r,
            (SELECT arg_max(rank, effective) FROM ranked t WHERE t.customer_id = c.customer_id AND t.effective < v.r) AS rank,
            (SELECT arg_max(rank, effective) FROM ranked t WHERE t.customer_id = c.customer_id AND t.effective <= v.r) AS after
        FROM customers c JOIN reviews v ON c.signup_date < v.r - 90 AND (c.closed_date IS NULL OR c.closed_date > v.r))
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5k-account base, generated once for the module."""
    return generate_saas_data(tmp_path_factory.mktemp("saas") / "data", customers=5_000, seed=0)


@pytest.fixture(scope="module")
def db(demo: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB views over the demo tables, `tier_rank` (tier, rank) and `monthly` event counts."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for table in TABLES:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{demo / table}.parquet')")
    con.execute("CREATE TABLE tier_rank (tier VARCHAR, rank INTEGER)")
    con.executemany(
        "INSERT INTO tier_rank VALUES (?, ?)", [(t, i) for i, t in enumerate(TIER_ORDER)]
    )
    # Events per account, kind and calendar month: windows of whole months before a review.
    con.execute("""CREATE TABLE monthly AS SELECT customer_id, kind, date_trunc('month', ts)::DATE AS month,
        count(*) AS n FROM interactions GROUP BY ALL""")
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    """The single result row of `sql`."""
    return con.execute(sql).fetchone()


def test_writes_every_table_with_contract_columns_and_types(demo: Path) -> None:
    for table, expected in EXPECTED_TYPES.items():
        schema = pq.read_schema(demo / f"{table}.parquet")
        for column, kind in expected.items():
            assert column in schema.names, f"{table}.{column} is missing"
            assert schema.field(column).type == kind, (
                f"{table}.{column} is {schema.field(column).type}, expected {kind}"
            )
    seats = pq.read_schema(demo / "customers.parquet").field("seats").type
    assert pa.types.is_integer(seats), f"seats is {seats}, expected an integer profile column"
    satisfaction = pq.read_schema(demo / "interactions.parquet").field("satisfaction").type
    assert pa.types.is_integer(satisfaction), (
        f"satisfaction is {satisfaction}, expected a 1..5 score"
    )


def test_settings_name_the_plans_and_the_roles_of_event_kinds(
    demo: Path, db: duckdb.DuckDBPyConnection
) -> None:
    settings = yaml.safe_load((demo / "tierwise.yaml").read_text())
    roles = settings.pop("interaction_roles")
    assert settings == {
        "churn_definition": "closed",
        "horizon_days": 90,
        "tier_order": TIER_ORDER,
        "data_end": dt.date(2026, 6, 30),
    }, f"unexpected tierwise.yaml: {settings}"
    assert set(roles) == {"complaint", "engagement", "satisfaction"}, f"roles: {roles}"
    assert set(roles["satisfaction"]) == set(SCORED), f"scored kinds: {roles['satisfaction']}"
    assert "bug_report" in roles["complaint"], f"complaint kinds: {roles['complaint']}"
    assert {"dashboard_view", "api_call", "report_export"} <= set(roles["engagement"]), (
        f"engagement kinds: {roles['engagement']}"
    )
    kinds = {row[0] for row in db.execute("SELECT DISTINCT kind FROM interactions").fetchall()}
    named = {kind for names in roles.values() for kind in names}
    assert named <= kinds, f"roles name kinds that never occur: {sorted(named - kinds)}"
    assert not set(roles["complaint"]) & set(roles["engagement"]), (
        "a kind cannot be both a complaint and engagement"
    )


def test_the_contract_loader_accepts_the_base(demo: Path) -> None:
    ds = load_dataset(demo)
    assert ds.tables == frozenset(TABLES), f"tables loaded: {sorted(ds.tables)}"
    assert ds.tier_order == TIER_ORDER, f"tier order {ds.tier_order}"
    assert ds.settings.data_end == dt.date(2026, 6, 30), f"data_end {ds.settings.data_end}"
    assert ds.settings.interaction_roles.satisfaction == list(SCORED)
    for column, kind in {
        "seats": "numeric",
        "discount_pct": "numeric",
        "billing": "categorical",
    }.items():
        assert ds.profile.get(column) == kind, f"profile column {column}: {ds.profile.get(column)}"


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    first, again, other = (
        generate_saas_data(tmp_path / name, customers=400, seed=seed)
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


def test_rejects_a_base_without_customers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="customers must be positive"):
        generate_saas_data(tmp_path / "empty", customers=0)


def test_has_twenty_event_kinds_and_none_of_the_bank_words(
    db: duckdb.DuckDBPyConnection,
) -> None:
    kinds = {row[0] for row in db.execute("SELECT DISTINCT kind FROM interactions").fetchall()}
    assert len(kinds) >= 20, f"only {len(kinds)} event kinds: {sorted(kinds)}"
    names = {
        f"{table}.{column}": {
            row[0] for row in db.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()
        }
        for table, column in (
            ("interactions", "kind"),
            ("transactions", "product"),
            ("holdings", "product"),
            ("tiers", "tier"),
        )
    }
    bank_words = {*bank.KINDS, *bank.PRODUCTS, *bank.TIER_ORDER}
    borrowed = {
        where: sorted(v for v in values if v and any(w in v for w in bank_words))
        for where, values in names.items()
    }
    assert not any(borrowed.values()), f"names borrowed from the bank demo: {borrowed}"
    assert names["holdings.product"] == set(ADDONS), f"add-ons held: {names['holdings.product']}"
    assert names["tiers.tier"] == set(TIER_ORDER), f"plans in tiers: {names['tiers.tier']}"
    assert names["transactions.product"] - {None} == set(TIER_ORDER) | set(ADDONS), (
        f"payments are for plans and add-ons: {names['transactions.product']}"
    )


def test_admin_email_identifies_each_account_and_is_not_excluded(
    demo: Path, db: duckdb.DuckDBPyConnection
) -> None:
    rows, distinct, shaped = one(
        db,
        "SELECT count(*), count(DISTINCT admin_email), count(*) FILTER (admin_email SIMILAR TO '[a-z]+\\.[a-z]+@[a-z0-9]+\\.example') FROM customers",
    )
    assert rows == distinct == shaped == 5_000, (
        f"{rows} accounts, {distinct} distinct admin e-mails, {shaped} shaped like an address"
    )
    settings = yaml.safe_load((demo / "tierwise.yaml").read_text())
    assert "admin_email" not in settings.get("exclude_columns", []), (
        "admin_email must be left for Tierwise to detect, not listed in exclude_columns"
    )


def test_lifecycle_is_consistent(db: duckdb.DuckDBPyConnection) -> None:
    checks = {
        "events outside the period": "SELECT count(*) FROM (SELECT ts FROM transactions UNION ALL SELECT ts FROM interactions) "
        "WHERE ts < TIMESTAMPTZ '2023-07-01 00:00:00+00' OR ts >= TIMESTAMPTZ '2026-07-01 00:00:00+00'",
        "events before signup or on/after cancellation": "SELECT count(*) FROM (SELECT customer_id, ts FROM transactions UNION ALL "
        "SELECT customer_id, ts FROM interactions) JOIN customers USING (customer_id) "
        "WHERE ts::DATE < signup_date OR ts::DATE >= closed_date",
        "add-ons open after the account closed": "SELECT count(*) FROM holdings JOIN customers USING (customer_id) "
        "WHERE closed_date IS NOT NULL AND (closed IS NULL OR closed > closed_date)",
        "add-ons opened before signup or closed before opened": "SELECT count(*) FROM holdings JOIN customers USING (customer_id) "
        "WHERE opened < signup_date OR closed < opened",
        "accounts without a plan at signup": "SELECT count(*) FROM customers LEFT JOIN (SELECT customer_id, min(effective) first "
        "FROM tiers GROUP BY 1) USING (customer_id) WHERE first IS NULL OR first <> signup_date",
        "plan rows after the data or the cancellation": "SELECT count(*) FROM tiers JOIN customers USING (customer_id) "
        "WHERE effective > DATE '2026-06-30' OR effective >= closed_date",
        "cancellations after data_end": "SELECT count(*) FROM customers WHERE closed_date > DATE '2026-06-30' OR closed_date <= signup_date",
        "scores out of 1..5": "SELECT count(*) FROM interactions WHERE satisfaction NOT BETWEEN 1 AND 5",
    }
    broken = {check: n for check, sql in checks.items() if (n := one(db, sql)[0])}
    assert not broken, f"rows breaking the account lifecycle: {broken}"


def test_monthly_churn_rate_is_one_and_a_half_to_two_and_a_half_percent(
    db: duckdb.DuckDBPyConnection,
) -> None:
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
    assert 0.015 <= rate <= 0.025, (
        f"average monthly churn rate {rate:.2%}, expected 1.5-2.5% (months range {lowest:.2%}-{highest:.2%})"
    )


def test_plans_are_billed_monthly_or_once_a_year_with_some_credits(
    db: duckdb.DuckDBPyConnection,
) -> None:
    # Plan payments per subscribed month in the period, by billing cadence.
    per_month = dict(
        db.execute(f"""
        WITH spans AS (SELECT customer_id, billing,
                (least(coalesce(closed_date, DATE '2026-07-01'), DATE '2026-07-01') - greatest(signup_date, DATE '2023-07-01')) / 30.44 AS months
            FROM customers WHERE coalesce(closed_date, DATE '2026-07-01') - greatest(signup_date, DATE '2023-07-01') > 400),
        paid AS (SELECT customer_id, count(*) AS n FROM transactions WHERE amount > 0 AND product IN {tuple(TIER_ORDER)} GROUP BY 1)
        SELECT billing, avg(coalesce(n, 0) / months) FROM spans LEFT JOIN paid USING (customer_id) GROUP BY 1""").fetchall()
    )
    assert 0.9 <= per_month["monthly"] <= 1.1, (
        f"monthly accounts pay their plan {per_month['monthly']:.2f} times a month"
    )
    assert 0.06 <= per_month["annual"] <= 0.12, (
        f"annual accounts pay their plan {per_month['annual']:.3f} times a month, expected about 1/12"
    )
    credits, share = one(
        db, "SELECT count(*) FILTER (amount < 0), avg((amount < 0)::INT) FROM transactions"
    )
    assert credits > 0 and share < 0.05, (
        f"credits should be negative and occasional: {credits} rows, {share:.1%} of payments"
    )


def test_plans_change_at_monthly_reviews_with_upgrades_and_some_downgrades(
    db: duckdb.DuckDBPyConnection,
) -> None:
    off_review, upgrades, downgrades, accounts = one(
        db,
        """
        WITH moves AS (SELECT customer_id, effective, rank - lag(rank) OVER (PARTITION BY customer_id ORDER BY effective) AS step
            FROM tiers JOIN tier_rank USING (tier))
        SELECT count(*) FILTER (effective >= DATE '2023-07-01' AND day(effective) <> 1),
            count(*) FILTER (step > 0 AND effective >= DATE '2023-07-01'),
            count(*) FILTER (step < 0 AND effective >= DATE '2023-07-01'),
            (SELECT count(*) FROM customers)
        FROM moves WHERE step IS NOT NULL""",
    )
    assert off_review == 0, f"{off_review} plan changes in the period fall outside a review day"
    assert upgrades > 0.15 * accounts, f"only {upgrades} upgrades for {accounts} accounts"
    assert 0.1 * upgrades < downgrades < upgrades, (
        f"{downgrades} downgrades against {upgrades} upgrades: expected some, fewer than upgrades"
    )


def _before_closure(db: duckdb.DuckDBPyConnection, select: str) -> dict[bool, tuple]:
    """`select` over `w` per group: churners at their cancellation (true), and accounts still
    subscribed at the end at the same dates (false, assigned in turn), all with a year of
    history; `w` holds (customer_id, grp, ref, recent, earlier): in-app engagement events in
    the 90 days before ref and in the 275 days before that."""
    rows = db.execute(f"""
        WITH churners AS (SELECT customer_id, closed_date AS ref, row_number() OVER (ORDER BY customer_id) - 1 AS i
                FROM customers WHERE closed_date >= DATE '2024-07-01' AND signup_date <= closed_date - 365),
            stayers AS (SELECT customer_id, row_number() OVER (ORDER BY customer_id) - 1 AS i
                FROM customers WHERE closed_date IS NULL AND signup_date <= DATE '2023-07-01'),
            refs AS (SELECT customer_id, ref, true AS grp FROM churners
                UNION ALL SELECT s.customer_id, c.ref, false FROM stayers s JOIN churners c ON c.i = s.i % (SELECT count(*) FROM churners)),
            w AS (SELECT r.customer_id, r.grp, r.ref,
                    count(*) FILTER (i.kind IN ('dashboard_view', 'search_query', 'comment_posted', 'report_export', 'automation_run')
                        AND i.ts >= r.ref - INTERVAL 90 DAY) / 90 AS recent,
                    count(*) FILTER (i.kind IN ('dashboard_view', 'search_query', 'comment_posted', 'report_export', 'automation_run')
                        AND i.ts < r.ref - INTERVAL 90 DAY) / 275 AS earlier,
                    count(*) FILTER (i.kind IN ('support_ticket', 'bug_report', 'ticket_escalated') AND i.ts >= r.ref - INTERVAL 90 DAY) AS trouble,
                    avg(i.satisfaction) FILTER (i.ts >= r.ref - INTERVAL 90 DAY) AS score
                FROM refs r LEFT JOIN interactions i ON i.customer_id = r.customer_id
                    AND i.ts >= r.ref - INTERVAL 365 DAY AND i.ts < r.ref GROUP BY ALL)
        SELECT grp, {select} FROM w GROUP BY grp""").fetchall()
    return {row[0]: row[1:] for row in rows}


def test_engagement_falls_in_the_months_before_a_cancellation(
    db: duckdb.DuckDBPyConnection,
) -> None:
    ratio = _before_closure(
        db, "median(recent / earlier) FILTER (earlier > 0), count(*) FILTER (earlier > 0)"
    )
    (churn, churners), (stay, stayers) = ratio[True], ratio[False]
    assert churners > 200, f"too few churners with a year of history: {churners}"
    assert churn < 0.75 and churn < stay - 0.2, (
        f"engagement in the 90 days before cancellation is {churn:.2f} of the earlier level "
        f"(median, {churners} churners), {stay:.2f} for {stayers} accounts that stay"
    )


def test_tickets_bugs_and_low_scores_precede_a_cancellation(
    db: duckdb.DuckDBPyConnection,
) -> None:
    metrics = _before_closure(db, "avg(trouble), avg(score)")
    (churn_trouble, churn_score), (stay_trouble, stay_score) = metrics[True], metrics[False]
    assert churn_trouble > 1.8 * stay_trouble, (
        f"tickets and bug reports in the 90 days before cancellation: {churn_trouble:.2f} "
        f"a churner vs {stay_trouble:.2f} for accounts that stay"
    )
    assert churn_score < stay_score - 0.4, (
        f"mean score in the 90 days before cancellation {churn_score:.2f} vs {stay_score:.2f}"
    )


def test_near_limit_signals_precede_an_upgrade(db: duckdb.DuckDBPyConnection) -> None:
    # At each review, accounts below the top plan: those upgraded then against the others,
    # by their limit warnings, API calls and added seats in the three months before.
    rows = db.execute(f"""{PANEL},
        before AS (SELECT p.customer_id, p.r, p.after > p.rank AS up,
                coalesce(sum(m.n) FILTER (m.kind = 'limit_warning'), 0) AS warnings,
                coalesce(sum(m.n) FILTER (m.kind = 'api_call'), 0) AS api,
                coalesce(sum(m.n) FILTER (m.kind = 'seat_added'), 0) AS seats
            FROM panel p LEFT JOIN monthly m ON m.customer_id = p.customer_id
                AND m.month >= p.r - INTERVAL 3 MONTH AND m.month < p.r
            WHERE p.rank < 3 GROUP BY ALL)
        SELECT up, count(*), avg((warnings > 0)::INT), avg(warnings), avg(api), avg(seats) FROM before GROUP BY up""").fetchall()
    by = {
        row[0]: dict(zip(("n", "warned", "warnings", "api", "seats"), row[1:], strict=True))
        for row in rows
    }
    up, flat = by[True], by[False]
    assert up["n"] > 300, f"too few upgrades at reviews: {up['n']}"
    assert up["warned"] > 3 * flat["warned"], (
        f"{up['warned']:.0%} of upgraders had a limit warning in the 3 months before, "
        f"{flat['warned']:.0%} of the others ({up} vs {flat})"
    )
    assert up["api"] > 1.3 * flat["api"], (
        f"API calls in the 3 months before an upgrade {up['api']:.1f} vs {flat['api']:.1f}"
    )
    assert up["seats"] > 1.5 * flat["seats"], (
        f"seats added in the 3 months before an upgrade {up['seats']:.1f} vs {flat['seats']:.1f}"
    )
    # Not trivial: many who upgrade had no warning, many warned do not upgrade soon.
    assert up["warned"] < 0.95, f"{up['warned']:.0%} of upgraders were warned: too easy a signal"


@pytest.mark.parametrize(
    ("addon", "kind"),
    [
        ("api_access", "api_call"),
        ("analytics_pack", "report_export"),
        ("extra_storage", "file_upload"),
        ("priority_support", "support_ticket"),
        ("sso", "seat_added"),
    ],
)
def test_related_events_precede_an_add_on_opening(
    db: duckdb.DuckDBPyConnection, addon: str, kind: str
) -> None:
    # At each review, accounts without the add-on: those opening it that month against the
    # others, by the related events in the three months before.
    rows = db.execute(f"""{PANEL},
        status AS (SELECT p.customer_id, p.r,
                bool_or(h.opened >= p.r AND h.opened < p.r + INTERVAL 1 MONTH) AS opens,
                bool_or(h.opened < p.r AND (h.closed IS NULL OR h.closed > p.r)) AS holds
            FROM panel p LEFT JOIN holdings h ON h.customer_id = p.customer_id AND h.product = '{addon}' GROUP BY ALL),
        before AS (SELECT s.customer_id, s.r, coalesce(s.opens, false) AS opens, coalesce(sum(m.n), 0) AS events
            FROM status s LEFT JOIN monthly m ON m.customer_id = s.customer_id AND m.kind = '{kind}'
                AND m.month >= s.r - INTERVAL 3 MONTH AND m.month < s.r
            WHERE NOT coalesce(s.holds, false) GROUP BY ALL)
        SELECT opens, count(*), avg(events) FROM before GROUP BY opens""").fetchall()
    by = {row[0]: row[1:] for row in rows}
    (openers, opened), (others, other) = by[True], by[False]
    assert openers > 40, f"too few {addon} openings at reviews: {openers}"
    assert opened > 1.5 * other, (
        f"{kind} events in the 3 months before opening {addon}: {opened:.2f} for {openers} "
        f"openings vs {other:.2f} for {others} account-months without it"
    )


def test_only_surveys_and_tickets_carry_scores(db: duckdb.DuckDBPyConnection) -> None:
    scored = {
        row[0]: row[1:]
        for row in db.execute(
            "SELECT kind, count(satisfaction), count(*) FROM interactions GROUP BY kind"
        ).fetchall()
    }
    stray = {kind: n for kind, (n, _) in scored.items() if n and kind not in SCORED}
    assert not stray, f"scores on kinds that are not surveys or tickets: {stray}"
    for kind in SCORED:
        answered, total = scored[kind]
        assert 0.2 < answered / total < 0.8, (
            f"{answered} of {total} {kind} rows scored: some should be unanswered"
        )


def test_data_has_gaps_and_every_billing_cadence(db: duckdb.DuckDBPyConnection) -> None:
    gaps = {
        "null interaction channel": "SELECT count(*) FILTER (channel IS NULL) FROM interactions",
        "null payment channel": "SELECT count(*) FILTER (channel IS NULL) FROM transactions",
        "null discount_pct": "SELECT count(*) FILTER (discount_pct IS NULL) FROM customers",
        "null industry": "SELECT count(*) FILTER (industry IS NULL) FROM customers",
        "null monthly_fee": "SELECT count(*) FILTER (monthly_fee IS NULL) FROM holdings",
        "annual accounts": "SELECT count(*) FILTER (billing = 'annual') FROM customers",
        "monthly accounts": "SELECT count(*) FILTER (billing = 'monthly') FROM customers",
        "open accounts": "SELECT count(*) FILTER (closed_date IS NULL) FROM customers",
        "accounts joining in the period": "SELECT count(*) FILTER (signup_date >= DATE '2023-07-01') FROM customers",
    }
    missing = [gap for gap, sql in gaps.items() if one(db, sql)[0] == 0]
    assert not missing, f"the demo data should contain: {missing}"
