"""Reading the MLflow model registry: names, aliases and the native files of a version.

Training writes the registry (``training.registry``); serving and batch scoring only read
it, through this module, so that what they know of models comes from MLflow alone. MLflow
is imported by the functions that call it, not by this module: a service worker that loads
its champions from local files (``load_folder``) starts without it (seconds saved).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from features.urls import safe_url
from models.integrity import ModelIntegrityError, changed_files
from models.model import Predictor
from models.uplift import UpliftModel

if TYPE_CHECKING:
    from mlflow import MlflowClient

T = TypeVar("T")

PREFIX = "tierwise-"
# Uplift models (``models.uplift``): tierwise-uplift-<action slug>; not target models.
UPLIFT_PREFIX = PREFIX + "uplift-"
CHAMPION, CHALLENGER = "champion", "challenger"
# Model-version tag: JSON {path in the model folder: sha256}, set by training when it
# registers the version (models.integrity). In the registry's database, not the artifact
# store, so that whoever changes the files there does not change their digests too.
DIGEST_TAG = "tierwise.sha256"
# Where the native files are in a downloaded models:/ URI: MLflow keeps the pyfunc's
# artifact "model" (training's model folder) under artifacts/.
MODEL_FOLDER = ("artifacts", "model")
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


def uplift_model_name(action: str) -> str:
    """Registered name of an action's uplift model: ``retention`` -> ``tierwise-uplift-retention``,
    ``Credit Card`` -> ``tierwise-uplift-credit-card``."""
    from features.spec import slug

    return model_name(f"uplift_{slug(action)}")


def client(tracking_uri: str) -> MlflowClient:
    from mlflow import MlflowClient

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
    folder: Path | None = None  # the verified native files it was loaded from
    digests: dict[str, str] = field(default_factory=dict)  # their sha256, as registered


def tierwise_models(mlflow_client: MlflowClient) -> list[str]:
    """Names of the registered Tierwise target models, sorted (uplift models are apart:
    ``uplift_models``)."""
    models = mlflow_client.search_registered_models(filter_string=f"name LIKE '{PREFIX}%'")
    return sorted(m.name for m in models if not m.name.startswith(UPLIFT_PREFIX))


def uplift_models(mlflow_client: MlflowClient) -> list[str]:
    """Names of the registered uplift models, sorted."""
    found = mlflow_client.search_registered_models(filter_string=f"name LIKE '{UPLIFT_PREFIX}%'")
    return sorted(m.name for m in found)


def version_by_alias(mlflow_client: MlflowClient, name: str, alias: str):
    """The model version an alias points to, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def load_version(
    tracking_uri: str, name: str, version: str, threads: int = 1, alias: str = ""
) -> LoadedModel:
    """Download a registered version's native files, verify them and load its predictor.

    Every file of the model folder must have the sha256 recorded at registration
    (``DIGEST_TAG``), and no file may have been added, before any is parsed. A version
    registered before Tierwise recorded digests is refused, not loaded unverified:
    retraining registers verifiable versions (``tierwise train``, then ``tierwise
    promote``).

    Raises:
        ModelIntegrityError: no digests were recorded, a file changed, is missing or was
            added, or the files cannot be parsed; the message names the model, the version
            and the files.
        mlflow.exceptions.MlflowException: the version does not exist.
    """
    mv, folder, recorded = _download(tracking_uri, name, version)
    return load_folder(name, str(version), alias, mv.run_id, folder, recorded, threads)


