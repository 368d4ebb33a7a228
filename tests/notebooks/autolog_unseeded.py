# %% [markdown]
# # Quick random forest (no seeds)
#
# The quick version: a random split and a forest, both without a seed.

# %%
import mlflow
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

# %% tags=["parameters"]
data_path = "data/hotel_bookings.parquet"

# %%
df = pd.read_parquet(data_path)
X = df[
    [
        "lead_time",
        "adr",
        "adults",
        "total_of_special_requests",
        "booking_changes",
        "previous_cancellations",
    ]
]
y = df["is_canceled"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25)

# %%
mlflow.sklearn.autolog()
rf = RandomForestClassifier(n_estimators=20, max_depth=8).fit(X_train, y_train)
mlflow.log_metric("test_roc_auc", roc_auc_score(y_test, rf.predict_proba(X_test)[:, 1]))
