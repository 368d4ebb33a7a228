"""innflow: reproducible, tracked hotel-booking cancellation models on MLflow."""

__version__ = "0.1.0"
