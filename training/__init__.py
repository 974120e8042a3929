"""Training sets, LightGBM models, calibration, evaluation, MLflow registry and promotion."""
