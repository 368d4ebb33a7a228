"""Models logged the way data scientists log them with plain MLflow (no innflow), for the
tests of `register`, `gate`, `serve`, `score` and `monitor` on models innflow did not
train. Each function logs into the current tracking URI and returns the run id.

Written from MLflow's tutorials, not from innflow's code: raw-column sklearn Pipelines,
pandas one-hot frames, a label-returning pyfunc, a native LightGBM booster, another data
set (scikit-learn's wine) and a run that logs two models.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
import numpy as np
import pandas as pd

TARGET = "is_canceled"
NUMERIC = ["lead_time", "adults", "children", "stays_in_week_nights", "adr",
           "total_of_special_requests", "previous_cancellations"]  # fmt: skip
CATEGORICAL = ["hotel", "market_segment", "deposit_type", "customer_type"]
REQUIREMENTS = ["scikit-learn", "pandas", "numpy"]  # explicit: pip inference is slow
# MLflow 3's default (skops) refuses tree models unless their types are listed as trusted;
# the fix users find first is cloudpickle.
PICKLED = {"serialization_format": "cloudpickle"}


@contextmanager
def _logging() -> Iterator[None]:
    """MLflow's warnings while logging (pickle formats, pip version) are the user's noise,
    not the behaviour under test (pytest turns warnings into errors).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _time_split(bookings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    months = pd.to_datetime(
        bookings["arrival_date_year"].astype(str) + "-" + bookings["arrival_date_month"] + "-01",
        format="%Y-%B-%d",
    )
    cut = months < pd.Timestamp("2017-01-01")
    return bookings[cut], bookings[~cut]


def _raw_pipeline(seed: int = 0):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    features = ColumnTransformer(
        [
            ("num", SimpleImputer(strategy="median"), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ]
    )
    model = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=seed, n_jobs=1)
    return Pipeline([("features", features), ("model", model)])


def raw_pipeline(bookings: pd.DataFrame, proba: bool = True, run_name: str = "rf-raw") -> str:
    """A raw-column sklearn Pipeline with a time split; probabilities when ``proba``,
    otherwise MLflow's default pyfunc (labels).
    """
    train, test = _time_split(bookings)
    columns = NUMERIC + CATEGORICAL
    pipeline = _raw_pipeline().fit(train[columns], train[TARGET])
    from sklearn.metrics import roc_auc_score

    with _logging(), mlflow.start_run(run_name=run_name) as run:
        auc = roc_auc_score(test[TARGET], pipeline.predict_proba(test[columns])[:, 1])
        mlflow.log_metric("test_roc_auc", auc)
        extra = {"pyfunc_predict_fn": "predict_proba"} if proba else {}
        mlflow.sklearn.log_model(
            pipeline, name="model", input_example=train[columns].head(5),
            pip_requirements=REQUIREMENTS, **PICKLED, **extra,
        )  # fmt: skip
    return run.info.run_id


def onehot_model(bookings: pd.DataFrame) -> str:
    """pandas one-hot features made outside the model, a random split (the classic
    notebook): the logged model expects the dummy columns, not booking columns.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    features = pd.get_dummies(bookings[["lead_time", "adults", "hotel", "deposit_type"]],
                              dtype=float).fillna(0)  # fmt: skip
    x_train, x_test, y_train, y_test = train_test_split(
        features, bookings[TARGET], test_size=0.25, random_state=42
    )
    model = LogisticRegression(max_iter=500).fit(x_train, y_train)
    with _logging(), mlflow.start_run(run_name="onehot-logreg") as run:
        mlflow.log_metric("accuracy", float(model.score(x_test, y_test)))
        mlflow.sklearn.log_model(
            model, name="model", input_example=x_train.head(3), pip_requirements=REQUIREMENTS,
            pyfunc_predict_fn="predict_proba",
        )  # fmt: skip
    return run.info.run_id


def lightgbm_booster(bookings: pd.DataFrame) -> str:
    """LightGBM's native API on numeric booking columns (its pyfunc returns p(cancel))."""
    import lightgbm as lgb

    train, _ = _time_split(bookings)
    numeric = [c for c in NUMERIC if c != "children"] + ["children"]
    params = {"objective": "binary", "num_leaves": 15, "learning_rate": 0.1, "seed": 7,
              "deterministic": True, "num_threads": 1, "verbose": -1}  # fmt: skip
    booster = lgb.train(params, lgb.Dataset(train[numeric], train[TARGET]), num_boost_round=30)
    with _logging(), mlflow.start_run(run_name="lgb-native") as run:
        mlflow.log_params(params)
        mlflow.lightgbm.log_model(
            booster, name="booster", input_example=train[numeric].head(5),
            pip_requirements=["lightgbm", "pandas", "numpy"],
        )  # fmt: skip
    return run.info.run_id


def wine_model() -> str:
    """Another data set and task (scikit-learn's wine, three classes)."""
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier

    wine = load_wine(as_frame=True)
    model = RandomForestClassifier(n_estimators=20, random_state=0, n_jobs=1)
    model.fit(wine.data, wine.target)
    with _logging(), mlflow.start_run(run_name="wine-rf") as run:
        mlflow.log_metric("train_accuracy", float(model.score(wine.data, wine.target)))
        mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=wine.data.head(3),
            pip_requirements=REQUIREMENTS,
            **PICKLED,
        )
    return run.info.run_id


