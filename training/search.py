"""A small, seeded search over LightGBM configurations for one target, judged on validation rows.

Beside the configurations, the search offers their *blend*: the mean log-odds of the
regularised ones and of a logistic regression on every feature (``training.linear``), held
as one booster (``models.booster.blend_boosters``) and a logistic member (``models.linear``)
whose log-odds are added. Validation halves are
often small (a cross-sell target may have 80 positives in it), and choosing the best of five
on so few rows mostly chooses noise: on the demo bank the validation-best configuration
was, on later data, among the worst as often as not, while the blend stayed near the best.
So where validation is small the blend is the default, and a single configuration replaces
it only when it ranks the validation rows better in nearly every bootstrap resample
(``choose``); where it is large, it decides alone and no blend is fitted.

Pure: arrays and masks in, fitted boosters and their figures out; MLflow logging happens
in ``training.train``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import lightgbm as lgb
import numpy as np
from pydantic import BaseModel, Field
from sklearn.metrics import roc_auc_score

from models.booster import blend_boosters
from models.linear import LinearHead
from models.metrics import score_metrics
from models.model import Encoding, raw_probability
from training.fit import BoosterParams, Split, matrix_dataset, train_booster
from training.linear import STRENGTH, fit_linear

BLEND = "blend"
LINEAR = "linear"  # the logistic member: every feature, fitted by ``training.linear``
# What the blend averages: the regularised configurations, which on small targets are each
# near the best and whose errors differ (leaves, stumps, strong L2), and the logistic
# member, for the straight signals trees only approximate by steps.
BLEND_MEMBERS = ("small_regularised", "additive", "shallow_strong_l2", LINEAR)


class Candidate(BaseModel):
    """One LightGBM configuration the search tries, under a name the run's tables use."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    params: BoosterParams


def default_candidates() -> list[Candidate]:
    """The grid every run tries, the blend's members first (the budget cuts the tail).

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
    kind: Literal["lightgbm", "logistic", "linear", "blend"]
    params: dict
    status: Literal["fitted", "skipped"]
    seconds: float = 0.0
    trees: int = 0
    train_rows: int = 0
    valid: dict[str, float] = field(default_factory=dict)  # raw scores on the validation rows
    test: dict[str, float] = field(default_factory=dict)  # reported, never used to choose
    booster: lgb.Booster | None = None
    linear: LinearHead | None = None  # the logistic member's model
    valid_scores: np.ndarray | None = None  # raw probabilities on the validation rows
    members: list[CandidateFit] = field(default_factory=list)  # a blend's configurations

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


@dataclass
class TargetRows:
    """A target's encoded rows and split, with the LightGBM datasets built from them once
    (binning a large matrix costs more than fitting a small model) and shared by every fit."""

    x: np.ndarray
    y: np.ndarray
    split: Split
    encoding: Encoding

    @cached_property
    def train(self) -> lgb.Dataset:
        return matrix_dataset(self.x[self.split.train], self.y[self.split.train], self.encoding)

    @cached_property
    def valid(self) -> lgb.Dataset:
        valid = self.split.valid
        data = matrix_dataset(self.x[valid], self.y[valid], self.encoding, reference=self.train)
        data.free_raw_data = False  # a subsample's fit re-references it to the subsample
        return data

    @cached_property
    def every(self) -> lgb.Dataset:
        """Every labelled row, for the refit with a known tree count."""
        return matrix_dataset(self.x, self.y, self.encoding)

    def sample(self, rows: int, seed: int) -> tuple[lgb.Dataset, np.ndarray]:
        """The training rows, or a seeded subsample of at most ``rows`` of them (same bins),
        and their positions in ``x``."""
        index = np.flatnonzero(self.split.train)
        if len(index) <= rows:
            return self.train, index
        keep = np.sort(np.random.default_rng(seed).choice(len(index), rows, replace=False))
        return self.train.construct().subset(keep.tolist()), index[keep]


def search_boosters(
    data: TargetRows,
    candidates: list[Candidate],
    rows: int,
    budget_seconds: float,
    seed: int,
    threads: int,
    blend: bool = True,
) -> list[CandidateFit]:
    """Fit each candidate on the same seeded subsample of at most ``rows`` training rows,
    then, with ``blend``, the logistic member and the blend of ``BLEND_MEMBERS`` (those
    fitted, if two or more).

    Each fit stops early on the validation rows. Once ``budget_seconds`` have passed, the
    candidates not yet tried are returned as skipped; the first is always fitted, so a run
    on a slow machine still has a model (but may choose differently from an unhurried one).
    """
    train, rows_used = data.sample(rows, seed)
    fits: list[CandidateFit] = []
    started = time.perf_counter()
    for candidate in candidates:
        params = candidate.params.model_dump()
        if fits and time.perf_counter() - started > budget_seconds:
            fits.append(CandidateFit(candidate.name, "lightgbm", params, "skipped"))
            continue
        tic = time.perf_counter()
        booster = train_booster(candidate.params, train, data.valid, seed, threads)
        fits.append(_fitted(candidate.name, "lightgbm", params, data, tic, rows_used, booster))
    if not blend:
        return fits
    tic = time.perf_counter()
    linear = fit_linear(data.x[rows_used], data.y[rows_used], data.encoding, rows, seed)
    fits.append(_fitted(LINEAR, "linear", {"C": STRENGTH}, data, tic, rows_used, linear=linear))
    members = [f for f in fits if f.name in BLEND_MEMBERS and f.status == "fitted"]
    if len(members) >= 2:
        tic = time.perf_counter()
        booster, linear = assemble(*parts_of(members))
        params = {"members": "+".join(m.name for m in members)}
        fits.append(_fitted(BLEND, "blend", params, data, tic, rows_used, booster, linear))
        fits[-1].members = members
    return fits


def parts_of(members: list[CandidateFit]) -> tuple[list[lgb.Booster], LinearHead | None]:
    """The boosters and the logistic model (if any) of a blend's members."""
    boosters = [m.booster for m in members if m.kind == "lightgbm"]
    return boosters, next((m.linear for m in members if m.kind == "linear"), None)


