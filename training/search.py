"""A small, seeded search over LightGBM configurations for one target, judged on validation rows.

Pure: arrays and masks in, fitted boosters and their figures out; MLflow logging happens
in ``training.train``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import lightgbm as lgb
import numpy as np
from pydantic import BaseModel, Field

from models.metrics import score_metrics
from models.model import Encoding
from training.fit import BoosterParams, Split, fit_booster, subsample


class Candidate(BaseModel):
    """One LightGBM configuration the search tries, under a name the run's tables use."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    params: BoosterParams


def default_candidates() -> list[Candidate]:
    """The grid every run tries, cheapest and historically best first (the budget cuts the tail).

    Learning rates are 0.05-0.1 rather than the former 0.03, and patience 20 rounds at 0.1, so
    each fit stops early; depth stays at most 8 so TreeSHAP stays cheap to serve (its cost
    grows with depth squared).
    """
    return [
        # The previous single configuration: small, regularised trees (bench/quality.py).
        Candidate(
            name="small_regularised",
            params=BoosterParams(learning_rate=0.05, num_leaves=15, max_depth=5),
        ),
        # Additive (depth-1) trees: a GAM, the tree counterpart of the logistic baseline, for
        # bases where linear signals dominate. Steps only approximate a straight logit, so no
        # sampling or L2 to blur them, and a longer patience.
        Candidate(
            name="additive",
            params=BoosterParams(
                learning_rate=0.2,  # stumps learn little per round; 0.1 doubled the refit time
                num_leaves=2,
                max_depth=1,
                min_child_samples=20,
                feature_fraction=1.0,
                bagging_fraction=1.0,
                lambda_l2=0.0,
                max_rounds=2000,
                early_stopping_rounds=30,
            ),
        ),
        # Close to LightGBM's defaults (31 leaves, 20 rows per leaf, no L2, no row or column
        # sampling, learning rate 0.1), with depth capped at 8 for serving.
        Candidate(
            name="lightgbm_defaults",
            params=BoosterParams(
                learning_rate=0.1,
                num_leaves=31,
                max_depth=8,
                min_child_samples=20,
                feature_fraction=1.0,
                bagging_fraction=1.0,
                lambda_l2=0.0,
                early_stopping_rounds=20,
            ),
        ),
        # Fewer, larger leaves with strong L2: for small or noisy targets (cross-sell).
        Candidate(
            name="shallow_strong_l2",
            params=BoosterParams(
                learning_rate=0.1,
                num_leaves=7,
                max_depth=3,
                min_child_samples=300,
                lambda_l2=20.0,
                early_stopping_rounds=20,
            ),
        ),
        # More leaves, more rows per leaf: for large bases with interactions.
        Candidate(
            name="wide",
            params=BoosterParams(
                learning_rate=0.1,
                num_leaves=63,
                max_depth=8,
                min_child_samples=200,
                lambda_l2=10.0,
                early_stopping_rounds=20,
            ),
        ),
    ]


@dataclass
class CandidateFit:
    """One candidate's outcome in the search (a skipped one has no booster and no figures)."""

    name: str
    kind: Literal["lightgbm", "logistic"]
    params: dict
    status: Literal["fitted", "skipped"]
    seconds: float = 0.0
    trees: int = 0
    train_rows: int = 0
    valid: dict[str, float] = field(default_factory=dict)  # raw scores on the validation rows
    test: dict[str, float] = field(default_factory=dict)  # reported, never used to choose
    booster: lgb.Booster | None = None

    def row(self) -> dict:
        """A flat, JSON-able row of the candidates table."""
        figures = {
            f"{part}_{m}": d.get(m, float("nan"))
            for part, d in (("valid", self.valid), ("test", self.test))
            for m in ("roc_auc", "pr_auc", "ece", "log_loss")
        }
        return {
            "candidate": self.name,
            "kind": self.kind,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "trees": self.trees,
            "train_rows": self.train_rows,
            **figures,
            "params": ", ".join(f"{k}={v}" for k, v in self.params.items()),
        }


def rank_key(fit: CandidateFit) -> tuple[float, float]:
    """Sort key, best first: validation ROC AUC, then validation log loss.

    ROC AUC decides because calibration is fitted afterwards by a monotone map, which leaves
    the ranking, and so ROC AUC, unchanged, while it redoes the raw probabilities that log
    loss would also reward; and the promotion gate judges ROC AUC. Log loss breaks ties.
    """
    auc = fit.valid.get("roc_auc", float("nan"))
    return (-auc if np.isfinite(auc) else np.inf, fit.valid.get("log_loss", np.inf))


def search_boosters(
    x: np.ndarray,
    y: np.ndarray,
    split: Split,
    encoding: Encoding,
    candidates: list[Candidate],
    rows: int,
    budget_seconds: float,
    seed: int,
    threads: int,
) -> list[CandidateFit]:
    """Fit each candidate on the same seeded subsample of at most ``rows`` training rows.

    Each fit stops early on the validation rows. Once ``budget_seconds`` have passed, the
    candidates not yet tried are returned as skipped; the first is always fitted, so a run
    on a slow machine still has a model (but may choose differently from an unhurried one).
    """
    train = subsample(split.train, rows, seed)
    fits: list[CandidateFit] = []
    started = time.perf_counter()
    for candidate in candidates:
        params = candidate.params.model_dump()
        if fits and time.perf_counter() - started > budget_seconds:
            fits.append(CandidateFit(candidate.name, "lightgbm", params, "skipped"))
            continue
        tic = time.perf_counter()
        booster = fit_booster(
            x[train], y[train], x[split.valid], y[split.valid], encoding, candidate.params, seed,
            threads,
        )  # fmt: skip
        fits.append(
            CandidateFit(
                candidate.name,
                "lightgbm",
                params,
                "fitted",
                seconds=time.perf_counter() - tic,
                trees=booster.num_trees(),
                train_rows=int(train.sum()),
                valid=score_metrics(y[split.valid], booster.predict(x[split.valid])),
                test=score_metrics(y[split.test], booster.predict(x[split.test])),
                booster=booster,
            )
        )
    return fits


def best_fit(fits: list[CandidateFit]) -> CandidateFit:
    """The fitted LightGBM candidate that ranks first on the validation rows."""
    fitted = [f for f in fits if f.status == "fitted" and f.kind == "lightgbm"]
    return min(fitted, key=rank_key)  # min() keeps the first of equals: the grid order
