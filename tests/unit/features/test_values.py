"""The one rule for missing values: None/NaN/NaT/NA are missing; infinity is there but no number."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from features.values import (
    as_date,
    as_int,
    as_number,
    as_text,
    json_default,
    months_back,
    number_or,
    present,
)

MISSING = [None, float("nan"), np.float32("nan"), pd.NaT, pd.NA, np.datetime64("NaT")]


@pytest.mark.parametrize("value", MISSING, ids=repr)
def test_missing_values_are_missing_for_every_helper(value):
    assert not present(value)
    assert as_number(value) is None and as_int(value) is None and as_text(value) is None
    assert number_or(value, -1.0) == -1.0


@pytest.mark.parametrize("value", [math.inf, -math.inf, np.float64("inf")], ids=repr)
def test_infinity_is_there_but_no_number(value):
    assert present(value)
    assert as_number(value) is None and as_int(value) is None
    assert number_or(value, 0.0) == 0.0


def test_numbers_read_from_numpy_text_and_floats():
    assert as_number(np.int64(3)) == 3.0 and isinstance(as_number(np.int64(3)), float)
    assert as_number("2.5") == 2.5
    assert as_number("not a number") is None
    assert as_int(2.9) == 2
    assert as_text(0) == "0" and as_text("") == ""


def test_dates_from_every_shape_and_json_writes_them_as_iso():
    day = dt.date(2026, 3, 31)
    for value in (day, dt.datetime(2026, 3, 31, 12), pd.Timestamp("2026-03-31"), "2026-03-31"):
        assert as_date(value) == day, value
    assert as_date(None) is None and as_date(pd.NA) is None
    assert json.loads(json.dumps({"d": day, "n": np.int64(4)}, default=json_default)) == {
        "d": "2026-03-31",
        "n": 4,
    }
    with pytest.raises(TypeError, match="cannot write set as JSON"):
        json.dumps({"s": {1}}, default=json_default)


def test_months_back_keeps_the_day_or_the_month_end():
    assert months_back(dt.date(2026, 3, 31), 1) == dt.date(2026, 2, 28)
    assert months_back(dt.date(2026, 3, 15), 14) == dt.date(2025, 1, 15)
