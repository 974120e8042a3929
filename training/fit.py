"""Row splits, the LightGBM fit and the naive baseline for one target."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.model import Encoding


class BoosterParams(BaseModel):
    """LightGBM settings. Depth is bounded so per-customer contributions stay cheap to serve."""

    # Defaults chosen on the demo base and on the telco benchmark: small, regularised trees
    # beat bigger ones on both (bench/quality.py) and keep TreeSHAP cheap.
    learning_rate: float = Field(0.03, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    max_depth: int = Field(5, ge=1, le=12, description="bounds TreeSHAP cost (grows with depth^2)")
    min_child_samples: int = Field(80, ge=1)
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    lambda_l2: float = Field(5.0, ge=0)
    max_rounds: int = Field(1000, ge=1)
    early_stopping_rounds: int = Field(40, ge=1)
    # No linear_tree option: LightGBM 4.x refuses pred_contrib=True (TreeSHAP, which gives
    # the reasons served with every score) for linear trees ("not implemented for linear
    # trees"). Depth-1 trees are the additive stand-in for a linear signal instead.

    def lightgbm(self, seed: int, threads: int) -> dict:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,  # with deterministic: same model whatever the machine's cache
            "num_threads": threads,
            "verbose": -1,
        }


@dataclass(frozen=True)
class Split:
    """Boolean masks over a target's rows: fit, early stopping + calibration, evaluation."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    scheme: str


def split_rows(as_of: pd.Series, y: pd.Series, horizon_days: int, seed: int) -> Split:
    """Out-of-time split: the latest snapshot is held out, halved by customer into valid and test.

    Training snapshots end a horizon before the held-out one, so no training label looks
    past the held-out as-of date. With a single snapshot (an export), customers are split
    60/20/20, stratified by outcome.
    """
    dates = sorted(as_of.unique())
    n = len(as_of)
    index = np.arange(n)
    if len(dates) > 1:
        last = pd.Timestamp(dates[-1])
        cutoff = last - pd.Timedelta(days=horizon_days)
        train = (pd.to_datetime(as_of) <= cutoff).to_numpy()
        if not train.any():  # snapshots closer together than the horizon: keep the earlier ones
            train = (pd.to_datetime(as_of) < last).to_numpy()
        held = index[(pd.to_datetime(as_of) == last).to_numpy()]
        scheme = "out_of_time"
    else:
        train_idx, held = _halve(index, y.to_numpy(), seed, test_size=0.4)
        train = np.isin(index, train_idx)
        scheme = "customer_split"
    valid_idx, test_idx = _halve(held, y.to_numpy()[held], seed, test_size=0.5)
    return Split(train, np.isin(index, valid_idx), np.isin(index, test_idx), scheme)


def _halve(index: np.ndarray, y: np.ndarray, seed: int, test_size: float):
    stratify = y if 0 < y.sum() < len(y) and min(y.sum(), len(y) - y.sum()) >= 2 else None
    return train_test_split(index, test_size=test_size, random_state=seed, stratify=stratify)


def matrix_dataset(
    x: np.ndarray, y: np.ndarray, encoding: Encoding, reference: lgb.Dataset | None = None
) -> lgb.Dataset:
    """A LightGBM dataset of encoded rows (native categoricals from the encoding).

    Binning a large matrix costs more than a small model's training, so a target's datasets
    are built once and shared by every configuration fitted on them: LightGBM's
    ``feature_pre_filter`` is off because it would tie the bins to one ``min_child_samples``.
    ``reference`` gives validation rows the training rows' bins.
    """
    return lgb.Dataset(
        x,
        y,
        feature_name=encoding.features,
        categorical_feature=encoding.categorical_indices,
        reference=reference,
        params={"feature_pre_filter": False},
        free_raw_data=True,
    )


def train_booster(
    params: BoosterParams,
    train: lgb.Dataset,
    valid: lgb.Dataset | None,
    seed: int,
    threads: int,
    rounds: int | None = None,
) -> lgb.Booster:
    """Train on ``train``: stopped early on ``valid``, or for exactly ``rounds`` without it."""
    if valid is None:
        return lgb.train(params.lightgbm(seed, threads), train, num_boost_round=max(rounds or 1, 1))
    return lgb.train(
        params.lightgbm(seed, threads),
        train,
        num_boost_round=params.max_rounds,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )


def fit_booster(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    encoding: Encoding,
    params: BoosterParams,
    seed: int,
    threads: int,
) -> lgb.Booster:
    """Train with early stopping on the validation rows, on datasets built for this one fit."""
    train = matrix_dataset(x_train, y_train, encoding)
    valid = matrix_dataset(x_valid, y_valid, encoding, reference=train)
    return train_booster(params, train, valid, seed, threads)


def fit_baseline(x_train: pd.DataFrame, y_train: np.ndarray, seed: int):
    """The naive baseline every run is compared to: logistic regression on RFM features."""
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000, random_state=seed),
    )
    return model.fit(x_train.to_numpy(dtype=float), y_train)
