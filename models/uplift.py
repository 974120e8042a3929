"""The uplift model format and the Qini figures that judge it: native files, no pickles.

An uplift model predicts, for one action, how much offering it changes the chance of the
action's outcome: ``P(outcome | offered) - P(outcome | not offered)`` per customer. It is
trained on the decisions of the action's no-offer holdout experiment (offered against held
out, randomized by ``serving.policy.in_holdout``) by ``training.uplift``; serving reads it.

A model is a folder holding ``encoding.json`` (the same ``models.model.Encoding`` as the
target models), ``meta.json`` (action, method, figures) and LightGBM text models:

- ``two_model`` (the default; why in ``training.uplift``): ``offered.txt`` and
  ``holdout.txt``, one classifier per arm; uplift = offered - holdout probability;
- ``transformed_outcome``: ``uplift.txt``, a regression on the transformed outcome
  ``y * (t / e - (1 - t) / (1 - e))`` whose expectation is the uplift.

The Qini figures live here beside the format: training gates on them and monitoring reports
them, one definition for both (monitoring may import ``models``, not ``training``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.values import json_default
from models.booster import read_booster
from models.model import Encoding

Method = Literal["two_model", "transformed_outcome"]
# The booster files of each method, by role.
BOOSTERS: dict[str, tuple[str, ...]] = {
    "two_model": ("offered", "holdout"),
    "transformed_outcome": ("uplift",),
}


@dataclass
class UpliftModel:
    """One action's uplift model: predicts the change an offer makes to its outcome's chance.

    ``name``, ``version``, ``spec`` (the feature spec it was trained with, for computing
    its features), ``folder`` and ``digests`` are set when it is loaded from the registry
    (``models.registry.load_uplift_folder``); they are not in its files.
    """

    action: str
    method: Method
    boosters: dict[str, lgb.Booster]
    encoding: Encoding
    meta: dict = field(default_factory=dict)
    name: str = ""
    version: str = ""
    spec: dict = field(default_factory=dict)
    folder: Path | None = None  # the verified native files it was loaded from
    digests: dict[str, str] = field(default_factory=dict)  # their recorded sha256

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Predicted uplift of encoded rows (``encoding.matrix`` or ``encoding.row``), in
        -1..1: above 0 the offer helps, below 0 it harms (a "sleeping dog")."""
        threads = int(self.meta.get("threads", 1))
        if self.method == "two_model":
            offered = self.boosters["offered"].predict(matrix, num_threads=threads)
            held = self.boosters["holdout"].predict(matrix, num_threads=threads)
            return np.asarray(offered - held, dtype=np.float64)
        raw = self.boosters["uplift"].predict(matrix, num_threads=threads)
        return np.clip(np.asarray(raw, dtype=np.float64), -1.0, 1.0)

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted uplift of feature rows (a frame with the ``encoding``'s columns)."""
        return self.predict(self.encoding.matrix(frame))

    def predict_row(self, values: dict) -> float:
        """One customer's predicted uplift from their feature values (the service's hot path)."""
        return float(self.predict(self.encoding.row(values))[0])

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for role in BOOSTERS[self.method]:
            self.boosters[role].save_model(str(folder / f"{role}.txt"))
        _dump(folder / "encoding.json", self.encoding.to_dict())
        meta = {k: v for k, v in self.meta.items() if k != "threads"}
        _dump(folder / "meta.json", {**meta, "action": self.action, "method": self.method})
        return folder

    @classmethod
    def load(cls, folder: Path, threads: int = 1) -> UpliftModel:
        """Load from a folder of the native files (``threads`` for LightGBM's predict).

        Raises:
            OSError: a file is missing or unreadable.
            ValueError: a file is not what it should be (an unknown method, a malformed
                booster, ``json.JSONDecodeError``).
            lightgbm.basic.LightGBMError: LightGBM refuses a booster.
        """
        meta = json.loads((folder / "meta.json").read_text())
        action, method = meta.pop("action"), meta.pop("method")
        if method not in BOOSTERS:
            raise ValueError(f"unknown uplift method {method!r}; known: {', '.join(BOOSTERS)}")
        encoding = Encoding(**json.loads((folder / "encoding.json").read_text()))
        boosters = {role: read_booster(folder / f"{role}.txt") for role in BOOSTERS[method]}
        return cls(action, method, boosters, encoding, {**meta, "threads": threads})


def _dump(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=json_default))


