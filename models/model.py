"""The model format training writes and serving reads: native files, no pickles.

A target's model is a folder holding ``booster.txt`` (LightGBM's text model),
``encoding.json`` (feature order and categorical vocabularies), ``calibration.json``
(the map from raw score to calibrated probability) and ``meta.json``, and, for a blend with
a logistic member, ``linear.json`` (``models.linear``). It lives in
``models`` because training, serving, the batch and monitoring all need it, and serving
never imports training.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.values import json_default
from models.booster import check_model_text, read_booster
from models.linear import LinearHead

FILES = ("booster.txt", "encoding.json", "calibration.json", "meta.json")
LINEAR_FILE = "linear.json"  # only a blend with a logistic member has it


@dataclass(frozen=True)
class Encoding:
    """Feature order and the vocabulary of each categorical; unseen or null categories are missing."""

    features: list[str]
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, frame: pd.DataFrame, features: list[str], categorical: list[str]) -> Encoding:
        """Learn vocabularies (sorted, so the encoding is deterministic) from training rows."""
        vocab = {c: sorted(frame[c].dropna().astype(str).unique().tolist()) for c in categorical}
        return cls(list(features), vocab)

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, f in enumerate(self.features) if f in self.categories]

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of ``frame`` as the float matrix the booster expects (categories as codes)."""
        out = np.empty((len(frame), len(self.features)), dtype=np.float64)
        for j, name in enumerate(self.features):
            if name not in frame:  # a feature the scoring data lacks is missing, not an error
                out[:, j] = np.nan
                continue
            column = frame[name]
            if name in self.categories:
                codes = pd.Categorical(
                    column.astype("string"), categories=self.categories[name]
                ).codes
                out[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                out[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(
                    dtype=np.float64, na_value=np.nan
                )
        return out

    def row(self, values: dict) -> np.ndarray:
        """One customer's feature dict as a 1-row matrix, without pandas (the service's hot path)."""
        out = np.empty((1, len(self.features)), dtype=np.float64)
        for j, name in enumerate(self.features):
            value = values.get(name)
            if name in self.categories:
                index = self._index(name).get(value)
                out[0, j] = np.nan if index is None else index
            else:
                out[0, j] = np.nan if value is None else float(value)
        return out

    def _index(self, name: str) -> dict[str, int]:
        cache = self.__dict__.setdefault("_indices", {})
        if name not in cache:
            cache[name] = {v: i for i, v in enumerate(self.categories[name])}
        return cache[name]

    def to_dict(self) -> dict:
        return {"features": self.features, "categories": self.categories}


@dataclass(frozen=True)
class Calibration:
    """Maps a raw booster probability to a calibrated one (isotonic steps or Platt sigmoid)."""

    method: Literal["isotonic", "platt", "identity"]
    x: list[float] = field(default_factory=list)  # isotonic knots
    y: list[float] = field(default_factory=list)
    a: float = 1.0  # platt: sigmoid(a * logit(p) + b)
    b: float = 0.0

    def apply(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(raw, self.x, self.y)
        if self.method == "platt":
            p = np.clip(raw, 1e-12, 1 - 1e-12)
            return 1.0 / (1.0 + np.exp(-(self.a * np.log(p / (1 - p)) + self.b)))
        return raw


@dataclass
class Predictor:
    """A trained target: booster (+ a blend's logistic member) + encoding + calibration,
    predicting calibrated probabilities."""

    target: str
    booster: lgb.Booster
    encoding: Encoding
    calibration: Calibration
    meta: dict = field(default_factory=dict)
    linear: LinearHead | None = None  # its log-odds are added to the booster's

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for encoded rows."""
        return self.calibration.apply(self.raw(matrix))

    def raw(self, matrix: np.ndarray) -> np.ndarray:
        """Uncalibrated probabilities for encoded rows."""
        return raw_probability(self.booster, self.linear, matrix, self.threads)

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict(self.encoding.matrix(frame))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per-feature contributions to the raw log-odds (TreeSHAP, plus the logistic
        member's own where there is one); the last column is the bias."""
        trees = self.booster.predict(matrix, pred_contrib=True, num_threads=self.threads)
        return trees if self.linear is None else trees + self.linear.contributions(matrix)

    @property
    def threads(self) -> int:
        return int(self.meta.get("threads", 1))

    def to_dict(self) -> dict:
        """The model as plain data: LightGBM's text model and JSON-able dicts, no pickles."""
        return {
            "target": self.target,
            "booster": self.booster.model_to_string(),
            "encoding": self.encoding.to_dict(),
            "calibration": asdict(self.calibration),
            "meta": {k: v for k, v in self.meta.items() if k != "threads"},
            "linear": None if self.linear is None else self.linear.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict, threads: int = 1) -> Predictor:
        linear = data.get("linear")
        return cls(
            data["target"],
            lgb.Booster(model_str=check_model_text(data["booster"])),
            Encoding(**data["encoding"]),
            Calibration(**data["calibration"]),
            {**data["meta"], "threads": threads},
            None if linear is None else LinearHead.from_dict(linear),
        )

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / "booster.txt"))
        _dump(folder / "encoding.json", self.encoding.to_dict())
        _dump(folder / "calibration.json", asdict(self.calibration))
        _dump(folder / "meta.json", {"target": self.target, **self.meta})
        if self.linear is not None:
            _dump(folder / LINEAR_FILE, self.linear.to_dict())
        return folder

    @classmethod
    def load(cls, folder: Path, threads: int = 1) -> Predictor:
        """Load from a folder of the native files (``threads`` for LightGBM's predict).

        Raises:
            OSError: a file is missing or unreadable.
            ValueError: a file is not what it should be (``models.booster.BoosterFormatError``
                for the booster, ``json.JSONDecodeError`` for the JSON files).
            lightgbm.basic.LightGBMError: LightGBM refuses the booster.
        """
        meta = json.loads((folder / "meta.json").read_text())
        encoding = Encoding(**json.loads((folder / "encoding.json").read_text()))
        calibration = Calibration(**json.loads((folder / "calibration.json").read_text()))
        booster = read_booster(folder / "booster.txt")
        linear = None
        if (folder / LINEAR_FILE).exists():
            linear = LinearHead.from_dict(json.loads((folder / LINEAR_FILE).read_text()))
        return cls(
            meta.pop("target"), booster, encoding, calibration, {**meta, "threads": threads}, linear
        )


def raw_probability(
    booster: lgb.Booster | None, linear: LinearHead | None, matrix: np.ndarray, threads: int = 1
) -> np.ndarray:
    """The uncalibrated probability of a booster, a logistic member, or both (their log-odds
    added)."""
    if linear is None:
        return booster.predict(matrix, num_threads=threads)
    margin = linear.logit(matrix)
    if booster is not None:
        margin = margin + booster.predict(matrix, raw_score=True, num_threads=threads)
    return 1.0 / (1.0 + np.exp(-margin))


def _dump(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=json_default))
