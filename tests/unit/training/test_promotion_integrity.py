"""The promotion gate when a version's files fail verification (``models.registry``), on a
real MLflow on a SQLite file: a tampered challenger is not promoted, and a champion that
cannot be verified (registered before digests were recorded, or tampered) does not block
the retrained challenger that replaces it."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import DIGEST_TAG, client
from tests.unit.models.test_integrity import flip_byte, stored_folder
from tests.unit.training.test_promotion import NAME, champion_of, register
from tierwise.settings import Settings
from training.registry import promote

MISMATCH = "sha256 mismatch: the model files changed after registration (booster.txt changed)"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", mlflow_tracking_uri=None, threads=1)


def test_a_tampered_challenger_stays_challenger_and_says_why(settings, tmp_path):
    # Given a challenger that would pass, with one byte of its booster changed in the store
    version = register(settings, tmp_path, "strong", baseline_roc_auc=0.55)
    flip_byte(stored_folder(settings.tracking_uri(), NAME, version) / "booster.txt")
    # When promoted, then it is refused with the reason, without an exception
    [decision] = promote(settings)
    assert not decision.promoted and champion_of(settings) is None, decision
    assert decision.message == (
        f"churn v1 stays unpromoted: tierwise-churn v1: {MISMATCH}; restore them or retrain"
        " and promote a new version; no model serves this action"
    )


def test_a_champion_registered_before_digests_is_replaced_by_a_challenger_passing_the_gate(
    settings, tmp_path
):
    # Given a strong champion registered before digests were recorded (its tag removed)
    register(settings, tmp_path, "strong", baseline_roc_auc=0.55)
    promote(settings)
    client(settings.tracking_uri()).delete_model_version_tag(NAME, "1", DIGEST_TAG)
    # When a weaker retrained challenger that beats its baseline and the floor is promoted
    register(settings, tmp_path, "weak", baseline_roc_auc=0.55)
    [decision] = promote(settings)
    # Then it replaces the champion, which could not serve anyway, and the message says so
    assert decision.promoted and champion_of(settings) == "2", decision.message
    assert decision.champion_error.startswith("tierwise-churn v1 has no recorded sha256")
    assert "previous champion v1 could not be loaded to compare (tierwise-churn v1 has no" in (
        decision.message
    )


def test_a_challenger_failing_the_gate_against_a_tampered_champion_says_neither_serves(
    settings, tmp_path
):
    # Given a tampered champion, and a challenger that does not beat its baseline
    register(settings, tmp_path, "strong", baseline_roc_auc=0.55)
    promote(settings)
    flip_byte(stored_folder(settings.tracking_uri(), NAME, "1") / "booster.txt")
    register(settings, tmp_path, "noise", baseline_roc_auc=0.55)
    # When promoted, then the challenger stays challenger and the message says neither serves
    [decision] = promote(settings)
    assert not decision.promoted and champion_of(settings) == "1", decision
    assert decision.message.endswith(
        f"; champion v1 cannot serve either (tierwise-churn v1: {MISMATCH};"
        " restore them or retrain and promote a new version)"
    ), decision.message
