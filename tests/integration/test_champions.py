"""The champions a service's workers share on disk (serving.champions), on the session's
real MLflow registry: written by the first load of a generation, read without MLflow by
the next, checked against the registered sha256, and never reused by a fresh load."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pytest

from models.integrity import file_digests
from models.model import Encoding
from models.registry import CHAMPION, SPEC_FILE, client, load_uplift_folder, version_by_alias
from models.scoring import ModelSet
from models.uplift import UpliftModel
from serving.champions import MANIFEST, _share, clear, load_champions, serving_dir


@pytest.fixture
def settings(trained, tmp_path):
    """The session's registry, with a home of the test's own for the shared folder."""
    uri = trained.settings.tracking_uri()
    return trained.settings.model_copy(update={"home": tmp_path, "mlflow_tracking_uri": uri})


def versions(models) -> dict[str, str]:
    return models.versions


def test_the_first_load_of_a_generation_shares_the_champions_it_loaded(settings):
    models = load_champions(settings, generation=3, fresh=False)
    mlflow_client = client(settings.tracking_uri())
    assert versions(models) == {
        name: str(version_by_alias(mlflow_client, name, CHAMPION).version)
        for name in versions(models)
    }
    manifest = json.loads((serving_dir(settings) / "3" / MANIFEST).read_text())
    assert {m["name"]: m["version"] for m in manifest["models"]} == versions(models)
    assert all(m["sha256"] for m in manifest["models"]), "the registered digests go along"
    assert manifest["uplift"] == [] and models.uplift == {}, "none registered: propensity"


def test_uplift_champions_are_shared_and_verified_like_the_others(settings, tmp_path, caplog):
    first = load_champions(settings, generation=4, fresh=False)
    # An uplift model's files as the registry hands them over: native files, recorded sha256.
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(400, 1)), rng.integers(0, 2, 400)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 0}
    boosters = {
        arm: lgb.train(params, lgb.Dataset(x, y, feature_name=["tenure_days"]), 5)
        for arm in ("offered", "holdout")
    }
    folder = UpliftModel("savings", "two_model", boosters, Encoding(["tenure_days"])).save(
        tmp_path / "files"
    )
    (folder / SPEC_FILE).write_text("{}")
    uplift = load_uplift_folder("tierwise-uplift-savings", "7", folder, file_digests(folder))
    shared = serving_dir(settings) / "9"
    _share(shared, ModelSet(first.models, {"savings": uplift}))

    gone = settings.model_copy(update={"mlflow_tracking_uri": "sqlite:////nonexistent/x.db"})
    again = load_champions(gone, generation=9, fresh=False)
    assert again.versions == {**first.versions, "tierwise-uplift-savings": "7"}
    assert again.uplift["savings"].predict_row({"tenure_days": 0.5}) == pytest.approx(
        uplift.predict_row({"tenure_days": 0.5})
    )
    (shared / "tierwise-uplift-savings" / "offered.txt").write_text("tampered")
    with pytest.raises(Exception):  # noqa: B017 - the registry is not there to fall back to
        load_champions(gone, generation=9, fresh=False)
    assert "tierwise-uplift-savings v7: sha256 mismatch" in caplog.text, "the copy was refused"


def test_a_later_worker_loads_the_shared_copy_without_the_registry(settings):
    first = load_champions(settings, generation=1, fresh=False)
    gone = settings.model_copy(update={"mlflow_tracking_uri": "sqlite:////nonexistent/x.db"})
    again = load_champions(gone, generation=1, fresh=False)
    assert versions(again) == versions(first)
    target = next(iter(first.models))
    assert (again.models[target].predictor.booster.model_to_string()) == (
        first.models[target].predictor.booster.model_to_string()
    )
    with pytest.raises(Exception):  # noqa: B017 - any failure: the registry is not there
        load_champions(gone, generation=1, fresh=True)  # a reload never reuses the copy


def test_a_changed_shared_file_is_not_served_the_registry_is_read_again(settings, caplog):
    first = load_champions(settings, generation=2, fresh=False)
    shared = serving_dir(settings) / "2"
    booster = next(p for p in shared.rglob("*") if p.is_file() and p.name != MANIFEST)
    booster.write_bytes(booster.read_bytes() + b"\n")
    again = load_champions(settings, generation=2, fresh=False)
    assert versions(again) == versions(first)
    assert "sha256 mismatch" in caplog.text, "the changed copy was refused, not loaded"
    gone = settings.model_copy(update={"mlflow_tracking_uri": "sqlite:////nonexistent/x.db"})
    assert versions(load_champions(gone, generation=2, fresh=False)) == versions(first), (
        "and a good copy is shared again"
    )


def test_a_new_run_starts_from_the_registry(settings):
    load_champions(settings, generation=0, fresh=False)
    clear(settings)
    assert not serving_dir(settings).exists()
