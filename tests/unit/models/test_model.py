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
