"""Fitting the logistic member of a blend on a target's encoded rows (``models.linear``).

Every encoded feature takes part: numbers filled with their training median, clipped to
their 0.5%-99.5% range (one extreme customer must not set a slope), ``log1p`` where they are
non-negative and long-tailed (spend, counts), standardised, with an indicator where they
can be missing; categories one-hot. L2-regularised logistic regression (lbfgs, which is
deterministic), on a seeded subsample of at most ``rows`` rows: a straight signal needs
far fewer rows than trees do, and the fit stays seconds at any base size.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.linear_model import LogisticRegression

from models.linear import LinearHead, Term
from models.model import Encoding

STRENGTH = 0.1  # scikit-learn's C; 0.05-1 ranked validation rows alike on the demo and telco


def fit_linear(
    x: np.ndarray, y: np.ndarray, encoding: Encoding, rows: int, seed: int
) -> LinearHead:
    """A logistic model of ``y`` on the encoded matrix ``x`` (see the module docstring)."""
    if len(y) > rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), rows, replace=False))
        x, y = x[keep], y[keep]
    shapes = [
        _shape(x[:, j], name, name in encoding.categories, len(encoding.categories.get(name, [])))
        for j, name in enumerate(encoding.features)
    ]
    columns = [column for j, term in enumerate(shapes) for column in _design(term, x[:, j])]
    model = LogisticRegression(C=STRENGTH, max_iter=2000, random_state=seed)
    model.fit(np.column_stack(columns) if columns else np.zeros((len(y), 1)), y)
    coefs = iter(model.coef_[0].tolist())  # consumed in the design's column order
    head = LinearHead(float(model.intercept_[0]), [_weighted(term, coefs) for term in shapes])
    centres = head.term_values(x).mean(axis=0)
    return LinearHead(
        head.intercept,
        [replace(t, centre=float(c)) for t, c in zip(head.terms, centres, strict=True)],
    )


def _shape(column: np.ndarray, name: str, categorical: bool, levels: int) -> Term:
    """A term's preprocessing, learned from the column (its weights still zero)."""
    if categorical:
        return Term(name, "categorical", levels=[0.0] * levels)
    known = column[~np.isnan(column)]
    if len(known) == 0 or known.min() == known.max():
        return Term(name, "numeric", scale=0.0)  # nothing to learn: a zero term
    low, high = (float(q) for q in np.quantile(known, [0.005, 0.995]))
    if low == high:
        low, high = float(known.min()), float(known.max())
    typical = max(float(np.median(np.abs(known))), 1.0)
    log = low >= 0 and float(np.quantile(known, 0.99)) > 20 * typical
    fill = float(np.median(known))
    w = np.clip(np.where(np.isnan(column), fill, column), low, high)
    w = np.log1p(w) if log else w
    return Term(
        name, "numeric", fill=fill, low=low, high=high, log=log,
        mean=float(w.mean()), scale=float(w.std()) or 1.0,
        missing=float(np.isnan(column).any()),  # 1: this column gets an indicator
    )  # fmt: skip


def _design(term: Term, column: np.ndarray) -> list[np.ndarray]:
    """The term's design columns, in the order ``_weighted`` reads their weights."""
    if term.kind == "categorical":
        return [(column == code).astype(float) for code in range(len(term.levels))] + [
            np.isnan(column).astype(float)
        ]
    if term.scale == 0.0:
        return []
    out = [term.standardised(column)]
    return [*out, np.isnan(column).astype(float)] if term.missing else out


def _weighted(term: Term, coefs) -> Term:
    """``term`` with its fitted weights, taken in ``_design``'s order from ``coefs``."""
    if term.kind == "categorical":
        levels = [next(coefs) for _ in term.levels]
        return Term(term.feature, "categorical", levels=levels, missing=next(coefs))
    if term.scale == 0.0:
        return Term(term.feature, "numeric", scale=1.0)
    coef = next(coefs)
    missing = next(coefs) if term.missing else 0.0
    return replace(term, coef=coef, missing=missing)
