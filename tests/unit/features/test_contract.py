"""The data contract: every rule reported with table, column, rows and examples."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from features.contract import ContractError, load_dataset, validate_dataset
from features.validation import ValidationReport
from tests.conftest import base_tables


def broken(table: str, **changes) -> dict[str, pd.DataFrame]:
    """The valid base tables with one table's columns replaced."""
    tables = base_tables()
    frame = tables[table].copy()
    for column, values in changes.items():
        frame[column] = values
    tables[table] = frame
    return tables


def only_problem(report, table: str, column: str):
    found = [p for p in report.problems if p.table == table and p.column == column]
    assert len(found) == 1, f"expected one problem on {table}.{column}, got {report.problems}"
    return found[0]


def test_valid_dataset_passes_with_row_counts(make_dataset):
    report = validate_dataset(make_dataset())
    assert report.ok, report.render()
    assert report.rows == {
        "customers": 3,
        "transactions": 4,
        "holdings": 2,
        "interactions": 2,
        "tiers": 4,
    }


@pytest.mark.parametrize(
    ("table", "changes", "column", "rule", "rows", "examples"),
    [
        ("customers", {"customer_id": ["A", "A", "C"]}, "customer_id", "must be unique", 2, ("A",)),
        ("customers", {"customer_id": ["A", None, "C"]}, "customer_id", "must not be null", 1, ()),
        (
            "customers",
            {"signup_date": ["2023-01-10", "2023-02-30", "yesterday"]},
            "signup_date",
            "must be a date",
            2,
            ("B", "C"),
        ),
        (
            "customers",
            {"closed_date": [None, "2022-01-01", None]},
            "closed_date",
            "must not be before signup_date",
            1,
            ("B",),
        ),
        (
            "transactions",
            {"amount": [1.0, "ten", 3.0, 4.0]},
            "amount",
            "must be a number",
            1,
            ("A",),
        ),
        (
            "transactions",
            {"amount": [1.0, 2.0, 3.0, None]},
            "amount",
            "must not be null",
            1,
            ("C",),
        ),
        (
            "transactions",
            {"ts": ["2023-02-01", "soon", "2023-05-05T12:00:00Z", "2023-07-01"]},
            "ts",
            "must be a timestamp",
            1,
            ("A",),
        ),
        (
            "transactions",
            {"customer_id": ["A", "X", "Y", "C"]},
            "customer_id",
            "must exist in customers",
            2,
            ("X", "Y"),
        ),
        (
            "holdings",
            {"closed": ["2022-12-31", None]},
            "closed",
            "must not be before opened",
            1,
            ("A",),
        ),
        ("holdings", {"product": ["checking", None]}, "product", "must not be null", 1, ("B",)),
        (
            "interactions",
            {"satisfaction": [0.0, 6.0]},
            "satisfaction",
            "must be between 1 and 5",
            2,
            ("B",),
        ),
        (
            "tiers",
            {"tier": ["small", "gold", "small", "platinum"]},
            "tier",
            "must be one of tier_order",
            2,
            ("A", "B"),
        ),
    ],
)
def test_each_broken_rule_is_reported(make_dataset, table, changes, column, rule, rows, examples):
    # Given a dataset with one rule broken; when validated; then exactly that rule is reported
    report = validate_dataset(make_dataset(broken(table, **changes)))
    problem = only_problem(report, table, column)
    assert rule in problem.rule, problem
    assert problem.rows == rows, problem
    assert problem.examples == examples, problem
    assert table in str(problem) and column in str(problem)


def test_every_problem_is_reported_at_once(make_dataset):
    tables = broken("customers", customer_id=["A", "A", None])
    tables["holdings"] = broken("holdings", closed=["2020-01-01", None])["holdings"]
    report = validate_dataset(make_dataset(tables))
    assert {(p.table, p.column) for p in report.problems} >= {
        ("customers", "customer_id"),
        ("holdings", "closed"),
    }, report.render()


def test_missing_required_table_and_column(make_dataset):
    tables = base_tables()
    del tables["transactions"]
    tables["customers"] = tables["customers"].drop(columns="signup_date")
    report = validate_dataset(make_dataset(tables))
    assert only_problem(report, "transactions", "").rule.startswith("required table is missing")
    assert only_problem(report, "customers", "signup_date").rule == "required column is missing"


def test_optional_tables_may_be_absent(make_dataset):
    tables = {k: v for k, v in base_tables().items() if k in ("customers", "transactions")}
    assert validate_dataset(make_dataset(tables)).ok


@pytest.mark.parametrize(
    ("settings", "column", "fragment"),
    [
        ({"horizon_days": 0}, "horizon_days", "greater than or equal to 1"),
        ({"churn_definition": "gone"}, "churn_definition", "'closed' or 'inactive'"),
        ({"horizon_dayz": 30}, "horizon_dayz", "unknown setting"),
        ({"exclude_columns": ["phone"]}, "exclude_columns", "no column 'phone'"),
        ({"exclude_columns": ["customer_id"]}, "exclude_columns", "contract column"),
        (
            {"cross_sell_products": ["yacht"]},
            "cross_sell_products",
            "no holding has product 'yacht'",
        ),
        ({"tier_order": ["small", "small", "major", "ordinary"]}, "tier_order", "twice"),
        ({"data_end": "someday"}, "data_end", "valid date"),
        ({"allow_protected": ["gender"]}, "allow_protected", "no column 'gender'"),
        (
            {"interaction_roles": {"complaint": ["grievance"]}},
            "interaction_roles.complaint",
            "names kind 'grievance', which no interaction has",
        ),
        (
            {"interaction_roles": {"complaints": ["complaint"]}},
            "interaction_roles.complaints",
            "unknown setting",
        ),
        ({"interaction_roles": {"complaint": "complaint"}}, "interaction_roles.complaint", "list"),
        ({"allow_protected": 5}, "allow_protected", "list"),
    ],
)
def test_bad_settings_are_reported(make_dataset, settings, column, fragment):
    report = validate_dataset(make_dataset(settings=settings))
    problem = only_problem(report, "tierwise.yaml", column)
    assert fragment in problem.rule, problem


