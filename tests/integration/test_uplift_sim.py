"""The uplift simulation (bench/uplift.py) on the session's trained demo: reproducible by seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.uplift import SimulationConfig, materialize_store, open_world, simulate

pytestmark = pytest.mark.slow

TINY = {"periods": 2, "calls_per_period": 200, "bootstrap": 200}
TINY_FITS = {"min_uplift_decisions": 40, "min_holdout_rows": 15}  # so the tiny run fits models


@pytest.fixture(scope="module")
def online_url(trained, tmp_path_factory) -> str:
    """The trained home's champions materialized once into an online store of this module."""
    url = f"sqlite:///{tmp_path_factory.mktemp('uplift-sim') / 'online.db'}"
    materialize_store(trained.settings.home, trained.data, url)
    return url


def simulated(trained, online_url: str, decisions: Path, seed: int) -> dict:
    """A tiny simulation with its own decision log; the figures it reports."""
    world = open_world(trained.settings.home, online_url, f"sqlite:///{decisions}", 0.5)
    try:
        return simulate(world, SimulationConfig(seed=seed, **TINY, **TINY_FITS))
    finally:
        world.log.close()


def text(figures: dict) -> str:
    """The figures as JSON text: equal text is equal figures, NaN included."""
    return json.dumps(figures, sort_keys=True, default=str)


def test_the_simulation_is_reproducible_by_seed(trained, online_url, tmp_path):
    # Given a tiny run of seed 0 (two periods of 200 calls)
    first = simulated(trained, online_url, tmp_path / "a.db", 0)
    # When the same seed runs again on a fresh decision log, and another seed too
    again = simulated(trained, online_url, tmp_path / "b.db", 0)
    other = simulated(trained, online_url, tmp_path / "c.db", 1)
    # Then the same seed reports the same figures, down to the bootstrap intervals
    assert text(first) == text(again), "one seed: the same calls, outcomes, fits and figures"
    # And it did fit uplift models, so the fits are part of what repeats
    models = first["per_period"][0]["uplift_models"]
    assert any(f["model"] for f in models.values()), f"no action got an uplift model: {models}"
    assert first["arms"]["calls"] == TINY["calls_per_period"], "period 2's calls are compared"
    # And another seed gives other figures
    assert other["arms"] != first["arms"], "seed 1 must draw other calls and outcomes"
    assert other["effects"] != first["effects"]
