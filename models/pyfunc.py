"""MLflow "model from code": a pyfunc over the native files that returns calibrated probabilities.

MLflow executes this file when it loads the model (``set_model`` below is how models
from code declare themselves), so no pickled Python object is ever stored.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.model import Predictor


class CalibratedTarget(PythonModel):
    """pyfunc ``predict``: a frame of features in, calibrated probabilities out."""

    def load_context(self, context) -> None:
        self.predictor = Predictor.load(Path(context.artifacts["model"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.predictor.predict_frame(model_input)


mlflow.models.set_model(CalibratedTarget())
