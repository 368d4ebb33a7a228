"""Monitoring: the reference profile logged with every model, drift and performance
statistics against it, and the thresholds that turn them into a status. Pure: no MLflow.
"""
