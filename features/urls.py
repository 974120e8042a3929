"""Database URLs: the driver Tierwise connects with, the engine it opens, and how a URL is shown.

Every package opens its SQL databases here, or through ``serving.store.open_engine``, which
builds on ``create_engine``: data sources (``features.contract``), the online store and the
decision log, and the MLflow backend store (``tierwise.settings`` normalises its URI).
``tierwise.settings`` imports this module, so it stays light: the standard library only,
SQLAlchemy when an engine is made.
"""

from __future__ import annotations

import re
from os import PathLike
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

POSTGRESQL = "postgresql+psycopg"  # psycopg 3, a dependency; SQLAlchemy 2.0 would pick psycopg2
MASK = "***"
_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|passwd|pwd)=)[^&#]*")


def engine_url(url: str) -> str:
    """The URL to hand SQLAlchemy or MLflow: ``postgresql://`` and ``postgres://`` use psycopg 3.

    A URL naming its driver (``postgresql+psycopg2://``), any other database and a path are
    returned as they are.
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("postgresql", "postgres"):
        return f"{POSTGRESQL}://{rest}"
    return url


def create_engine(url: str, **options: Any) -> sa.Engine:
    """A SQLAlchemy engine for ``url`` (through ``engine_url``) that never shows the bound
    parameters, customer data among them, in an exception message or a log line."""
    import sqlalchemy as sa

    return sa.create_engine(engine_url(url), hide_parameters=True, **options)


def safe_url(url: str | PathLike[str]) -> str:
    """A URL or path for messages, logs, reports and run parameters: any password masked.

    ``postgresql://ana:secret@db/base`` becomes ``postgresql://ana:***@db/base``; a
    ``password=`` query parameter is masked too; paths and URLs without a password are
    returned as they are. The user information is taken to end at the last ``@``, so a
    password holding an unescaped ``@`` or ``/`` is masked whole (at worst, more is masked
    than needed, never less).
    """
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    at = -1 if rest.startswith("/") else rest.rfind("@")  # sqlite:////path has no user part
    if at > 0:
        user, colon, _ = rest[:at].partition(":")
        if colon:
            rest = f"{user}:{MASK}{rest[at:]}"
    return _SECRET_QUERY.sub(rf"\g<1>{MASK}", f"{scheme}{sep}{rest}")