def assemble(
    boosters: list[lgb.Booster], linear: LinearHead | None
) -> tuple[lgb.Booster, LinearHead | None]:
    """A blend's booster and weighted logistic member from its members' models, each with an
    equal share of the log-odds; one booster alone is returned as it is."""
    count = len(boosters) + (linear is not None)
    if count == 1:
        return boosters[0], linear
    share = 1.0 / count
    return blend_boosters(boosters, share), None if linear is None else linear.scaled(share)


def _fitted(name, kind, params, data: TargetRows, tic, rows, booster=None, linear=None):
    """A fitted candidate with its validation and test figures (raw probabilities)."""
    x, y, split = data.x, data.y, data.split
    valid = raw_probability(booster, linear, x[split.valid])
    return CandidateFit(
        name,
        kind,
        params,
        "fitted",
        seconds=time.perf_counter() - tic,
        trees=0 if booster is None else booster.num_trees(),
        train_rows=len(rows),
        valid=score_metrics(y[split.valid], valid),
        test=score_metrics(y[split.test], raw_probability(booster, linear, x[split.test])),
        booster=booster,
        linear=linear,
        valid_scores=valid,
    )


def choose(fits: list[CandidateFit], y_valid: np.ndarray, confidence: float, seed: int):
    """The candidate to register: the blend, unless the validation-best configuration
    (``rank_key``) has a higher validation ROC AUC than the blend's in at least
    ``confidence`` of 200 bootstrap resamples of the validation rows (stratified, paired,
    seeded). Without a blend, the validation-best configuration. The logistic member alone
    is never registered: serving needs trees."""
    fitted = [f for f in fits if f.status == "fitted" and f.kind in ("lightgbm", "blend")]
    blend = next((f for f in fitted if f.kind == "blend"), None)
    best = min((f for f in fitted if f is not blend), key=rank_key)  # first of equals: grid order
    if blend is None:
        return best
    share = _bootstrap_wins(y_valid, best.valid_scores, blend.valid_scores, seed)
    return best if share >= confidence else blend


def smaller_class(y: np.ndarray) -> int:
    """The number of positives, or of negatives where fewer."""
    positives = int(y.sum())
    return min(positives, len(y) - positives)


def _bootstrap_wins(y: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int) -> float:
    """The share of stratified bootstrap resamples in which ``a`` has the higher ROC AUC."""
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    wins = 0
    resamples = 200
    for _ in range(resamples):
        idx = np.concatenate(
            [rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))]
        )
        wins += roc_auc_score(y[idx], a[idx]) > roc_auc_score(y[idx], b[idx])
    return wins / resamples
