"""The uplift model format (native files, round trip) and the Qini figures (one definition,
used by the training gate and the monitoring report)."""

from __future__ import annotations

import math

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models.booster import BoosterFormatError
from models.model import Encoding
from models.uplift import UpliftModel, qini_coefficient, qini_curve, qini_interval
from tests.uplift_synthetic import randomized


def booster(seed: int) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 2))
    y = (x[:, 0] + rng.normal(size=400) > 0).astype(float)
    params = {"objective": "binary", "verbose": -1, "seed": seed, "deterministic": True}
    return lgb.train(params, lgb.Dataset(x, y, feature_name=["a", "b"]), num_boost_round=5)


def two_model() -> UpliftModel:
    boosters = {"offered": booster(1), "holdout": booster(2)}
    return UpliftModel("upgrade", "two_model", boosters, Encoding(["a", "b"]), {"kind": "upgrade"})


def test_two_model_uplift_is_offered_minus_holdout_probability():
    model = two_model()
    x = np.array([[0.5, -1.0], [-2.0, 0.3]])
    expected = model.boosters["offered"].predict(x) - model.boosters["holdout"].predict(x)
    assert np.allclose(model.predict(x), expected)
    assert model.predict_row({"a": 0.5, "b": -1.0}) == pytest.approx(expected[0])


def test_saved_model_loads_with_the_same_predictions(tmp_path):
    model = two_model()
    folder = model.save(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == [
        "encoding.json", "holdout.txt", "meta.json", "offered.txt",
    ], "native files only: two LightGBM text models and JSON"  # fmt: skip
    loaded = UpliftModel.load(folder, threads=2)
    frame = pd.DataFrame({"a": [0.1, 1.0], "b": [0.0, None]})
    assert loaded.action == "upgrade" and loaded.method == "two_model"
    assert np.array_equal(loaded.predict_frame(frame), model.predict_frame(frame))


def test_a_cut_off_booster_file_raises_instead_of_loading(tmp_path):
    folder = two_model().save(tmp_path / "model")
    text = (folder / "holdout.txt").read_text()
    (folder / "holdout.txt").write_text(text[: len(text) // 3])
    with pytest.raises(BoosterFormatError):
        UpliftModel.load(folder)


def test_the_true_ranking_has_positive_qini_and_its_reverse_negative():
    rng = np.random.default_rng(0)
    n = 20_000
    uplift = rng.uniform(-0.2, 0.4, n)
    offered = rng.random(n) < 0.8
    y = (rng.random(n) < 0.3 + np.where(offered, uplift, 0.0) / 2).astype(float)
    assert qini_coefficient(y, offered, uplift) > 0.05
    assert qini_coefficient(y, offered, -uplift) < -0.05
    assert abs(qini_coefficient(y, offered, rng.random(n))) < 0.02, "random is near 0"


def test_qini_curve_counts_incremental_outcomes_of_the_top_rows():
    # Top 1 to 3: one offered outcome, none held out (the held-out term is 0 while no
    # held-out row has entered, or none has an outcome): +1.
    # All 4: 1 offered outcome - 1 held-out outcome x (2 offered / 2 held out) = 0.
    y = np.array([1, 0, 0, 1])
    offered = np.array([True, False, True, False])
    curve = qini_curve(y, offered, np.array([0.9, 0.8, 0.2, 0.1]))
    assert curve["qini"].tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_qini_is_undefined_with_one_arm_only():
    y, offered = np.array([1.0, 0.0]), np.array([True, True])
    assert np.isnan(qini_coefficient(y, offered, np.array([0.1, 0.2])))
    assert all(np.isnan(qini_interval(y, offered, np.array([0.1, 0.2]))))


def test_qini_interval_is_seeded_and_brackets_the_figure():
    rng = np.random.default_rng(1)
    y, offered, u = rng.random(3000) < 0.3, rng.random(3000) < 0.9, rng.random(3000)
    low, high = qini_interval(y, offered, u, replicates=100, seed=7)
    assert (low, high) == qini_interval(y, offered, u, replicates=100, seed=7)
    assert low < qini_coefficient(y, offered, u) < high


def test_qini_of_a_perfect_score_is_one_and_of_a_random_score_about_zero():
    y, treated, x = randomized()
    perfect = y * treated - y * (1 - treated)
    assert qini_coefficient(y, treated, perfect) == pytest.approx(1.0)
    noise = np.random.default_rng(11).uniform(size=len(y))
    assert abs(qini_coefficient(y, treated, noise)) < 0.1, "chance ordering"
    assert qini_coefficient(y, treated, x) > 0.1, "the true effect's driver ranks well"
    assert qini_coefficient(y, treated, -x) < -0.1, "the reverse ranks worse than chance"


def test_qini_curve_ends_at_the_total_incremental_outcomes():
    # 4 treated with 3 outcomes, 2 comparison rows with 1: 3 - 1 x 4/2 = 1 incremental at the
    # end; with 1 comparison row so far it is 3 - 1 x 4/1 = -1
    y = np.array([1, 1, 1, 0, 1, 0], dtype=float)
    treated = np.array([1, 1, 1, 1, 0, 0], dtype=float)
    curve = qini_curve(y, treated, np.array([6, 5, 4, 3, 2, 1], dtype=float))
    assert curve["share"].tolist() == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1])
    assert curve["qini"].tolist() == pytest.approx([0, 1, 2, 3, 3, -1, 1])
    assert curve["random"].iloc[-1] == curve["qini"].iloc[-1] == 1.0
    assert curve["uplift"].iloc[-1] == pytest.approx((3 / 4 - 1 / 2) * 6)


def test_tied_scores_enter_the_curve_together():
    y = np.array([1, 0, 1, 0], dtype=float)
    treated = np.array([1, 0, 0, 1], dtype=float)
    curve = qini_curve(y, treated, np.array([1, 1, 0, 0], dtype=float))
    assert curve["share"].tolist() == [0, 0.5, 1], "one point per tie group"


def test_no_outcome_at_all_leaves_the_coefficient_undefined():
    y, treated = np.zeros(4), np.array([1, 1, 0, 0.0])
    assert math.isnan(qini_coefficient(y, treated, np.arange(4.0)))
