"""A logistic model on a target's encoded rows, kept as plain numbers beside the booster.

A blend may hold a logistic member (``training.linear``) beside its trees, so that a base
where a straight signal dominates is not left to trees that can only approximate it by
steps. Serving loads no scikit-learn: the member is written to ``linear.json`` as one term
per encoded feature, and its log-odds and per-feature contributions are computed here with
numpy. A term's contribution is its value less its mean over the training rows, which is a
linear model's exact SHAP value when features are independent; the means go to the bias, so
contributions and bias add up to the log-odds, as TreeSHAP's do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Term:
    """One encoded feature's part of the log-odds.

    A number is filled where missing (``fill``), clipped to ``[low, high]``, taken as
    ``log1p`` where ``log`` (a non-negative, long-tailed column), standardised by ``mean`` and
    ``scale`` and multiplied by ``coef``; ``missing`` is added where it was missing. A
    category adds the weight of its code (``levels``), or ``missing`` when it has none.
    """

    feature: str
    kind: Literal["numeric", "categorical"]
    coef: float = 0.0
    fill: float = 0.0
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    mean: float = 0.0
    scale: float = 1.0
    missing: float = 0.0
    levels: list[float] = field(default_factory=list)
    centre: float = 0.0  # the term's mean over the training rows

    def standardised(self, column: np.ndarray) -> np.ndarray:
        """The number as the model reads it: filled, clipped, logged, standardised."""
        w = np.clip(np.where(np.isnan(column), self.fill, column), self.low, self.high)
        return ((np.log1p(w) if self.log else w) - self.mean) / self.scale

    def scaled(self, weight: float) -> Term:
        return replace(
            self,
            coef=self.coef * weight,
            missing=self.missing * weight,
            levels=[v * weight for v in self.levels],
            centre=self.centre * weight,
        )


@dataclass(frozen=True)
class LinearHead:
    """Log-odds = ``intercept`` + the sum of the terms, one per encoded feature in order.

    The terms are evaluated as arrays, all numbers at once and all categories at once (the
    service scores one row per model per request: a loop over terms would cost more than
    the trees)."""

    intercept: float
    terms: list[Term]

    def term_values(self, matrix: np.ndarray) -> np.ndarray:
        """Each term's value per row, in the encoding's column order."""
        matrix, a = self._rows(matrix), self._arrays()
        centred, absent = self._numbers(matrix)
        out = np.empty(matrix.shape)
        out[:, a["numeric"]] = centred * a["slope"] + absent * a["missing"]
        out[:, a["categorical"]] = self._categories(matrix)
        return out

    def logit(self, matrix: np.ndarray) -> np.ndarray:
        matrix, a = self._rows(matrix), self._arrays()
        centred, absent = self._numbers(matrix)
        numbers = centred @ a["slope"] + absent @ a["missing"]
        return self.intercept + numbers + self._categories(matrix) @ a["ones"]

    def _rows(self, matrix: np.ndarray) -> np.ndarray:
        return np.asarray(matrix, dtype=np.float64).reshape(-1, len(self.terms))

    def _numbers(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The numeric columns filled, clipped, logged and less their mean; where missing."""
        a = self._arrays()
        numbers = matrix[:, a["numeric"]]
        absent = np.isnan(numbers)
        w = np.minimum(np.maximum(np.where(absent, a["fill"], numbers), a["low"]), a["high"])
        if a["any_log"]:  # logged columns are non-negative once clipped (training.linear)
            w[:, a["log"]] = np.log1p(w[:, a["log"]])
        return w - a["mean"], absent.astype(np.float64)

    def _categories(self, matrix: np.ndarray) -> np.ndarray:
        """Each categorical column's weight (the missing one for no, unseen or bad codes)."""
        a = self._arrays()
        codes = matrix[:, a["categorical"]]
        width = a["weights"].shape[1] - 1  # the last column: missing, unseen or out of range
        index = np.where((codes >= 0) & (codes < width), codes, width).astype(np.int64)  # NaN too
        return a["weights"][a["rows"], index]

    def _arrays(self) -> dict[str, np.ndarray]:
        """The terms as arrays, built once (the dataclass is frozen: cached in ``__dict__``)."""
        cached = self.__dict__.get("_cached")
        if cached is not None:
            return cached
        numeric = [t for t in self.terms if t.kind == "numeric"]
        categorical = [t for t in self.terms if t.kind == "categorical"]
        width = max((len(t.levels) for t in categorical), default=0)
        weights = np.array(
            [t.levels + [t.missing] * (width - len(t.levels) + 1) for t in categorical]
        ).reshape(len(categorical), width + 1)
        arrays = {
            "numeric": np.array([i for i, t in enumerate(self.terms) if t.kind == "numeric"], int),
            "categorical": np.array(
                [i for i, t in enumerate(self.terms) if t.kind == "categorical"], int
            ),
            "weights": weights,
            "rows": np.arange(len(categorical))[None, :],
            "ones": np.ones(len(categorical)),
            **{
                name: np.array([getattr(t, name) for t in numeric], dtype=dtype)
                for name, dtype in (
                    ("fill", float), ("low", float), ("high", float), ("log", bool),
                    ("mean", float), ("missing", float),
                )
            },
            "slope": np.array([t.coef / t.scale for t in numeric], dtype=float),
        }  # fmt: skip
        arrays["any_log"] = bool(arrays["log"].any())
        arrays["log"] = np.flatnonzero(arrays["log"])
        self.__dict__["_cached"] = arrays
        return arrays

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per-feature contributions to the log-odds, the bias in the last column."""
        values = self.term_values(matrix)
        centres = np.array([t.centre for t in self.terms])
        bias = np.full((len(values), 1), self.intercept + centres.sum())
        return np.hstack([values - centres, bias])

    def scaled(self, weight: float) -> LinearHead:
        """The same model with its log-odds times ``weight`` (a blend's share)."""
        return LinearHead(self.intercept * weight, [t.scaled(weight) for t in self.terms])

    def to_dict(self) -> dict:
        return {"intercept": self.intercept, "terms": [asdict(t) for t in self.terms]}

    @classmethod
    def from_dict(cls, data: dict) -> LinearHead:
        return cls(float(data["intercept"]), [Term(**t) for t in data["terms"]])
