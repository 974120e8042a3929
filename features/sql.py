"""Quoting for the SQL text Tierwise builds (DuckDB dialect, transpiled to Spark as needed)."""

from __future__ import annotations


def ident(name: str) -> str:
    """A quoted identifier: ``a"b`` -> ``"a""b"``."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A quoted string literal: ``O'Neil`` -> ``'O''Neil'``."""
    return "'" + text.replace("'", "''") + "'"
