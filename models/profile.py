"""Distribution profiles of features and scores: logged at training, compared when monitoring.

A profile is what training keeps of a column's distribution (``profile_column``); the
population stability index (``psi``) compares later values against it. Training and
monitoring share this one definition of bins, shares and PSI.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

TOP_CATEGORIES = 30
# Shares are floored before the logarithm of PSI: an empty bin would make it infinite.
# 1e-4 is the usual choice: an emptied 10% bin then adds about 0.1 x ln(1000) = 0.69.
SHARE_FLOOR = 1e-4
OTHER, MISSING = "__other__", "__missing__"


def profile_column(values: pd.Series, kind: str) -> dict:
    """Bins and shares of one column: deciles for numerics, top categories for categoricals."""
    if kind == "categorical":
        counts = values.astype("string").fillna(MISSING).value_counts()
        top = counts.sort_values(ascending=False, kind="stable").head(TOP_CATEGORIES)
        shares = {str(k): float(v) / len(values) for k, v in sorted(top.items())}
        rest = 1.0 - sum(shares.values())
        if rest > 1e-12:
            shares[OTHER] = rest
        return {"kind": "categorical", "shares": shares}
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    present = numbers[~np.isnan(numbers)]
    edges = (
        np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9))).tolist() if len(present) else []
    )
    return {"kind": "numeric", "edges": edges, "shares": bin_shares(numbers, edges)}


def bin_shares(numbers: np.ndarray, edges: list[float]) -> list[float]:
    """Shares of values in (-inf, e1], (e1, e2], ..., (ek, inf), then the share missing."""
    numbers = np.asarray(numbers, dtype=float)
    missing = np.isnan(numbers)
    index = np.searchsorted(np.asarray(edges), numbers[~missing], side="left")
    counts = np.bincount(index, minlength=len(edges) + 1).astype(float)
    total = max(len(numbers), 1)
    return [*(counts / total).tolist(), float(missing.sum()) / total]


def profile_frame(frame: pd.DataFrame, kinds: dict[str, str]) -> dict[str, dict]:
    """Profiles of the named columns of a frame (``kinds``: column -> numeric|categorical)."""
    return {
        name: profile_column(frame[name], kind) for name, kind in kinds.items() if name in frame
    }


def bin_labels(profile: dict) -> list[str]:
    """Readable names of a profile's bins, in the order of its shares.

    Numeric: ``<= e1``, ``(e1, e2]``, ..., ``> ek``, ``missing``; categorical: the categories.
    """
    if profile["kind"] == "categorical":
        return list(profile["shares"])
    edges = profile["edges"]
    if not edges:
        return ["all", "missing"]
    labels = [f"<= {edges[0]:.4g}"]
    labels += [f"({a:.4g}, {b:.4g}]" for a, b in itertools.pairwise(edges)]
    return [*labels, f"> {edges[-1]:.4g}", "missing"]


def compare_shares(profile: dict, actual_values: pd.Series | np.ndarray) -> tuple[list, list]:
    """Expected shares (from ``profile``) and actual shares of ``actual_values`` in its bins.

    Numeric values are cut at the profile's edges, with a last bin for missing values.
    Categorical values keep the profile's categories; any other category counts as
    ``__other__`` and a null as ``__missing__``, each added as a bin of expected share 0
    when the profile lacks it, so that a new category shows as drift.

    Returns:
        ``(expected, actual)``, lists of equal length in the order of ``bin_labels``
        (plus any added bins); an empty ``actual_values`` gives actual shares of 0.
    """
    if profile["kind"] == "categorical":
        expected = dict(profile["shares"])
        values = pd.Series(actual_values, dtype="object").astype("string")
        known = [k for k in expected if k != OTHER]
        mapped = values.fillna(MISSING)
        mapped = mapped.where(mapped.isin(known), OTHER)
        counts = mapped.value_counts()
        for extra in (OTHER, MISSING):
            if counts.get(extra, 0) > 0 and extra not in expected:
                expected[extra] = 0.0
        total = max(len(values), 1)
        return list(expected.values()), [float(counts.get(k, 0)) / total for k in expected]
    numbers = pd.to_numeric(pd.Series(actual_values), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )
    return list(profile["shares"]), bin_shares(numbers, profile["edges"])


def psi_of_shares(
    expected: list[float] | np.ndarray, actual: list[float] | np.ndarray, floor: float = SHARE_FLOOR
) -> float:
    """Population stability index: sum of (actual - expected) x ln(actual / expected).

    Shares below ``floor`` count as ``floor`` so that an empty bin adds a large but finite
    term. 0 means the same distribution; by convention below 0.1 is stable, 0.1-0.2 a
    moderate shift and above 0.2 a significant one.
    """
    e = np.maximum(np.asarray(expected, dtype=float), floor)
    a = np.maximum(np.asarray(actual, dtype=float), floor)
    if e.shape != a.shape:
        raise ValueError(f"expected {e.shape[0]} shares and actual {a.shape[0]} differ in length")
    return float(np.sum((a - e) * np.log(a / e)))


def psi(expected: dict, actual_values: pd.Series | np.ndarray, kind: str | None = None) -> float:
    """Population stability index of ``actual_values`` against a training profile.

    Args:
        expected: a ``profile_column`` result (the training distribution).
        actual_values: the values now (nulls count in the missing bin).
        kind: ``numeric`` or ``categorical``; the profile's own kind by default.

    Returns:
        The PSI (see ``psi_of_shares``); NaN when there is no actual value at all.

    Raises:
        ValueError: ``kind`` differs from the profile's kind.
    """
    if kind is not None and kind != expected["kind"]:
        raise ValueError(f"a {expected['kind']} profile cannot be compared as {kind}")
    if len(actual_values) == 0:
        return float("nan")
    return psi_of_shares(*compare_shares(expected, actual_values))
