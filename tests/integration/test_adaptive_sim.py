"""The learning-from-answers simulation (bench/adaptive.py) on the session's trained demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.adaptive import SimulationConfig, simulate
from bench.uplift import materialize_store, open_world

pytestmark = pytest.mark.slow

TINY = {
    "calls": 600,
    "calls_per_period": 100,
    "refresh_calls": 20,
    "checkpoint_calls": 50,
    "exploration_share": 0.2,
}


@pytest.fixture(scope="module")
def online_url(trained, tmp_path_factory) -> str:
    """The trained home's champions materialized once into an online store of this module."""
    url = f"sqlite:///{tmp_path_factory.mktemp('adaptive-sim') / 'online.db'}"
    materialize_store(trained.settings.home, trained.data, url)
    return url


def simulated(trained, online_url: str, decisions: Path, seed: int) -> tuple[dict, tuple]:
    """A tiny run with its own decision log: its figures, and the log's decision and
    feedback counts."""
    world = open_world(trained.settings.home, online_url, f"sqlite:///{decisions}", 0.0)
    try:
        figures = simulate(world, SimulationConfig(seed=seed, **TINY))
        return figures, world.log.count()
    finally:
        world.log.close()


def text(figures: dict) -> str:
    """The figures as JSON text: equal text is equal figures."""
    return json.dumps(figures, sort_keys=True, default=str)


def test_the_simulation_is_reproducible_by_seed(trained, online_url, tmp_path):
    # Given a tiny run of seed 0 (600 calls, the new action added after 300)
    first, logged = simulated(trained, online_url, tmp_path / "a.db", 0)
    # When the same seed runs again on a fresh decision log, and another seed too
    again, _ = simulated(trained, online_url, tmp_path / "b.db", 0)
    other, _ = simulated(trained, online_url, tmp_path / "c.db", 1)
    # Then the same seed reports the same figures: arms, regret curve, the new action's estimate
    assert text(first) == text(again), "one seed: the same calls, draws, answers and state"
    assert other["arms"] != first["arms"], "seed 1 must draw other calls and answers"
    # And the adaptive arm went through the decision log: every call, every answer or skip
    arms = first["arms"]
    assert logged[0] == TINY["calls"], f"one logged decision per call: {logged}"
    assert logged[1] == arms["adaptive"]["shown"], "one feedback row per shown suggestion"
    # And only the learning arms can offer the new action, which the adaptive arm explored
    assert arms["static"]["new_action_shown"] == 0, "static has no model of the new action"
    assert arms["adaptive"]["new_action_shown"] > 0, f"never shown: {arms['adaptive']}"
    assert len(first["regret_curve"]) == TINY["calls"] // TINY["checkpoint_calls"]
    # And every candidate policy got off-policy estimates on the log beside its true value
    assert set(first["off_policy"]) == {"learned", "offline", "favour_investment"}
    for name, figures in first["off_policy"].items():
        assert figures["decisions"]["used"] == TINY["calls"], f"{name}: {figures['decisions']}"
        assert figures["truth"]["value"] > 0, f"{name} is worth nothing: {figures['truth']}"
