# %% [markdown]
# # LightGBM, native API
#
# `lgb.train` on a time split with early stopping on a validation month range,
# autologged by MLflow.

# %%
import lightgbm as lgb
import mlflow
import pandas as pd
from sklearn.metrics import roc_auc_score

# %% tags=["parameters"]
path = "data/hotel_bookings.parquet"
num_boost_round = 60
seed = 1

# %%
data = pd.read_parquet(path)
features = [
    "lead_time",
    "adr",
    "adults",
    "children",
    "stays_in_week_nights",
    "stays_in_weekend_nights",
    "total_of_special_requests",
    "booking_changes",
    "previous_cancellations",
    "hotel",
    "deposit_type",
    "market_segment",
]
for col in ["hotel", "deposit_type", "market_segment"]:
    data[col] = data[col].astype("category").cat.codes
train = data[data.arrival_date_year <= 2016]
test = data[data.arrival_date_year == 2017]

# %%
mlflow.lightgbm.autolog(log_input_examples=True)
params = {
    "objective": "binary",
    "metric": ["auc", "binary_logloss"],
    "learning_rate": 0.1,
    "num_leaves": 31,
    "seed": seed,
    "deterministic": True,
    "num_threads": 1,
    "verbosity": -1,
}
with mlflow.start_run(run_name="lgb-native"):
    dtrain = lgb.Dataset(train[features], label=train.is_canceled)
    dtest = lgb.Dataset(test[features], label=test.is_canceled, reference=dtrain)
    booster = lgb.train(
        params, dtrain, num_boost_round=num_boost_round, valid_sets=[dtest], valid_names=["test"]
    )
    auc = roc_auc_score(test.is_canceled, booster.predict(test[features]))
    mlflow.log_metric("test_auc_check", auc)

# %%
print("AUC:", round(auc, 4))