# -- Qini --------------------------------------------------------------------------------------
#
# Rows are targeted by descending score; rows tied on the score enter together. At each cut,
# with n_t, y_t the offered rows and their outcomes so far and n_c, y_c the same for the
# held-out (comparison) rows:
#   qini   = y_t - y_c n_t / n_c           the outcomes the offers added among the offered,
#   uplift = (y_t / n_t - y_c / n_c) (n_t + n_c)   the same scaled to every row so far,
# each ratio 0 while its denominator is (scikit-uplift's ``qini_curve`` and ``uplift_curve``).
# The random line runs straight from the origin to the last point. The coefficient is the
# area between the Qini curve and the random line (over the share of rows targeted) divided
# by the same area for the perfect score, which puts offered rows with an outcome first and
# held-out rows with an outcome last (scikit-uplift's ``qini_auc_score`` with negative
# effects allowed): 1 for the perfect score, about 0 for chance, below 0 for a score that
# targets the wrong customers; comparable across rows and models.


def qini_curve(outcome: np.ndarray, offered: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """Qini and uplift curves of rows targeted by descending score, with the random line.

    Args:
        outcome: 0/1 outcomes.
        offered: True (or 1) for rows of the offered arm, False (0) for held-out rows.
        score: what the rows are targeted by (an uplift or a propensity), highest first.

    Returns:
        Columns ``share`` (of rows targeted, 0..1), ``qini``, ``uplift`` and ``random``, one
        row per tie group after the origin (the definitions above this function).
    """
    share, qini, uplift = _qini_points(outcome, offered, score)
    return pd.DataFrame(
        {"share": share, "qini": qini, "uplift": uplift, "random": share * qini[-1]}
    )


def qini_coefficient(outcome: np.ndarray, offered: np.ndarray, score: np.ndarray) -> float:
    """The normalised Qini coefficient of ``score`` (defined above ``qini_curve``).

    Returns:
        The coefficient: 1 perfect, about 0 chance, below 0 worse than chance; NaN without
        rows of both arms, or when even the perfect score is no better than the random line
        (e.g. no row has an outcome).
    """
    y, t = np.asarray(outcome, dtype=np.float64), np.asarray(offered, dtype=np.float64)
    if t.all() or not t.any():
        return math.nan
    perfect = _qini_area(*_qini_points(y, t, y * t - y * (1 - t))[:2])
    if not perfect > 0:
        return math.nan
    return _qini_area(*_qini_points(y, t, score)[:2]) / perfect


def qini_interval(
    outcome: np.ndarray,
    offered: np.ndarray,
    score: np.ndarray,
    replicates: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """A bootstrap interval of ``qini_coefficient``: rows resampled with replacement within
    each arm (so every replicate has both), seeded; percentiles at ``level``.

    Returns:
        (low, high); NaN, NaN without rows of both arms.
    """
    y, t = np.asarray(outcome, dtype=np.float64), np.asarray(offered, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    if t.all() or not t.any():
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    arms = [np.flatnonzero(t), np.flatnonzero(~t)]
    figures = np.empty(replicates)
    for r in range(replicates):
        rows = np.sort(np.concatenate([rng.choice(a, len(a), replace=True) for a in arms]))
        figures[r] = qini_coefficient(y[rows], t[rows], s[rows])
    tail = (1.0 - level) / 2 * 100
    low, high = np.nanpercentile(figures, [tail, 100 - tail])
    return float(low), float(high)


def _qini_points(
    outcome: np.ndarray, offered: np.ndarray, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``share``, ``qini`` and ``uplift`` at the origin and after each tie group."""
    y, t, s = (np.asarray(a, dtype=np.float64) for a in (outcome, offered, score))
    order = np.argsort(-s, kind="stable")
    y, t, s = y[order], t[order], s[order]
    cuts = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # the last row of each tie group
    n_t, n_c = np.cumsum(t)[cuts], np.cumsum(1 - t)[cuts]
    y_t, y_c = np.cumsum(y * t)[cuts], np.cumsum(y * (1 - t))[cuts]
    qini = y_t - y_c * _ratio(n_t, n_c)
    uplift = (_ratio(y_t, n_t) - _ratio(y_c, n_c)) * (n_t + n_c)
    return np.r_[0.0, (cuts + 1) / len(y)], np.r_[0.0, qini], np.r_[0.0, uplift]


def _qini_area(share: np.ndarray, qini: np.ndarray) -> float:
    """Area between a Qini curve and its random line (trapezoids over the share targeted)."""
    gap = qini - share * qini[-1]
    return float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(share)))


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b is 0."""
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b != 0)
