# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Train and evaluate a cancellation model through innflow
#
# Load the config, override a few parameters, train through `innflow.workflows.train`
# (the same code as `innflow train`: no pipeline code is copied here), look at the plots
# the run logged, and compare with the best runs so far.
#
# Run it as a tracked, reproducible run from the repository root:
# `innflow notebook run notebooks/02_train.py -p n_estimators=300`. The training is then a
# child of the notebook's run, which carries its metrics and prediction hash, and
# `innflow reproduce NOTEBOOK_RUN_ID` re-executes the notebook.

# %%
import tempfile
from pathlib import Path

import pandas as pd
from IPython.display import Image, display

from innflow import config, tracking
from innflow.reproducibility import comparison
from innflow.workflows.compare import collect
from innflow.workflows.train import train

# %% tags=["parameters"]
data_path = "data/hotel_bookings.parquet"  # CI runs it on tests/data/bookings_sample.parquet
config_file = None  # a YAML config file; None for the defaults (see configs/default.yaml)
model_kind = "lightgbm"
n_estimators = 500  # trees, for lightgbm, xgboost and random_forest
overrides = []  # more config overrides, each in the form innflow train --set takes

# %%
settings = [f"data.path={data_path}", f"model.kind={model_kind}", *overrides]
if model_kind in ("lightgbm", "xgboost", "random_forest"):
    settings.append(f"model.params.n_estimators={n_estimators}")
run_config = config.load(Path(config_file) if config_file else None, settings)
print(run_config.to_yaml())

# %% [markdown]
# ## Train and evaluate
#
# One call: load and validate the data, split by arrival date, fit, choose the threshold on
# validation, evaluate on the 2017 test window, and log everything as one MLflow run.

# %%
outcome = train(run_config)
parts = {"validation": "val", "test": "test"}
names = ["roc_auc", "pr_auc", "log_loss", "brier", "ece", "f1", "precision", "recall"]
scores = pd.DataFrame(
    {part: [outcome.metrics[f"{prefix}_{n}"] for n in names] for part, prefix in parts.items()},
    index=names,
)
print(f"run {outcome.run_id}, threshold {outcome.metrics['threshold']:.3f}")
display(scores.round(4))

# %% [markdown]
# ## The plots, as logged with the run

# %%
with tempfile.TemporaryDirectory() as tmp:
    for plot in ("roc", "calibration", "cost_curve", "feature_importance", "slices"):
        path = tracking.download_artifact(outcome.run_id, f"plots/{plot}.png", Path(tmp))
        if path is not None:
            display(Image(filename=str(path), width=520))

# %% [markdown]
# ## Compared with the best runs so far
#
# `innflow compare` as a library call: this run next to the experiment's best training
# runs by test ROC AUC, with the params and fingerprints that differ.

# %%
best = collect([], run_config.tracking.experiment, top=4, metric="test_roc_auc")
runs = collect([outcome.run_id], None, top=1, metric="test_roc_auc")
runs += [r for r in best if r.run_id != outcome.run_id]
result = comparison.compare(runs)
labels = {r.run_id: r.run_id[:8] for r in runs}
labels[outcome.run_id] += " (this run)"
display(pd.DataFrame(result.metrics).T.rename(columns=labels).round(4))
display(pd.DataFrame(result.params).T.rename(columns=labels))

# %% [markdown]
# Next: `innflow register RUN_ID` with the training run's id (printed above and tagged
# `innflow.train_run_id` on the notebook run), then `innflow gate VERSION`.
