"""Distribution profiles of features and scores: logged at training, compared when monitoring."""

from __future__ import annotations

import numpy as np
import pandas as pd

TOP_CATEGORIES = 30
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
