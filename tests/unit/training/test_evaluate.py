"""Evaluation figures on hand-checked inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.evaluate import (
    expected_calibration_error,
    operating_threshold,
    profit_curve,
    score_metrics,
    slice_metrics,
    top_decile,
)


def test_perfectly_calibrated_bins_have_zero_ece():
    p = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(y, p) == pytest.approx(0.0)


def test_ece_is_the_weighted_gap():
    # all predicted 0.9, observed rate 0.5 -> gap 0.4
    assert expected_calibration_error(np.array([1, 0]), np.array([0.9, 0.9])) == pytest.approx(0.4)


def test_top_decile_lift_and_capture():
    # 20 rows, 2 positives, both in the top 2 scores: lift = 1.0 / 0.1 = 10, capture 100%
    y = np.array([1, 1] + [0] * 18)
    p = np.linspace(1, 0, 20)
    assert top_decile(y, p) == (pytest.approx(10.0), pytest.approx(1.0))


def test_score_metrics_perfect_ranking():
    y = np.array([0, 0, 1, 1])
    m = score_metrics(y, np.array([0.1, 0.2, 0.8, 0.9]))
    assert m["roc_auc"] == 1.0 and m["pr_auc"] == 1.0 and m["base_rate"] == 0.5


def test_slice_metrics_per_group():
    groups = pd.Series(["VIP", "VIP", "small", "small"])
    out = slice_metrics(np.array([0, 1, 1, 1]), np.array([0.2, 0.9, 0.5, 0.6]), groups)
    assert out["VIP"]["roc_auc"] == 1.0
    assert np.isnan(out["small"]["roc_auc"]), "one class only: AUC undefined, not a crash"


def test_profit_curve_picks_the_profitable_cut():
    # 50 per positive reached; cost 10 per customer reached
    y = np.array([1, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    curve = profit_curve(y, p, 50.0, 10.0)
    assert curve.profit.tolist() == [40, 80, 70, 60, 50, 40]
    assert operating_threshold(curve) == (0.8, 80.0)


def test_profit_curve_weighs_each_success_by_its_own_value():
    # the second positive is worth 200 (a valuable customer), the first 20
    y = np.array([1, 0, 1])
    p = np.array([0.9, 0.5, 0.4])
    curve = profit_curve(y, p, np.array([20.0, 500.0, 200.0]), 10.0)
    assert curve.profit.tolist() == [10, 0, 190], "a non-buyer's value never counts"
    assert operating_threshold(curve) == (0.4, 190.0)


def test_no_profitable_threshold_means_act_on_nobody():
    curve = profit_curve(np.array([1, 0]), np.array([0.6, 0.4]), 1.0, 1000.0)
    assert operating_threshold(curve) == (1.0, 0.0)
