"""Profiles and the population stability index: hand-checked shares and constructed shifts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.profile import (
    OTHER,
    bin_labels,
    compare_shares,
    profile_column,
    psi,
    psi_of_shares,
)


def test_psi_of_shares_matches_the_formula():
    # (0.5 - 0.25) ln(0.5/0.25) + (0.5 - 0.75) ln(0.5/0.75)
    expected = 0.25 * math.log(2) - 0.25 * math.log(0.5 / 0.75)
    assert psi_of_shares([0.25, 0.75], [0.5, 0.5]) == pytest.approx(expected)


def test_identical_distributions_have_zero_psi():
    values = pd.Series(np.arange(100, dtype=float))
    assert psi(profile_column(values, "numeric"), values) == pytest.approx(0.0, abs=1e-12)


def test_an_emptied_bin_gives_a_large_but_finite_psi():
    value = psi_of_shares([0.5, 0.5], [1.0, 0.0])
    assert math.isfinite(value) and value > 2, f"an emptied half should dominate, got {value}"


def test_shifted_numeric_values_have_high_psi_and_a_resample_low():
    # Given a training sample and the same distribution drawn again, and one shifted by 1 sd
    rng = np.random.default_rng(0)
    profile = profile_column(pd.Series(rng.normal(0, 1, 5000)), "numeric")
    same = rng.normal(0, 1, 5000)
    shifted = rng.normal(1, 1, 5000)
    # Then only the shifted one crosses the usual 0.2 threshold
    assert psi(profile, same) < 0.02, "a resample of the same distribution is stable"
    assert psi(profile, shifted) > 0.2, "a one-sd shift is a significant drift"


def test_values_that_turn_missing_raise_psi():
    profile = profile_column(pd.Series(np.arange(1000, dtype=float)), "numeric")
    now = np.where(np.arange(1000) < 300, np.nan, np.arange(1000, dtype=float))
    expected, actual = compare_shares(profile, now)
    assert expected[-1] == 0.0 and actual[-1] == pytest.approx(0.3), "last bin is the missing share"
    assert psi(profile, now) > 0.2


def test_a_new_category_counts_as_other_and_shows_as_drift():
    profile = profile_column(pd.Series(["a"] * 50 + ["b"] * 50), "categorical")
    assert OTHER not in profile["shares"], "every training category is in the top list"
    expected, actual = compare_shares(profile, pd.Series(["a"] * 50 + ["z"] * 50))
    assert expected == [0.5, 0.5, 0.0] and actual == [0.5, 0.0, 0.5], (expected, actual)
    assert psi(profile, pd.Series(["a"] * 50 + ["z"] * 50)) > 1.0


def test_categorical_with_same_shares_is_stable():
    profile = profile_column(pd.Series(["a", "b", "b", None]), "categorical")
    assert psi(profile, pd.Series(["b", None, "a", "b"] * 10)) == pytest.approx(0.0, abs=1e-12)


def test_psi_refuses_a_kind_other_than_the_profiles():
    with pytest.raises(ValueError, match="numeric profile"):
        psi(profile_column(pd.Series([1.0, 2.0]), "numeric"), pd.Series(["a"]), "categorical")


def test_psi_of_no_values_is_unknown():
    assert math.isnan(psi(profile_column(pd.Series([1.0, 2.0]), "numeric"), np.array([])))


def test_bin_labels_follow_the_shares():
    profile = {"kind": "numeric", "edges": [1.0, 2.5], "shares": [0.2, 0.3, 0.5, 0.0]}
    assert bin_labels(profile) == ["<= 1", "(1, 2.5]", "> 2.5", "missing"]
    assert bin_labels({"kind": "categorical", "shares": {"a": 0.4, "b": 0.6}}) == ["a", "b"]
