"""Model integrity: the sha256 of a version's files, recorded in the registry when it is
registered and verified when it is loaded, against a real MLflow on a SQLite file whose
artifact store the tests tamper with (one tiny registered model, restored after each test)."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from models.integrity import ModelIntegrityError, changed_files, file_digests
from models.model import FILES
from models.registry import (
    CHAMPION,
    DIGEST_TAG,
    MODEL_FOLDER,
    SETTINGS_FILE,
    SPEC_FILE,
    client,
    load_aliased,
    load_folder,
    load_version,
    model_name,
    verify_champions,
)
from tests.unit.training.test_promotion import HOLDOUT, predictor
from tests.unit.training.test_promotion_decision import register_model
from tierwise.settings import Settings

NAME = model_name("churn")
MISMATCH = "sha256 mismatch: the model files changed after registration"


def stored_folder(uri: str, name: str, version: str) -> Path:
    """The model folder of a version in the artifact store (what ``models:/`` downloads as
    ``artifacts/model``): MLflow 3 keeps it under the version's logged model."""
    mlflow_client = client(uri)
    source = mlflow_client.get_model_version(name, version).source  # models:/m-<id>
    location = mlflow_client.get_logged_model(source.removeprefix("models:/")).artifact_location
    return Path(unquote(urlparse(location).path)).joinpath(*MODEL_FOLDER)


