"""The pure steps of a training run (prepare, fit, evaluate) and of a backtest month: what
the workflows call inside the runs they open. No MLflow.
"""
