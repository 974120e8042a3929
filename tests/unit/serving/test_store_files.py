"""What the stores leave on disk and in errors: files for their owner alone, no customer data."""

from __future__ import annotations

import os
import stat

import pytest
import sqlalchemy as sa

from serving.decisions import DecisionLog
from serving.store import OnlineStore, open_engine
from tests.unit.serving.test_decisions import make_decision
from tests.unit.serving.test_store import make_info, make_row


@pytest.fixture
def usual_umask():
    """The umask most systems run with (0644 files), whatever this process had."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def modes(folder) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in sorted(folder.iterdir())}


def test_the_online_store_and_decision_log_files_are_the_owners_alone(tmp_path, usual_umask):
    # Given a refreshed online store and a decision log with feedback, on SQLite (WAL)
    store = OnlineStore(f"sqlite:///{tmp_path / 'online.db'}")
    store.refresh([[make_row("A")]], make_info())
    log = DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}")
    log.record(make_decision())
    log.add_feedback("d1", "d1-c", "declined", "a1")
    # Then every file, the -wal and -shm files too (open: SQLite keeps them), is 0600
    found = modes(tmp_path)
    assert {"online.db-wal", "decisions.db-wal", "decisions.db-shm"} <= set(found), found
    assert found == dict.fromkeys(found, 0o600), f"customer data readable by others: {found}"
    store.close()
    log.close()


def test_an_existing_store_file_keeps_the_mode_its_operator_gave_it(tmp_path, usual_umask):
    path = tmp_path / "online.db"
    path.touch()
    path.chmod(0o640)
    OnlineStore(f"sqlite:///{path}").refresh([[make_row("A")]], make_info())
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_failed_statement_shows_no_customer_data(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path / 'online.db'}")
    with pytest.raises(sa.exc.DBAPIError) as caught, engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO missing (name) VALUES (:name)"), {"name": "Ana Lima"})
    assert "Ana Lima" not in str(caught.value), "bound parameters must stay out of messages"
