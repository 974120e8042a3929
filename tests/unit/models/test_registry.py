"""Reading the model registry: names, aliases and registered versions, from a real MLflow
tracking store on a SQLite file (the models are tiny LightGBM boosters)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from features.spec import FeatureSpec
from models.registry import (
    CHALLENGER,
    CHAMPION,
    SETTINGS_FILE,
    SPEC_FILE,
    client,
    load_aliased,
    load_version,
    model_name,
    tierwise_models,
    version_by_alias,
)
from tests.unit.training.test_promotion import HOLDOUT, predictor
from tests.unit.training.test_promotion_decision import register_model
from tierwise.settings import Settings

SPEC = FeatureSpec(holding_products=["checking", "savings"], profile={"age": "numeric"})
TRAINED_UNDER = {"tier_order": ["silver", "gold"], "value_tiers": "abc"}


def make_settings(home: Path) -> Settings:
    return Settings(home=home, mlflow_tracking_uri=None, threads=1)


@dataclass
class Registry:
    uri: str
    churn_run: str  # the run of churn v1


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    """churn v1 champion (with its spec and settings), churn v2 challenger (an old model: no
    settings file), upgrade v1 challenger only, and a model of someone else's."""
    tmp = tmp_path_factory.mktemp("registry")
    settings = make_settings(tmp / "home")
    files = {SPEC_FILE: SPEC.to_dict(), SETTINGS_FILE: TRAINED_UNDER}
    register_model(settings, tmp, predictor("strong"), files=files)
    register_model(settings, tmp, predictor("weak"))
    register_model(settings, tmp, replace(predictor("weak"), target="upgrade"))
    uri = settings.tracking_uri()
    mlflow_client = client(uri)
    mlflow_client.set_registered_model_alias(model_name("churn"), CHAMPION, "1")
    mlflow_client.create_registered_model("fraud-detector")
    run = mlflow_client.get_model_version(model_name("churn"), "1").run_id
    return Registry(uri, run)


@pytest.fixture
def empty_uri(tmp_path) -> str:
    """A tracking store with nothing registered (``sqlite:///.../mlflow.db``)."""
    uri = make_settings(tmp_path / "home").tracking_uri()
    assert uri == f"sqlite:///{(tmp_path / 'home').resolve()}/mlflow.db", uri
    return uri


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "name"),
    [
        ("churn", "tierwise-churn"),
        ("upgrade", "tierwise-upgrade"),
        ("cross_sell_credit_card", "tierwise-cross-sell-credit-card"),
    ],
)
def test_a_target_key_has_one_registered_name(target, name):
    assert model_name(target) == name


def test_only_tierwise_models_are_listed_sorted(registry):
    names = tierwise_models(client(registry.uri))
    assert names == ["tierwise-churn", "tierwise-upgrade"], "fraud-detector is not ours"


def test_an_empty_registry_lists_no_model(empty_uri):
    assert tierwise_models(client(empty_uri)) == []


# -- aliases -----------------------------------------------------------------------------------


def test_an_alias_finds_its_version_and_a_missing_alias_or_model_finds_none(registry):
    mlflow_client = client(registry.uri)
    assert str(version_by_alias(mlflow_client, "tierwise-churn", CHAMPION).version) == "1"
    assert str(version_by_alias(mlflow_client, "tierwise-churn", CHALLENGER).version) == "2"
    assert version_by_alias(mlflow_client, "tierwise-upgrade", CHAMPION) is None, "no champion"
    assert version_by_alias(mlflow_client, "tierwise-mortgage", CHAMPION) is None, "no model"


# -- a version ---------------------------------------------------------------------------------


def test_a_loaded_version_predicts_what_was_registered(registry):
    loaded = load_version(registry.uri, "tierwise-churn", "1", alias=CHAMPION)
    expected = predictor("strong").predict_frame(HOLDOUT)
    np.testing.assert_allclose(loaded.predictor.predict_frame(HOLDOUT), expected, rtol=1e-12)
    assert loaded.predictor.meta["metrics"] == {"baseline_roc_auc": 0.55}, "meta comes along"
    assert (loaded.name, loaded.version, loaded.alias) == ("tierwise-churn", "1", CHAMPION)
    assert loaded.run_id == registry.churn_run, "where the version came from"


def test_a_loaded_version_brings_its_feature_spec_and_dataset_settings(registry):
    loaded = load_version(registry.uri, "tierwise-churn", "1")
    assert FeatureSpec.from_dict(loaded.spec) == SPEC
    assert loaded.settings == TRAINED_UNDER


def test_a_version_registered_without_dataset_settings_loads_with_none(registry):
    loaded = load_version(registry.uri, "tierwise-churn", "2")
    assert loaded.settings == {} and loaded.spec == {}


def test_the_predictor_uses_the_threads_asked_for(registry):
    assert load_version(registry.uri, "tierwise-churn", "1", threads=3).predictor.threads == 3


def test_a_version_that_does_not_exist_is_an_error_naming_it(registry):
    with pytest.raises(MlflowException, match=r"name=tierwise-churn, version=9"):
        load_version(registry.uri, "tierwise-churn", "9")


# -- every model under an alias ----------------------------------------------------------------


def test_the_champions_are_keyed_by_target_and_models_without_one_are_left_out(registry):
    champions = load_aliased(registry.uri)
    assert list(champions) == ["churn"], "upgrade has no champion yet"
    churn = champions["churn"]
    assert (churn.name, churn.version, churn.alias) == ("tierwise-churn", "1", CHAMPION)


def test_another_alias_loads_its_own_versions(registry):
    challengers = load_aliased(registry.uri, CHALLENGER, threads=2)
    assert {t: m.version for t, m in challengers.items()} == {"churn": "2", "upgrade": "1"}
    assert all(m.alias == CHALLENGER and m.predictor.threads == 2 for m in challengers.values())


def test_an_empty_registry_says_to_train_first(empty_uri):
    with pytest.raises(LookupError) as caught:
        load_aliased(empty_uri)
    assert str(caught.value) == (
        f"no Tierwise models are registered at {empty_uri}: run `tierwise train` first"
    )


def test_models_without_the_alias_say_which_alias_is_missing(registry):
    with pytest.raises(LookupError) as caught:
        load_aliased(registry.uri, "staging")
    assert str(caught.value) == f"no Tierwise model has a 'staging' alias at {registry.uri}"
