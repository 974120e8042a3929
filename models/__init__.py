"""What a trained model is: its files, its figures and profile, reading it from MLflow, scoring with it."""
