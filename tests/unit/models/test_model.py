"""The native model format: encoding, calibration, save and load."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models.model import Calibration, Encoding, Predictor


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"spend": [10.0, None, 30.0], "region": ["north", "south", None]})


def test_encoding_codes_categories_and_keeps_missing(frame):
    enc = Encoding.fit(frame, ["spend", "region"], ["region"])
    assert enc.categories == {"region": ["north", "south"]}
    m = enc.matrix(frame)
    assert m[:, 1].tolist()[:2] == [0.0, 1.0] and np.isnan(m[2, 1])
    assert np.isnan(m[1, 0]), "a missing number stays missing"


def test_unseen_category_and_absent_column_are_missing(frame):
    enc = Encoding.fit(frame, ["spend", "region", "age"], ["region"])
    m = enc.matrix(pd.DataFrame({"spend": [1.0], "region": ["west"]}))
    assert np.isnan(m[0, 1]) and np.isnan(m[0, 2])


def test_row_path_equals_frame_path(frame):
    enc = Encoding.fit(frame, ["spend", "region"], ["region"])
    for i, record in enumerate(frame.astype(object).where(frame.notna(), None).to_dict("records")):
        np.testing.assert_array_equal(enc.row(record)[0], enc.matrix(frame)[i])


def test_isotonic_and_platt_calibration():
    iso = Calibration("isotonic", x=[0.0, 0.5, 1.0], y=[0.0, 0.1, 0.2])
    assert iso.apply(np.array([0.25, 2.0])).tolist() == pytest.approx([0.05, 0.2])
    platt = Calibration("platt", a=1.0, b=0.0)
    assert platt.apply(np.array([0.3])) == pytest.approx([0.3])


def test_predictor_round_trips_through_native_files(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2))
    y = (x[:, 0] + rng.normal(scale=0.5, size=500) > 0).astype(float)
    booster = lgb.train({"objective": "binary", "verbose": -1, "seed": 0}, lgb.Dataset(x, y), 10)
    enc = Encoding(["a", "b"])
    pred = Predictor("churn", booster, enc, Calibration("platt", a=0.5, b=-1.0), {"product": None})
    loaded = Predictor.load(pred.save(tmp_path / "m"))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "booster.txt",
        "calibration.json",
        "encoding.json",
        "meta.json",
    ], "native files only: no pickles"
    np.testing.assert_array_equal(loaded.predict(x), pred.predict(x))
    assert loaded.contributions(x[:1]).shape == (1, 3), "two features plus the bias"


def test_a_blend_with_a_logistic_member_adds_its_log_odds_and_round_trips(tmp_path):
    # Given a booster and a logistic member fitted on a number, a long-tailed count and a
    # category with a missing value
    from training.linear import fit_linear

    rng = np.random.default_rng(0)
    n = 2000
    x = np.column_stack(
        [rng.normal(size=n), rng.lognormal(3.0, 1.5, size=n), rng.integers(0, 3, n) * 1.0]
    )
    x[rng.uniform(size=n) < 0.1, 0] = np.nan
    logit = np.nan_to_num(x[:, 0]) + 0.8 * (x[:, 2] == 1) + 0.3 * np.log1p(x[:, 1]) - 1.5
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(float)
    enc = Encoding(["a", "count", "region"], {"region": ["n", "s", "w"]})
    data = lgb.Dataset(x, y, categorical_feature=[2])
    booster = lgb.train({"objective": "binary", "verbose": -1, "seed": 0}, data, 5)
    linear = fit_linear(x, y, enc, rows=n, seed=0)
    assert linear.terms[1].log, "a long-tailed count is read as log1p"
    pred = Predictor("churn", booster, enc, Calibration("identity"), {}, linear)
    # Then its probability is the sigmoid of the two log-odds added
    both = booster.predict(x, raw_score=True) + linear.logit(x)
    np.testing.assert_allclose(pred.predict(x), 1 / (1 + np.exp(-both)), rtol=1e-12)
    # ...its contributions and bias add up to them, per row
    np.testing.assert_allclose(pred.contributions(x).sum(axis=1), both, rtol=1e-9, atol=1e-9)
    # ...a code outside the vocabulary or a missing category weighs as missing
    unseen, absent = x[:1].copy(), x[:1].copy()
    unseen[0, 2], absent[0, 2] = 7.0, np.nan
    assert linear.logit(unseen) == pytest.approx(linear.logit(absent))
    # And it is written to linear.json and read back the same
    loaded = Predictor.load(pred.save(tmp_path / "m"))
    assert (tmp_path / "m" / "linear.json").exists()
    np.testing.assert_array_equal(loaded.predict(x), pred.predict(x))
    np.testing.assert_array_equal(Predictor.from_dict(pred.to_dict()).predict(x), pred.predict(x))
