"""Reading the MLflow model registry: names, aliases and the native files of a version.

Training writes the registry (``training.registry``); serving and batch scoring only read
it, through this module, so that what they know of models comes from MLflow alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from models.model import Predictor

PREFIX = "tierwise-"
CHAMPION, CHALLENGER = "champion", "challenger"
# Artifacts of a training run that promotion and monitoring read back.
SPEC_FILE = "feature_spec.json"
SETTINGS_FILE = "dataset_settings.json"  # the DatasetSettings the model was trained under
PROFILE_FILE = "feature_profile.json"
# <target>.parquet: held-out feature rows plus the LABEL, AS_OF and HELD_OUT_SCORE columns
HOLDOUT_DIR = "holdout"
LABEL = "__label__"
AS_OF = "__as_of__"  # the rows' snapshot date
# The calibrated probability of the run's evaluation model, fitted without these rows. The
# registered model is refit on every row, these included, so its own scores on them are
# in-sample: the gate and monitoring read this column instead.
HELD_OUT_SCORE = "__held_out_score__"


def model_name(target: str) -> str:
    """Registered model name of a target key: ``churn`` -> ``tierwise-churn``,
    ``cross_sell_credit_card`` -> ``tierwise-cross-sell-credit-card``."""
    return PREFIX + target.replace("_", "-")


def client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@dataclass
class LoadedModel:
    """A registered version's predictor, with where it came from."""

    name: str
    version: str
    alias: str
    run_id: str
    predictor: Predictor
    spec: dict  # the feature spec the model was trained with
    settings: dict = field(default_factory=dict)  # its DatasetSettings; empty for old models


def tierwise_models(mlflow_client: MlflowClient) -> list[str]:
    """Names of the registered Tierwise models, sorted."""
    models = mlflow_client.search_registered_models(filter_string=f"name LIKE '{PREFIX}%'")
    return sorted(m.name for m in models)


def version_by_alias(mlflow_client: MlflowClient, name: str, alias: str):
    """The model version an alias points to, or None."""
    try:
        return mlflow_client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def load_version(
    tracking_uri: str, name: str, version: str, threads: int = 1, alias: str = ""
) -> LoadedModel:
    """Download a registered version's native files and load its predictor."""
    mv = client(tracking_uri).get_model_version(name, version)
    # models:/ URIs resolve through the global registry URI: set both, or a URI set by an
    # earlier call in this process (another tracking server) would be used.
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    root = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}"))
    folder = root / "artifacts" / "model"
    spec = json.loads((folder / SPEC_FILE).read_text())
    settings_path = folder / SETTINGS_FILE
    settings = json.loads(settings_path.read_text()) if settings_path.exists() else {}
    predictor = Predictor.load(folder, threads)
    return LoadedModel(name, str(version), alias, mv.run_id, predictor, spec, settings)


def load_aliased(
    tracking_uri: str, alias: str = CHAMPION, threads: int = 1
) -> dict[str, LoadedModel]:
    """Every Tierwise model's version under ``alias``, keyed by target (``churn``, ...).

    Raises:
        LookupError: no Tierwise model is registered, or none has the alias.
    """
    mlflow_client = client(tracking_uri)
    names = tierwise_models(mlflow_client)
    if not names:
        raise LookupError(
            f"no Tierwise models are registered at {tracking_uri}: run `tierwise train` first"
        )
    loaded = {}
    for name in names:
        mv = version_by_alias(mlflow_client, name, alias)
        if mv is not None:
            model = load_version(tracking_uri, name, mv.version, threads, alias)
            loaded[model.predictor.target] = model
    if not loaded:
        raise LookupError(f"no Tierwise model has a {alias!r} alias at {tracking_uri}")
    return loaded