def _download(tracking_uri: str, name: str, version: str):
    """A version's registry entry, the folder of its downloaded native files and the digests
    recorded for them (``load_version``; files not yet verified)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mv = client(tracking_uri).get_model_version(name, version)
    model = f"{name} v{version}"
    recorded = recorded_digests(model, mv.tags)
    # models:/ URIs resolve through the global registry URI: set both, or a URI set by an
    # earlier call in this process (another tracking server) would be used.
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        root = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}"))
    except (MlflowException, OSError) as err:
        raise ModelIntegrityError(f"{model}: its files cannot be downloaded: {err}") from err
    return mv, root.joinpath(*MODEL_FOLDER), recorded


def load_folder(
    name: str,
    version: str,
    alias: str,
    run_id: str,
    folder: Path,
    digests: Mapping[str, str],
    threads: int = 1,
) -> LoadedModel:
    """Load a version's native files from ``folder`` once they match ``digests`` (the sha256
    recorded at registration): every file there, none missing, none added.

    ``load_version`` calls it on the files it downloads; a copy of them elsewhere (the
    service's shared folder) is loaded the same way, with the digests of the registry.

    Raises:
        ModelIntegrityError: a file changed, is missing or was added, or the files cannot be
            parsed; the message names the model, the version and the files.
    """

    def load() -> LoadedModel:
        spec = json.loads((folder / SPEC_FILE).read_text())
        settings_path = folder / SETTINGS_FILE
        settings = json.loads(settings_path.read_text()) if settings_path.exists() else {}
        predictor = Predictor.load(folder, threads)
        return LoadedModel(
            name, version, alias, run_id, predictor, spec, settings, folder, dict(digests)
        )

    return _verified(f"{name} v{version}", folder, digests, load)


def _verified(model: str, folder: Path, digests: Mapping[str, str], load: Callable[[], T]) -> T:
    """``load()`` of a model's files once they match ``digests``; any failure to parse a
    registered file is refused, never a crash.

    Raises:
        ModelIntegrityError: a file changed, is missing or was added, or ``load`` failed.
    """
    changed = changed_files(folder, digests)
    if changed:
        raise ModelIntegrityError(
            f"{model}: sha256 mismatch: the model files changed after registration"
            f" ({'; '.join(changed)}); restore them or retrain and promote a new version"
        )
    try:
        return load()
    except Exception as err:
        raise ModelIntegrityError(
            f"{model}: the model files match their registered sha256 but cannot be loaded"
            f" ({type(err).__name__}: {err}); retrain and promote a new version"
        ) from err


def recorded_digests(model: str, tags: dict[str, str]) -> dict[str, str]:
    """The file digests a version's tags record (``DIGEST_TAG``); ``model`` names it in errors.

    Raises:
        ModelIntegrityError: the tag is missing or is not a JSON object of digests.
    """
    if DIGEST_TAG not in tags:
        raise ModelIntegrityError(
            f"{model} has no recorded sha256 of its files (tag {DIGEST_TAG}): it was"
            " registered before Tierwise recorded them, so its files cannot be verified;"
            " retrain and promote (`tierwise train`, then `tierwise promote`)"
        )
    try:
        recorded = json.loads(tags[DIGEST_TAG])
    except ValueError:
        recorded = None
    if not isinstance(recorded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in recorded.items()
    ):
        raise ModelIntegrityError(f"{model}: its {DIGEST_TAG} tag is not a JSON object of digests")
    return recorded


def load_aliased(
    tracking_uri: str, alias: str = CHAMPION, threads: int = 1
) -> dict[str, LoadedModel]:
    """Every Tierwise model's version under ``alias``, keyed by target (``churn``, ...).

    Raises:
        LookupError: no Tierwise model is registered, or none has the alias.
        ModelIntegrityError: a version's files fail verification (``load_version``).
    """
    mlflow_client = client(tracking_uri)
    names = tierwise_models(mlflow_client)
    if not names:
        raise LookupError(
            f"no Tierwise models are registered at {safe_url(tracking_uri)}: run `tierwise train` first"
        )
    loaded = {}
    for name in names:
        mv = version_by_alias(mlflow_client, name, alias)
        if mv is not None:
            model = load_version(tracking_uri, name, mv.version, threads, alias)
            loaded[model.predictor.target] = model
    if not loaded:
        raise LookupError(f"no Tierwise model has a {alias!r} alias at {safe_url(tracking_uri)}")
    return loaded


def verify_champions(tracking_uri: str) -> None:
    """Load every champion once, as the service will, and discard it: a start-up check.

    Verifies each champion's files against their registered sha256 and parses them, so that
    ``tierwise serve`` can refuse before any worker starts.

    Raises:
        LookupError: no Tierwise model is registered, or none has a champion.
        ModelIntegrityError: a champion fails verification (``load_version``).
    """
    load_aliased(tracking_uri, CHAMPION)


def load_uplift_version(
    tracking_uri: str, name: str, version: str, threads: int = 1
) -> UpliftModel:
    """Download a registered uplift version's native files, verify them against the sha256
    recorded at registration (as ``load_version`` does) and load its model
    (``load_uplift_folder``).

    Raises:
        ModelIntegrityError: no digests were recorded, a file changed, is missing or was
            added, or the files cannot be parsed.
        mlflow.exceptions.MlflowException: the version does not exist.
    """
    _, folder, recorded = _download(tracking_uri, name, version)
    return load_uplift_folder(name, str(version), folder, recorded, threads)


def load_uplift_folder(
    name: str, version: str, folder: Path, digests: Mapping[str, str], threads: int = 1
) -> UpliftModel:
    """An uplift model from ``folder`` once its files match ``digests`` (``load_folder`` for
    uplift models), with ``name``, ``version``, its feature ``spec``, ``folder`` and ``digests``
    set.

    Raises:
        ModelIntegrityError: a file changed, is missing or was added, or cannot be parsed.
    """

    def load() -> UpliftModel:
        uplift = UpliftModel.load(folder, threads)
        uplift.spec = json.loads((folder / SPEC_FILE).read_text())
        uplift.name, uplift.version = name, version
        uplift.folder, uplift.digests = folder, dict(digests)
        return uplift

    return _verified(f"{name} v{version}", folder, digests, load)


def load_uplift_aliased(
    tracking_uri: str, alias: str = CHAMPION, threads: int = 1
) -> dict[str, UpliftModel]:
    """Every uplift model's version under ``alias``, keyed by action (``retention``,
    ``upgrade``, a product); empty when there is none: the policy then ranks by propensity.

    Raises:
        ModelIntegrityError: a version's files fail verification (``load_uplift_version``).
    """
    mlflow_client = client(tracking_uri)
    loaded = {}
    for name in uplift_models(mlflow_client):
        mv = version_by_alias(mlflow_client, name, alias)
        if mv is not None:
            model = load_uplift_version(tracking_uri, name, mv.version, threads)
            loaded[model.action] = model
    return loaded
