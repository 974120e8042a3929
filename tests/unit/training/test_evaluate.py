"""Evaluation figures on hand-checked inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.evaluate import (
    ProfitConfig,
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
    # saved value 100 x success 0.5 = 50 per churner reached; cost 10 per customer reached
    config = ProfitConfig(action_cost=10, saved_value=100, success_rate=0.5)
    y = np.array([1, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    curve = profit_curve(y, p, config)
    assert curve.profit.tolist() == [40, 80, 70, 60, 50, 40]
    assert operating_threshold(curve) == (0.8, 80.0)


def test_no_profitable_threshold_means_act_on_nobody():
    config = ProfitConfig(action_cost=1000, saved_value=1, success_rate=1)
    curve = profit_curve(np.array([1, 0]), np.array([0.6, 0.4]), config)
    assert operating_threshold(curve) == (1.0, 0.0)