def flip_byte(path: Path) -> None:
    """Change one byte in the middle of ``path``."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@dataclass
class Registered:
    uri: str
    version: str
    folder: Path  # the version's model folder in the artifact store


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> Registered:
    """churn v1, registered the way training does (spec and settings beside the model), champion."""
    tmp = tmp_path_factory.mktemp("integrity")
    settings = Settings(home=tmp / "home", mlflow_tracking_uri=None, threads=1)
    files = {SPEC_FILE: {"profile": {}}, SETTINGS_FILE: {"value_tiers": "abc"}}
    version = register_model(settings, tmp, predictor("strong"), files=files)
    uri = settings.tracking_uri()
    client(uri).set_registered_model_alias(NAME, CHAMPION, version)
    return Registered(uri, version, stored_folder(uri, NAME, version))


@pytest.fixture
def store(registered, tmp_path) -> Registered:
    """``registered``, put back as registered (files and digest tag) after the test."""
    root = logged_root(registered)
    pristine = shutil.copytree(root, tmp_path / "pristine")
    mlflow_client = client(registered.uri)
    tag = mlflow_client.get_model_version(NAME, registered.version).tags[DIGEST_TAG]
    yield registered
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(pristine, root)
    mlflow_client.set_model_version_tag(NAME, registered.version, DIGEST_TAG, tag)


def logged_root(registered: Registered) -> Path:
    """Everything MLflow stores of the version (MLmodel, pyfunc.py, artifacts/model/...)."""
    return registered.folder.parents[len(MODEL_FOLDER) - 1]


def record_current_files(store: Registered) -> None:
    """Re-record the digests of the stored files, as if they had been registered like this."""
    digests = json.dumps(file_digests(store.folder))
    client(store.uri).set_model_version_tag(NAME, store.version, DIGEST_TAG, digests)


def refusal(store: Registered) -> str:
    with pytest.raises(ModelIntegrityError) as caught:
        load_version(store.uri, NAME, store.version)
    return str(caught.value)


# -- digests of a folder -----------------------------------------------------------------------


def test_digests_name_every_file_by_its_path_in_the_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_bytes(b"tree")
    (tmp_path / "sub" / "a.json").write_bytes(b"{}")
    assert file_digests(tmp_path) == {
        "b.txt": hashlib.sha256(b"tree").hexdigest(),
        "sub/a.json": hashlib.sha256(b"{}").hexdigest(),
    }


def test_each_changed_missing_or_added_file_is_named(tmp_path):
    for name in ("kept", "changed", "removed"):
        (tmp_path / name).write_text(name)
    recorded = file_digests(tmp_path)
    assert changed_files(tmp_path, recorded) == [], "an untouched folder has no difference"
    (tmp_path / "changed").write_text("other")
    (tmp_path / "removed").unlink()
    (tmp_path / "added").write_text("added")
    assert changed_files(tmp_path, recorded) == [
        "added was not registered",
        "changed changed",
        "removed is missing",
    ]
    assert changed_files(tmp_path / "gone", {"a": "0"}) == ["a is missing"], "no folder at all"


# -- recorded at registration ------------------------------------------------------------------


def test_registration_records_the_sha256_of_every_file_the_loader_reads(registered):
    tags = client(registered.uri).get_model_version(NAME, registered.version).tags
    recorded = json.loads(tags[DIGEST_TAG])
    assert set(recorded) == {*FILES, SPEC_FILE, SETTINGS_FILE}, "the native files, spec, settings"
    assert recorded == file_digests(registered.folder), "the files as they are in the store"


# -- verified at loading -----------------------------------------------------------------------


def test_an_untouched_version_loads_and_predicts_what_was_registered(store):
    loaded = load_version(store.uri, NAME, store.version)
    expected = predictor("strong").predict_frame(HOLDOUT)
    np.testing.assert_array_equal(loaded.predictor.predict_frame(HOLDOUT), expected)


def test_one_byte_changed_in_the_artifact_store_is_refused_naming_model_version_and_file(store):
    # Given one byte of the stored booster changed
    flip_byte(store.folder / "booster.txt")
    # When the version is loaded, then it is refused before LightGBM reads the file
    with pytest.raises(ModelIntegrityError) as caught:
        load_version(store.uri, NAME, store.version)
    assert str(caught.value) == (
        f"tierwise-churn v1: {MISMATCH} (booster.txt changed);"
        " restore them or retrain and promote a new version"
    )
    assert isinstance(caught.value, LookupError), "start-up and reload turn it into a refusal"


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (lambda folder: (folder / "meta.json").unlink(), "meta.json is missing"),
        (lambda folder: (folder / "notes.txt").write_text("hi"), "notes.txt was not registered"),
        (lambda folder: (folder / "booster.txt").write_text(""), "booster.txt changed"),
        (lambda folder: (folder / SETTINGS_FILE).write_text("{}"), f"{SETTINGS_FILE} changed"),
        (lambda folder: shutil.rmtree(folder), "booster.txt is missing; calibration.json is"),
    ],
    ids=["removed", "added", "emptied", "settings", "folder-removed"],
)
def test_a_missing_added_or_emptied_file_is_refused_naming_it(store, tamper, named):
    tamper(store.folder)
    message = refusal(store)
    assert message.startswith(f"tierwise-churn v1: {MISMATCH} ("), message
    assert named in message, message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (lambda text: text[: len(text) // 3], "BoosterFormatError: no 'end of trees' line"),
        (lambda text: "not a model\n" * 20, "BoosterFormatError: no tree"),
        (lambda text: text.replace("left_child=1 ", "left_child=100 "), "do not form a tree"),
    ],
    ids=["truncated", "garbage", "broken-tree"],
)
def test_a_malformed_booster_matching_its_digests_is_an_error_not_a_crash(store, content, reason):
    # Given a malformed booster registered as it is (its digests match)
    booster = store.folder / "booster.txt"
    booster.write_text(content(booster.read_text()))
    record_current_files(store)
    # When loaded, then the same error says the files cannot be loaded, and why
    message = refusal(store)
    assert message.startswith(
        "tierwise-churn v1: the model files match their registered sha256 but cannot be loaded"
    ), message
    assert reason in message, message


def test_a_json_file_that_does_not_parse_is_an_error_too(store):
    (store.folder / "encoding.json").write_text("{")
    record_current_files(store)
    assert "(JSONDecodeError: " in refusal(store)


def test_a_version_whose_files_were_deleted_from_the_store_is_refused(store):
    shutil.rmtree(logged_root(store))
    assert refusal(store).startswith("tierwise-churn v1: its files cannot be downloaded: ")


def test_a_version_registered_before_digests_were_recorded_is_refused_saying_what_to_run(store):
    client(store.uri).delete_model_version_tag(NAME, store.version, DIGEST_TAG)
    assert refusal(store) == (
        f"tierwise-churn v1 has no recorded sha256 of its files (tag {DIGEST_TAG}): it was"
        " registered before Tierwise recorded them, so its files cannot be verified;"
        " retrain and promote (`tierwise train`, then `tierwise promote`)"
    )


def test_a_digest_tag_that_is_not_a_json_object_of_digests_is_refused(store):
    client(store.uri).set_model_version_tag(NAME, store.version, DIGEST_TAG, '["booster.txt"]')
    assert (
        refusal(store) == f"tierwise-churn v1: its {DIGEST_TAG} tag is not a JSON object of digests"
    )


def test_a_loaded_version_keeps_its_verified_files_and_their_digests(store):
    loaded = load_version(store.uri, NAME, store.version, alias=CHAMPION)
    assert loaded.digests == file_digests(store.folder), "the digests recorded at registration"
    assert loaded.folder is not None and file_digests(loaded.folder) == loaded.digests


def test_a_copy_of_the_files_loads_against_the_registered_digests_and_a_changed_copy_does_not(
    store, tmp_path
):
    # Given a copy of a loaded version's files (what the service shares between workers)
    loaded = load_version(store.uri, NAME, store.version, alias=CHAMPION)
    copy = shutil.copytree(loaded.folder, tmp_path / "copy")
    args = (NAME, loaded.version, CHAMPION, loaded.run_id, copy, loaded.digests)
    # When loaded from there, then it is the same model
    again = load_folder(*args)
    np.testing.assert_array_equal(
        again.predictor.predict_frame(HOLDOUT), loaded.predictor.predict_frame(HOLDOUT)
    )
    # and a changed copy is refused like a changed store
    flip_byte(copy / "calibration.json")
    with pytest.raises(ModelIntegrityError, match=rf"v1: {MISMATCH} \(calibration.json changed\)"):
        load_folder(*args)


# -- the champions -----------------------------------------------------------------------------


def test_untouched_champions_pass_the_start_up_check(store):
    verify_champions(store.uri)


def test_a_tampered_champion_fails_loading_and_the_start_up_check(store):
    flip_byte(store.folder / "encoding.json")
    for check in (load_aliased, verify_champions):
        with pytest.raises(ModelIntegrityError, match=r"tierwise-churn v1: sha256 mismatch: .*"):
            check(store.uri)
