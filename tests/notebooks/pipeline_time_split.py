# %% [markdown]
# # Cancellation model on raw booking columns
#
# A scikit-learn Pipeline (ColumnTransformer, OneHotEncoder, HistGradientBoosting) that
# takes the raw columns, trained on bookings that arrive before 2017 and tested on 2017.
# The logged model returns probabilities (`predict_proba`).

# %%
import mlflow
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

# %% tags=["parameters"]
bookings_file = "data/hotel_bookings.parquet"
max_iter = 60
learning_rate = 0.1

# %%
bookings = pd.read_parquet(bookings_file)
numeric = [
    "lead_time",
    "stays_in_weekend_nights",
    "stays_in_week_nights",
    "adults",
    "children",
    "adr",
    "previous_cancellations",
    "booking_changes",
    "total_of_special_requests",
    "required_car_parking_spaces",
]
categorical = ["hotel", "meal", "market_segment", "deposit_type", "customer_type"]
train = bookings[bookings["arrival_date_year"] < 2017]
test = bookings[bookings["arrival_date_year"] == 2017]
X_train, y_train = train[numeric + categorical], train["is_canceled"]
X_test, y_test = test[numeric + categorical], test["is_canceled"]

# %%
pipe = Pipeline(
    [
        (
            "prep",
            ColumnTransformer(
                [
                    ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=20), categorical),
                ],
                remainder="passthrough",
            ),
        ),
        (
            "hgb",
            HistGradientBoostingClassifier(
                max_iter=max_iter, learning_rate=learning_rate, early_stopping=False, random_state=0
            ),
        ),
    ]
)

run = mlflow.start_run(run_name="hgb-time-split")
mlflow.log_params(
    {
        "max_iter": max_iter,
        "learning_rate": learning_rate,
        "train_rows": len(train),
        "test_rows": len(test),
    }
)
pipe.fit(X_train, y_train)
proba = pipe.predict_proba(X_test)[:, 1]
mlflow.log_metrics(
    {
        "test_roc_auc": roc_auc_score(y_test, proba),
        "test_pr_auc": average_precision_score(y_test, proba),
    }
)
mlflow.sklearn.log_model(
    pipe,
    name="cancellation_model",
    input_example=X_train.head(5),
    pyfunc_predict_fn="predict_proba",
    serialization_format="cloudpickle",
)
mlflow.end_run()

# %%
print(f"2017 ROC AUC {roc_auc_score(y_test, proba):.4f} on {len(test)} bookings")