def two_models(bookings: pd.DataFrame) -> str:
    """One run that logs two candidate models (the user must pick one to register)."""
    train, _ = _time_split(bookings)
    columns = NUMERIC + CATEGORICAL
    with _logging(), mlflow.start_run(run_name="two-candidates") as run:
        for name, seed in (("candidate_a", 1), ("candidate_b", 2)):
            pipeline = _raw_pipeline(seed).fit(train[columns], train[TARGET])
            mlflow.sklearn.log_model(
                pipeline, name=name, input_example=train[columns].head(5),
                pip_requirements=REQUIREMENTS, pyfunc_predict_fn="predict_proba", **PICKLED,
            )  # fmt: skip
    return run.info.run_id


def no_model() -> str:
    """A run that logged metrics only."""
    with _logging(), mlflow.start_run(run_name="metrics-only") as run:
        mlflow.log_metric("rows", float(np.int64(3)))
    return run.info.run_id


def integer_counts(bookings: pd.DataFrame) -> str:
    """The raw-column Pipeline fitted on a frame where ``children`` was filled and made an
    integer (a common notebook cleaning step): its signature says long where the bookings
    hold a float column.
    """
    train, _ = _time_split(bookings)
    columns = NUMERIC + CATEGORICAL
    cleaned = train[columns].assign(children=train["children"].fillna(0).astype("int64"))
    pipeline = _raw_pipeline(3).fit(cleaned, train[TARGET])
    with _logging(), mlflow.start_run(run_name="rf-int-children") as run:
        mlflow.sklearn.log_model(
            pipeline, name="model", input_example=cleaned.head(5),
            pip_requirements=REQUIREMENTS, pyfunc_predict_fn="predict_proba", **PICKLED,
        )  # fmt: skip
    return run.info.run_id


def unsigned_pipeline(bookings: pd.DataFrame) -> str:
    """The raw-column Pipeline logged without an input example: MLflow records no
    signature, so nothing says which columns it takes.
    """
    train, _ = _time_split(bookings)
    columns = NUMERIC + CATEGORICAL
    pipeline = _raw_pipeline(4).fit(train[columns], train[TARGET])
    with _logging(), mlflow.start_run(run_name="rf-unsigned") as run:
        mlflow.sklearn.log_model(
            pipeline, name="model", pip_requirements=REQUIREMENTS,
            pyfunc_predict_fn="predict_proba", **PICKLED,
        )  # fmt: skip
    return run.info.run_id
