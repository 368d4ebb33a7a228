"""Modeling core: the pure steps of training (no MLflow, no runs)."""
