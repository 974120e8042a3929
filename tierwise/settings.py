"""Run-time settings shared by every command and the service (env prefix ``TIERWISE_``)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.urls import engine_url


class Settings(BaseSettings):
    """Where Tierwise keeps its state and how it talks to the stores.

    Built by the CLI or the service and passed down; nothing reads the environment
    at import time. Every store defaults to an embedded file under ``home``.
    """

    model_config = SettingsConfigDict(env_prefix="TIERWISE_", extra="ignore")

    home: Path = Field(Path(".tierwise"), description="Folder for everything written at run time.")
    mlflow_tracking_uri: str | None = Field(
        None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "TIERWISE_MLFLOW_TRACKING_URI"),
        description="MLflow tracking and registry URI; default an SQLite file under home.",
    )
    threads: int = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)),
        ge=1,
        description="Threads for DuckDB and LightGBM; never more than the cores this process has.",
    )
    memory_limit: str = Field("8GB", description="DuckDB memory limit; it spills to disk beyond.")
    online_store_url: str | None = Field(
        None, description="SQLAlchemy URL of the online feature store; default SQLite under home."
    )
    decision_store_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the decision log and feedback; default SQLite under home.",
    )
    api_keys: SecretStr | None = Field(
        None, description="Comma-separated bearer API keys accepted by the service (never logged)."
    )
    admin_keys: SecretStr | None = Field(
        None,
        description="Comma-separated bearer keys for /v1/admin/ routes and /metrics (never logged).",
    )
    metrics_keys: SecretStr | None = Field(
        None, description="Comma-separated bearer keys that may read /metrics only (never logged)."
    )
    service_threads: int = Field(
        2, ge=1, description="Threads per service worker for store I/O and predictions."
    )
    service_queue: int = Field(
        6,
        ge=0,
        description="Requests a service worker admits beyond its threads; past that it answers "
        "429 with Retry-After.",
    )
    policy_file: Path | None = Field(
        None, description="YAML file with next-best-action policy settings."
    )
    dataset_settings: Path | None = Field(
        None,
        description="YAML file of dataset settings for any source (a SQL URL too); it replaces "
        "a dataset directory's tierwise.yaml, and --settings replaces it.",
    )

    def tracking_uri(self) -> str:
        """The MLflow tracking URI, defaulting to the embedded SQLite store; a PostgreSQL
        backend store's ``postgresql://`` uses psycopg 3 (``features.urls.engine_url``)."""
        if self.mlflow_tracking_uri:
            return engine_url(self.mlflow_tracking_uri)
        return f"sqlite:///{self.home.resolve() / 'mlflow.db'}"

    def online_url(self) -> str:
        return self.online_store_url or f"sqlite:///{self.home.resolve() / 'online.db'}"

    def decisions_url(self) -> str:
        return self.decision_store_url or f"sqlite:///{self.home.resolve() / 'decisions.db'}"

    def keys(self) -> frozenset[str]:
        """The accepted agent API keys (empty: the service refuses to start)."""
        return _split_keys(self.api_keys)

    def admin_key_set(self) -> frozenset[str]:
        """The admin keys (empty: no one may reload or read the metrics but metrics keys)."""
        return _split_keys(self.admin_keys)

    def metrics_key_set(self) -> frozenset[str]:
        return _split_keys(self.metrics_keys)

    def scratch_dir(self) -> Path:
        """A folder under home for DuckDB spill files and staging."""
        return self.home / "tmp"


def _split_keys(value: SecretStr | None) -> frozenset[str]:
    raw = value.get_secret_value() if value else ""
    return frozenset(k.strip() for k in raw.split(",") if k.strip())
