"""MLflow "model from code" for an uplift model: a pyfunc over its native files that returns
the predicted uplift per row (``models.uplift``); no pickled Python object is stored.

MLflow executes this file when it loads the model (``set_model`` is how models from code
declare themselves), so it lives apart from the format, which must not act on import.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.uplift import UpliftModel


class ActionUplift(PythonModel):
    """pyfunc ``predict``: a frame of features in, predicted uplift (-1..1) out."""

    def load_context(self, context) -> None:
        self.model = UpliftModel.load(Path(context.artifacts["model"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.model.predict_frame(model_input)


mlflow.models.set_model(ActionUplift())
