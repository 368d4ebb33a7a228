"""Why the model says what it says: exact per-feature contributions in log-odds.

LightGBM and XGBoost compute exact tree contributions (TreeSHAP) natively and fast; for the
linear model a contribution is coefficient x encoded value. Random forest and HistGB have
no such fast exact path here: they get permutation importance globally and no per-booking
explanation (``supports`` says which).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from innflow.errors import InnflowError
from innflow.modeling.models import pipeline_kind

SUPPORTED = ("lightgbm", "xgboost", "logreg")


class ExplanationUnavailable(InnflowError):
    """The model kind has no exact, fast per-booking explanation."""


def supports(pipeline: Pipeline) -> bool:
    """Whether ``contributions`` works for this pipeline's model kind."""
    return pipeline_kind(pipeline) in SUPPORTED


def _feature_groups(pipeline: Pipeline) -> tuple[list[str], np.ndarray]:
    """Model feature names and, for each encoded column, the index of its feature."""
    encode = pipeline.named_steps["encode"]
    categorical = list(encode.transformers_[0][2])
    numeric = list(encode.transformers_[1][2])
    names = categorical + numeric
    if pipeline_kind(pipeline) != "logreg":
        return names, np.arange(len(names))
    # One-hot outputs are named "<column>_<level>": map each back to its (longest) column.
    by_length = sorted(categorical, key=len, reverse=True)
    outputs = encode.named_transformers_["categorical"].get_feature_names_out(categorical)
    groups = [
        categorical.index(next(c for c in by_length if o.startswith(c + "_"))) for o in outputs
    ]
    return names, np.concatenate([groups, len(categorical) + np.arange(len(numeric))])


def contributions(pipeline: Pipeline, raw: pd.DataFrame) -> pd.DataFrame:
    """Per booking and model feature, the contribution to the log-odds of cancellation.

    Rows sum (with the ``bias`` column) to the model's raw score.
    """
    kind = pipeline_kind(pipeline)
    if kind not in SUPPORTED:
        raise ExplanationUnavailable(
            f"per-booking explanations need one of {', '.join(SUPPORTED)}; this model is {kind}"
        )
    encoded = np.asarray(pipeline[:-1].transform(raw), dtype="float64")
    model = pipeline.named_steps["model"]
    if kind == "lightgbm":
        values = model.booster_.predict(encoded, pred_contrib=True)
    elif kind == "xgboost":
        import xgboost

        values = model.get_booster().predict(xgboost.DMatrix(encoded), pred_contribs=True)
    else:
        values = np.hstack(
            [encoded * model.coef_[0], np.full((len(encoded), 1), model.intercept_[0])]
        )
    names, groups = _feature_groups(pipeline)
    grouped = np.zeros((len(raw), len(names)))
    np.add.at(grouped.T, groups, values[:, :-1].T)
    frame = pd.DataFrame(grouped, columns=names, index=raw.index)
    frame["bias"] = values[:, -1]
    return frame


def global_importance(pipeline: Pipeline, raw: pd.DataFrame) -> pd.Series:
    """Mean absolute contribution per model feature, largest first."""
    contrib = contributions(pipeline, raw).drop(columns="bias")
    return contrib.abs().mean().sort_values(ascending=False)


def explain_bookings(pipeline: Pipeline, bookings: pd.DataFrame, top: int = 5) -> list[list[dict]]:
    """Per booking, the features that moved its score most, with their values and signs:
    one pass of the model over all rows (a service explains a whole request at once).
    """
    contrib = contributions(pipeline, bookings).drop(columns="bias")
    frame = pipeline.named_steps["features"].transform(bookings)
    engineered = {c: frame[c].to_numpy(dtype=object) for c in frame.columns}
    missing = np.full(len(frame), None, dtype=object)
    names = contrib.columns.to_numpy()
    values = contrib.to_numpy()
    # stable: ties keep the feature order, as a per-row sort of the Series did
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :top]
    explained = []
    for i, row in enumerate(order):
        explained.append([
            {
                "feature": str(names[j]),
                "value": _plain(engineered.get(names[j], missing)[i]),
                "contribution": float(values[i, j]),
                "effect": "raises" if values[i, j] > 0 else "lowers",
            }
            for j in row
        ])  # fmt: skip
    return explained


def explain_booking(pipeline: Pipeline, booking: pd.DataFrame, top: int = 5) -> list[dict]:
    """The features that moved one booking's score most, with their values and signs."""
    if len(booking) != 1:
        raise ExplanationUnavailable(f"explain one booking at a time, got {len(booking)} rows")
    return explain_bookings(pipeline, booking, top)[0]


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return value
