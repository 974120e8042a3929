"""The integration fixtures live in tests/conftest.py (model tests share them), but for
PostgreSQL: one throwaway server per session, from the installed binaries (tests/pg.py)."""

from collections.abc import Iterator

import pytest

from tests.conftest import DEMO_CUSTOMERS, SNAPSHOTS, Trained, train_in
from tests.pg import Cluster, PostgresMissingError, start_cluster

__all__ = ["DEMO_CUSTOMERS", "SNAPSHOTS", "Trained", "train_in"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A PostgreSQL server on 127.0.0.1 for this session; fails (never skips) without one."""
    try:
        cluster = start_cluster()
    except PostgresMissingError as err:
        pytest.fail(str(err), pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(postgres: Cluster) -> str:
    """A fresh, empty database on the session's server: ``postgresql://`` with a password."""
    return postgres.create_database()
