# %% [markdown]
# # Cancellations: random forest with autologging
#
# One-hot features with pandas, a random split, `mlflow.sklearn.autolog()` for the
# training metrics, and the test ROC AUC logged by hand.

# %%
import mlflow
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

# %% tags=["parameters"]
data_path = "data/hotel_bookings.parquet"
seed = 42
n_estimators = 40

# %%
df = pd.read_parquet(data_path)
cols = [
    "lead_time",
    "adults",
    "children",
    "stays_in_weekend_nights",
    "stays_in_week_nights",
    "adr",
    "previous_cancellations",
    "booking_changes",
    "total_of_special_requests",
    "hotel",
    "market_segment",
    "deposit_type",
    "customer_type",
]
X = pd.get_dummies(
    df[cols], columns=["hotel", "market_segment", "deposit_type", "customer_type"], dtype=float
).fillna(0)
y = df["is_canceled"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed)
print(X_train.shape, X_test.shape)

# %%
mlflow.sklearn.autolog()

rf = RandomForestClassifier(n_estimators=n_estimators, max_depth=10, random_state=seed)
rf.fit(X_train, y_train)

# %%
auc = roc_auc_score(y_test, rf.predict_proba(X_test)[:, 1])
mlflow.log_metric("test_roc_auc", auc)
print(f"test ROC AUC = {auc:.4f}")
