# %% [markdown]
# # Wine classifier, following the MLflow quickstart
#
# Train a logistic regression on scikit-learn's wine data, log its parameters, metrics
# and the model with a signature and an input example.

# %%
import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# %% tags=["parameters"]
C = 0.5
max_iter = 200
random_state = 8888

# %%
X, y = load_wine(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, random_state=random_state, stratify=y
)

# %%
mlflow.set_experiment("MLflow Quickstart")

params = {"C": C, "max_iter": max_iter, "random_state": random_state}
with mlflow.start_run(run_name="wine-logreg"):
    mlflow.log_params(params)
    model = make_pipeline(StandardScaler(), LogisticRegression(**params))
    model.fit(X_train, y_train)
    y_pred = model.predict(X_test)
    accuracy = accuracy_score(y_test, y_pred)
    mlflow.log_metric("accuracy", accuracy)
    mlflow.log_metric("f1_macro", f1_score(y_test, y_pred, average="macro"))
    mlflow.set_tag("Training Info", "Basic LR model for wine data")
    signature = infer_signature(X_train, model.predict(X_train))
    model_info = mlflow.sklearn.log_model(
        sk_model=model,
        name="wine_model",
        signature=signature,
        input_example=X_train.head(5),
    )

# %%
print(f"accuracy on the test set: {accuracy:.4f}")
print(f"model: {model_info.model_uri}")
