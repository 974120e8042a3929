"""Run-time settings shared by every command and the service (env prefix ``TIERWISE_``)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    def tracking_uri(self) -> str:
        """The MLflow tracking URI, defaulting to the embedded SQLite store."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.home.resolve() / 'mlflow.db'}"

    def scratch_dir(self) -> Path:
        """A folder under home for DuckDB spill files and staging."""
        return self.home / "tmp"
