"""Workflows own the side effects: each one opens the MLflow run and drives the pure core."""