def test_closed_churn_definition_needs_closures(make_dataset):
    tables = broken("customers", closed_date=[None, None, None])
    report = validate_dataset(make_dataset(tables, settings={"churn_definition": "closed"}))
    assert (
        "no customer has a closed_date"
        in only_problem(report, "tierwise.yaml", "churn_definition").rule
    )


def test_load_raises_with_the_report_and_defines_nothing(make_dataset):
    with pytest.raises(ContractError) as err:
        load_dataset(make_dataset(broken("customers", customer_id=["A", "A", "C"])))
    assert "customers.customer_id: must be unique" in str(err.value)


def test_loaded_dataset_is_typed_and_settings_resolved(make_dataset):
    # Given CSV text and a settings file; when loaded; then views carry contract types
    data = make_dataset(settings={"horizon_days": 30})
    ds = load_dataset(data, overrides={"exclude_columns": ["region"]})
    types = dict(
        ds.con.execute("SELECT column_name, column_type FROM (DESCRIBE transactions)").fetchall()
    )
    assert types["ts"] == "TIMESTAMP" and types["amount"] == "DOUBLE", types
    assert ds.settings.horizon_days == 30
    assert ds.settings.churn_definition == "closed", (
        "a closed_date exists, so closures define churn"
    )
    assert ds.settings.data_end == dt.date(2024, 2, 1), "latest date in any table"
    assert ds.profile == {"age": "numeric"}, "excluded columns never reach features"
    ts = ds.con.execute("SELECT min(ts) FROM transactions").fetchall()[0][0]
    assert ts == dt.datetime(2023, 2, 1, 10, 0), "timestamps are UTC wall-clock"


def test_command_line_overrides_win_over_settings_file(make_dataset):
    ds = load_dataset(make_dataset(settings={"horizon_days": 30}), overrides={"horizon_days": 60})
    assert ds.settings.horizon_days == 60


def test_inactive_is_the_default_without_closures(make_dataset):
    ds = load_dataset(make_dataset(broken("customers", closed_date=[None, None, None])))
    assert ds.settings.churn_definition == "inactive"


def test_parquet_and_csv_load_alike(make_dataset):
    a = load_dataset(make_dataset(fmt="csv", name="csv"))
    b = load_dataset(make_dataset(fmt="parquet", name="parquet"))
    query = "SELECT * FROM transactions ORDER BY customer_id, ts"
    pd.testing.assert_frame_equal(a.con.execute(query).df(), b.con.execute(query).df())


def test_sql_database_source(tmp_path):
    # Given the tables in a SQLite database; when loaded by URL; then validated and typed
    db = tmp_path / "base.db"
    with sqlite3.connect(db) as conn:
        for name, frame in base_tables().items():
            frame.to_sql(name, conn, index=False)
    ds = load_dataset(f"sqlite:///{db}")
    assert ds.tables == {"customers", "transactions", "holdings", "interactions", "tiers"}
    assert ds.con.execute("SELECT count(*) FROM transactions").fetchall()[0][0] == 4

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE holdings SET closed = '2000-01-01' WHERE customer_id = 'A'")
    report = validate_dataset(f"sqlite:///{db}")
    assert only_problem(report, "holdings", "closed").examples == ("A",)


def test_the_report_names_a_sql_source_without_its_password():
    report = ValidationReport("postgresql://ana:s3cret@db/base", rows={"customers": 3})
    assert report.render().splitlines()[0] == "postgresql://ana:***@db/base: customers 3"


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a directory nor a SQLAlchemy URL"):
        validate_dataset(tmp_path / "nope")


def test_a_settings_file_serves_a_sql_source_and_replaces_tierwise_yaml(tmp_path, make_dataset):
    # Given the base in a SQLite database, and a settings file beside it
    url = f"sqlite:///{tmp_path / 'base.db'}"
    engine = sa.create_engine(url)
    for name, frame in base_tables().items():
        frame.to_sql(name, engine, index=False)
    engine.dispose()
    settings = tmp_path / "bank.yaml"
    settings.write_text(yaml.safe_dump({"horizon_days": 30, "exclude_columns": ["region"]}))
    # When loaded with it
    ds = load_dataset(url, settings_file=settings)
    # Then its settings apply
    assert ds.settings.horizon_days == 30 and "region" not in ds.profile
    # And it replaces a directory's own tierwise.yaml
    data = make_dataset(settings={"horizon_days": 60})
    assert load_dataset(data, settings_file=settings).settings.horizon_days == 30
    assert load_dataset(data).settings.horizon_days == 60


def test_a_missing_settings_file_is_named(make_dataset, tmp_path):
    report = validate_dataset(make_dataset(), settings_file=tmp_path / "nope.yaml")
    assert [str(p) for p in report.problems] == [
        f"{tmp_path / 'nope.yaml'}: settings file does not exist"
    ]
