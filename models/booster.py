"""LightGBM's text model, checked before LightGBM parses it, so a bad file raises.

LightGBM 4 does not fail safely on a malformed model file:

- a model file with a ``tree_sizes`` header (every file ``save_model`` writes) has its trees
  parsed in an OpenMP loop, where a format error aborts the process ("terminate called
  without an active exception") instead of raising; without the header the same trees are
  parsed one after the other and a format error raises ``LightGBMError``;
- a tree whose child links are broken loads, then makes ``predict`` loop forever or read
  out of bounds (a segmentation fault);
- a file cut off before its trees loads as a model without trees, predicting a constant.

``read_booster`` checks the structure of every tree, drops the ``tree_sizes`` header and
only then hands the text to LightGBM. The check is no defence against a crafted file (the
sha256 recorded at registration is, ``models.registry``); it turns an accident (a file cut
short, a flipped byte) into an exception instead of a dead or hung worker.
"""

from __future__ import annotations

import re
from pathlib import Path

import lightgbm as lgb

END_OF_TREES = "end of trees"
CATEGORICAL = 1  # bit 0 of decision_type: a categorical split (LightGBM's kCategoricalMask)
_TREE_SIZES = re.compile(r"^tree_sizes=.*\n", re.MULTILINE)


class BoosterFormatError(ValueError):
    """A LightGBM text model that is incomplete or whose trees are not well formed."""


def read_booster(path: Path) -> lgb.Booster:
    """Load LightGBM's text model at ``path`` after checking it (``check_model_text``).

    Raises:
        BoosterFormatError: the file is not a complete, well-formed model.
        OSError, UnicodeDecodeError: it cannot be read as text.
        lightgbm.basic.LightGBMError: LightGBM refuses it.
    """
    text = path.read_text(encoding="utf-8")
    return lgb.Booster(model_str=check_model_text(text))


def check_model_text(text: str) -> str:
    """The model text without its ``tree_sizes`` header, once every tree is checked.

    Checked: a header with ``max_feature_idx``, at least one tree, the ``end of trees``
    line, and in each tree the lengths of the split and leaf arrays, split features within
    the header's features, categorical splits within the tree's categories, and child links
    that make a tree (every node but the root, and every leaf, the child of exactly one
    split).

    Raises:
        BoosterFormatError: what is wrong, and in which tree.
    """
    head, first, rest = text.partition("\nTree=")
    if not first:
        raise BoosterFormatError("no tree: the file is cut off or not a LightGBM model")
    trees, end, _ = rest.partition(f"\n{END_OF_TREES}\n")
    if not end:
        raise BoosterFormatError(f"no {END_OF_TREES!r} line: the file is cut off")
    header = _pairs(head)
    try:
        features = int(header["max_feature_idx"]) + 1
    except (KeyError, ValueError):
        raise BoosterFormatError("the header has no valid max_feature_idx") from None
    for block in trees.split("\nTree="):
        index, _, body = block.partition("\n")
        try:
            _check_tree(_pairs(body), features)
        except (KeyError, ValueError) as err:
            detail = f"no {err.args[0]} line" if isinstance(err, KeyError) else str(err)
            raise BoosterFormatError(f"tree {index.strip()[:20]}: {detail}") from None
    return _TREE_SIZES.sub("", head, count=1) + first + rest


def _pairs(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _ints(tree: dict[str, str], key: str, n: int) -> list[int]:
    values = [int(float(v)) for v in tree[key].split()]
    if len(values) != n:
        raise ValueError(f"{key} has {len(values)} values, expected {n}")
    return values


def _check_tree(tree: dict[str, str], features: int) -> None:
    leaves = int(tree["num_leaves"])
    if leaves < 1:
        raise ValueError(f"num_leaves is {leaves}")
    values = len(tree["leaf_value"].split())
    if values != leaves:
        raise ValueError(f"leaf_value has {values} values, expected {leaves}")
    splits = leaves - 1
    if splits == 0:
        return
    for feature in _ints(tree, "split_feature", splits):
        if not 0 <= feature < features:
            raise ValueError(f"split_feature {feature} is not one of the {features} features")
    thresholds = tree["threshold"].split()
    if len(thresholds) != splits:
        raise ValueError(f"threshold has {len(thresholds)} values, expected {splits}")
    categories = int(tree.get("num_cat", "0"))
    if categories:
        bounds = _ints(tree, "cat_boundaries", categories + 1)
        words = len(tree["cat_threshold"].split())
        if bounds[0] != 0 or bounds[-1] != words or bounds != sorted(bounds):
            raise ValueError("cat_boundaries do not index cat_threshold")
    for node, kind in enumerate(_ints(tree, "decision_type", splits)):
        # A categorical split's threshold is the index of its category set.
        if kind & CATEGORICAL and not 0 <= float(thresholds[node]) < categories:
            raise ValueError(f"split {node} refers to category set {thresholds[node]}")
    children = _ints(tree, "left_child", splits) + _ints(tree, "right_child", splits)
    # A non-negative child is a split, a negative one the leaf ~child; the root is split 0.
    nodes = sorted(c for c in children if c >= 0)
    ends = sorted(~c for c in children if c < 0)
    if nodes != list(range(1, splits)) or ends != list(range(leaves)):
        raise ValueError("left_child and right_child do not form a tree")


def blend_boosters(boosters: list[lgb.Booster], weight: float | None = None) -> lgb.Booster:
    """One booster whose raw score is the mean of ``boosters``' raw scores (log-odds), or
    their sum times ``weight`` (a blend whose other members are not boosters).

    Each tree of each booster is copied with its leaf values times the weight, so
    predictions and TreeSHAP contributions (both sums over trees) are exactly the weighted
    sums of theirs, and the result is an ordinary LightGBM text model that serving, the batch and
    the pyfunc flavour load as they load any other. The boosters must share their features
    (they were fitted on the same encoding); the first one's header is kept.
    """
    weight = 1.0 / len(boosters) if weight is None else weight
    head, trees = "", []
    for booster in boosters:
        text = check_model_text(booster.model_to_string())
        own_head, _, rest = text.partition("\nTree=")
        head = head or own_head
        body = rest.partition(f"\n{END_OF_TREES}\n")[0]
        trees += [_scaled_tree(block, weight) for block in body.split("\nTree=")]
    numbered = (f"Tree={i}\n{tree}" for i, tree in enumerate(trees))
    return lgb.Booster(model_str=head + "\n" + "\n\n".join(numbered) + f"\n\n\n{END_OF_TREES}\n")


def _scaled_tree(block: str, weight: float) -> str:
    """One tree's text without its ``Tree=`` index line, its leaf and node values times
    ``weight``."""
    lines = block.strip("\n").split("\n")[1:]
    for i, line in enumerate(lines):
        key, _, values = line.partition("=")
        if key in ("leaf_value", "internal_value"):
            lines[i] = key + "=" + " ".join(repr(float(v) * weight) for v in values.split())
    return "\n".join(lines)
