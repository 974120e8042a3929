"""LightGBM's text model checked before LightGBM parses it: a bad file raises, never aborts,
hangs or crashes the process (the boosters are tiny, one with a categorical split)."""

from __future__ import annotations

import re
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from models.booster import BoosterFormatError, blend_boosters, check_model_text, read_booster

ROWS = np.random.default_rng(0).normal(size=(400, 2))
ROWS[:, 1] = np.floor(np.abs(ROWS[:, 1]) * 3)  # categories 0..8


@pytest.fixture(scope="module")
def model_text() -> str:
    """Three trees of four leaves on a number and a category, as ``save_model`` writes them."""
    y = ((ROWS[:, 0] + (ROWS[:, 1] == 2) * 1.5) > 0.5).astype(float)
    params = {"objective": "binary", "verbose": -1, "seed": 0, "num_leaves": 4}
    params |= {"min_data_in_leaf": 5, "min_data_per_group": 5, "cat_smooth": 1}
    data = lgb.Dataset(ROWS, y, categorical_feature=[1])
    text = lgb.train(params, data, 3).model_to_string()
    assert "num_cat=1" in text and "tree_sizes=" in text, "a categorical split, a tree_sizes header"
    return text


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "booster.txt"
    path.write_text(text)
    return path


def tree_one(text: str, key: str, value: str) -> str:
    """``text`` with the ``key`` line of Tree=1 replaced by ``key=value``."""
    start = text.index("Tree=1\n")
    line = re.compile(rf"^{key}=.*$", re.MULTILINE)
    return text[:start] + line.sub(f"{key}={value}", text[start:], count=1)


def test_a_saved_model_loads_and_predicts_as_lightgbm_reads_it(model_text, tmp_path):
    path = written(tmp_path, model_text)
    expected = lgb.Booster(model_file=str(path)).predict(ROWS)
    np.testing.assert_array_equal(read_booster(path).predict(ROWS), expected)


def test_trees_misplaced_against_the_tree_sizes_header_load_instead_of_aborting(
    model_text, tmp_path
):
    # Given tree 0 one character longer, so the header's tree offsets are wrong (LightGBM
    # 4.7 aborts the process on such a file: "terminate called without an active exception")
    text = model_text.replace("shrinkage=1\n", "shrinkage=1.\n", 1)
    # When read: the trees are parsed in order, without the header
    booster = read_booster(written(tmp_path, text))
    # Then it is the same model
    expected = lgb.Booster(model_str=model_text).predict(ROWS)
    np.testing.assert_array_equal(booster.predict(ROWS), expected)


def test_a_tree_lightgbm_cannot_parse_raises_instead_of_aborting(model_text, tmp_path):
    # Given a tree whose leaf weights, which the check does not look at, are two short
    text = tree_one(model_text, "leaf_weight", "1.5 2.5")
    # Then LightGBM's own error is raised in this process
    with pytest.raises(lgb.basic.LightGBMError, match="Check failed"):
        read_booster(written(tmp_path, text))


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda t: t[:50], "no tree: the file is cut off"),
        (lambda t: t[: t.index("Tree=0") + 3], "no tree: the file is cut off"),
        (lambda t: t[: t.index("Tree=1") + 40], "no 'end of trees' line: the file is cut off"),
        (lambda t: t[: t.index("end of trees")], "no 'end of trees' line: the file is cut off"),
        (lambda t: "", "no tree"),
    ],
    ids=["header", "before-trees", "in-a-tree", "before-the-end", "empty"],
)
def test_a_file_cut_short_is_refused(model_text, tmp_path, cut, message):
    with pytest.raises(BoosterFormatError, match=re.escape(message)):
        read_booster(written(tmp_path, cut(model_text)))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        # LightGBM loads these, then predict loops forever or reads out of bounds
        ("right_child", "2 -3 1", "tree 1: left_child and right_child do not form a tree"),
        ("left_child", "1 -1 -9", "tree 1: left_child and right_child do not form a tree"),
        ("split_feature", "0 7 0", "tree 1: split_feature 7 is not one of the 2 features"),
        ("threshold", "0.2 3 0.8", "tree 1: split 1 refers to category set 3"),
        ("cat_boundaries", "0 9", "tree 1: cat_boundaries do not index cat_threshold"),
        # and these it would refuse
        ("leaf_value", "0.1 0.2", "tree 1: leaf_value has 2 values, expected 4"),
        ("decision_type", "2 x 2", "tree 1: could not convert string to float: 'x'"),
        ("num_leaves", "0", "tree 1: num_leaves is 0"),
    ],
)
def test_a_malformed_tree_is_refused_naming_the_tree(model_text, tmp_path, key, value, message):
    with pytest.raises(BoosterFormatError, match=re.escape(message)):
        read_booster(written(tmp_path, tree_one(model_text, key, value)))


def test_a_tree_without_a_required_line_is_refused(model_text):
    text = re.sub(r"(Tree=1\n(?:[^\n]+\n)*?)right_child=[^\n]*\n", r"\1", model_text)
    with pytest.raises(BoosterFormatError, match=r"tree 1: no right_child line"):
        check_model_text(text)


def test_bytes_that_are_not_text_are_an_error(model_text, tmp_path):
    path = tmp_path / "booster.txt"
    path.write_bytes(b"\xff\xfe" + model_text.encode())
    with pytest.raises(UnicodeDecodeError):
        read_booster(path)


def test_a_blend_predicts_and_explains_the_mean_of_its_boosters(tmp_path):
    # Given three boosters of different shapes on the same number and category
    y = ((ROWS[:, 0] + (ROWS[:, 1] == 2) * 1.5) > 0.5).astype(float)
    data = lgb.Dataset(ROWS, y, categorical_feature=[1], params={"feature_pre_filter": False})
    base = {"objective": "binary", "verbose": -1, "seed": 0, "min_data_in_leaf": 5}
    shapes = [{"num_leaves": 4}, {"num_leaves": 2, "max_depth": 1}, {"num_leaves": 7}]
    boosters = [lgb.train(base | s, data, 3 + i) for i, s in enumerate(shapes)]
    # When blended and written as any model is
    blend = blend_boosters(boosters)
    path = tmp_path / "booster.txt"
    blend.save_model(str(path))
    loaded = read_booster(path)
    # Then it holds every tree, and its log-odds and contributions are the boosters' means
    assert loaded.num_trees() == sum(b.num_trees() for b in boosters) == 3 + 4 + 5
    for kind in ({"raw_score": True}, {"pred_contrib": True}):
        mean = np.mean([b.predict(ROWS, **kind) for b in boosters], axis=0)
        np.testing.assert_allclose(loaded.predict(ROWS, **kind), mean, rtol=0, atol=1e-12)
