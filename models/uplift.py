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

The Qini figures live here beside the format because training gates on them and monitoring
plots them, and neither imports the other.
"""

from __future__ import annotations

import json
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


def qini_curve(y: np.ndarray, offered: np.ndarray, uplift: np.ndarray) -> np.ndarray:
    """Incremental outcomes from offering the top k rows by predicted uplift, k = 0..n.

    At each k: offered outcomes in the top k - held-out outcomes there x (offered rows /
    held-out rows in the top k), the outcomes the offers added; 0 where the top k has no
    held-out row yet. Ties in ``uplift`` are broken by position (stably).
    """
    y, t = np.asarray(y, dtype=np.float64), np.asarray(offered, dtype=bool)
    order = np.argsort(-np.asarray(uplift, dtype=np.float64), kind="stable")
    y, t = y[order], t[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * ~t)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(n_c > 0, y_t - y_c * n_t / np.maximum(n_c, 1), 0.0)
    return np.concatenate([[0.0], gain])


def qini_coefficient(y: np.ndarray, offered: np.ndarray, uplift: np.ndarray) -> float:
    """The area between the Qini curve and the random-targeting line, both axes as shares of
    the rows (x: the share offered, y: incremental outcomes per row): 0 is no better than
    offering at random, above 0 better; NaN without rows of both arms.

    A ranking by the true uplift of a base where an offer adds 10 points to a fifth of the
    customers scores about 0.016; the figure is comparable across models on the same rows.
    """
    t = np.asarray(offered, dtype=bool)
    if t.all() or not t.any():
        return float("nan")
    n = len(t)
    curve = qini_curve(y, t, uplift) / n
    random = np.linspace(0.0, curve[-1], n + 1)
    return float(np.trapezoid(curve - random, dx=1.0 / n))


def qini_interval(
    y: np.ndarray,
    offered: np.ndarray,
    uplift: np.ndarray,
    replicates: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """A bootstrap interval of ``qini_coefficient``: rows resampled with replacement within
    each arm (so every replicate has both), seeded; percentiles at ``level``.

    Returns:
        (low, high); NaN, NaN without rows of both arms.
    """
    y, t, u = np.asarray(y, float), np.asarray(offered, bool), np.asarray(uplift, float)
    if t.all() or not t.any():
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    arms = [np.flatnonzero(t), np.flatnonzero(~t)]
    figures = np.empty(replicates)
    for r in range(replicates):
        rows = np.sort(np.concatenate([rng.choice(a, len(a), replace=True) for a in arms]))
        figures[r] = qini_coefficient(y[rows], t[rows], u[rows])
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(figures, [tail, 100 - tail])
    return float(low), float(high)
