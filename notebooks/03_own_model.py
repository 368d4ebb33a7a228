# %% [markdown]
# # Your own model, written the way MLflow's quickstart teaches
#
# Plain pandas, scikit-learn and MLflow: no innflow import. `innflow notebook run` makes
# it one tracked, reproducible run; `innflow register`, `gate`, `serve`, `score` and
# `monitor` take the model it logs to production (README: "Your notebook to production").
#
# The model is a scikit-learn Pipeline that takes raw booking columns (its encoder inside
# it) and returns probabilities, so the gate can score it beside the champion and the
# service can answer booking records.

# %%
import mlflow
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

# %% tags=["parameters"]
data_path = "data/hotel_bookings.parquet"
max_iter = 80
learning_rate = 0.1

# %%
mlflow.set_experiment("my-cancellation-model")

bookings = pd.read_parquet(data_path)
numeric = ["lead_time", "adults", "children", "adr", "stays_in_week_nights",
           "previous_cancellations", "total_of_special_requests"]  # fmt: skip
categorical = ["hotel", "market_segment", "deposit_type", "customer_type"]
train = bookings[bookings["arrival_date_year"] < 2017]
test = bookings[bookings["arrival_date_year"] == 2017]

# %%
encode = ColumnTransformer(
    [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), categorical)],
    remainder="passthrough",
)
model = Pipeline(
    [
        ("encode", encode),
        ("hgb", HistGradientBoostingClassifier(
            max_iter=max_iter, learning_rate=learning_rate, early_stopping=False, random_state=0
        )),
    ]
)  # fmt: skip

with mlflow.start_run(run_name="hgb-raw-columns"):
    mlflow.log_params({"max_iter": max_iter, "learning_rate": learning_rate})
    model.fit(train[numeric + categorical], train["is_canceled"])
    auc = roc_auc_score(test["is_canceled"], model.predict_proba(test[numeric + categorical])[:, 1])
    mlflow.log_metric("test_roc_auc", auc)
    mlflow.sklearn.log_model(
        model,
        name="model",
        input_example=train[numeric + categorical].head(5),
        pyfunc_predict_fn="predict_proba",  # probabilities, not labels
        serialization_format="cloudpickle",  # skops (the default) refuses tree models
    )

# %%
print(f"2017 ROC AUC {auc:.4f}")
