from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from innflow.errors import IncompatibleModelError
from innflow.modeling import model_inputs


def test_booking_columns_and_names_derived_from_them() -> None:
    assert model_inputs.booking_source("lead_time") == "lead_time"
    assert model_inputs.booking_source("hotel_City Hotel") == "hotel"
    assert model_inputs.booking_source("cat__deposit_type_No Deposit") == "deposit_type"
    assert model_inputs.booking_source("arrival_date_week_number_53") == "arrival_date_week_number"
    assert model_inputs.booking_source("alcohol") is None
    assert model_inputs.booking_source("is_canceled") is None


def test_the_task_is_decided_by_the_majority_of_inputs() -> None:
    raw = [("lead_time", "long"), ("hotel", "string")]
    onehot = [("lead_time", "long"), ("hotel_City Hotel", "double"), ("total_nights", "long")]
    wine = [("alcohol", "double"), ("malic_acid", "double"), ("lead_time", "long")]
    assert model_inputs.task_of(raw) == "cancellation"
    assert model_inputs.task_of(onehot) == "cancellation"
    assert model_inputs.task_of(wine) == "other"
    assert model_inputs.task_of(None) == "unknown"


def test_the_frame_is_cast_to_the_signature_or_refused_naming_the_column() -> None:
    bookings = pd.DataFrame(
        {"lead_time": [3.0, 10.0], "children": [1.0, np.nan], "hotel": ["City Hotel", None]}
    )
    frame = model_inputs.model_frame(
        bookings, [("lead_time", "long"), ("hotel", "string"), ("children", "double")], "m"
    )
    assert list(frame.columns) == ["lead_time", "hotel", "children"]
    assert frame["lead_time"].dtype == "int64" and frame["children"].dtype == "float64"
    with pytest.raises(IncompatibleModelError, match=r"'children'.*long.*1 missing values"):
        model_inputs.model_frame(bookings, [("children", "long")], "m")
    with pytest.raises(IncompatibleModelError, match=r"'hotel'.*double.*text"):
        model_inputs.model_frame(bookings, [("hotel", "double")], "m")
    with pytest.raises(IncompatibleModelError, match=r"'hotel_City Hotel'.*Pipeline"):
        model_inputs.model_frame(bookings, [("hotel_City Hotel", "double")], "m")
    with pytest.raises(IncompatibleModelError, match="outcome itself"):
        model_inputs.model_frame(bookings, [("reservation_status", "string")], "m")


def test_probabilities_in_any_common_shape_and_labels_refused() -> None:
    two = np.array([[0.8, 0.2], [0.3, 0.7]])
    np.testing.assert_allclose(model_inputs.probabilities(two, "m"), [0.2, 0.7])
    np.testing.assert_allclose(model_inputs.probabilities(np.array([0.2, 0.7]), "m"), [0.2, 0.7])
    one_column = pd.DataFrame({"p": [0.2, 0.7]})
    np.testing.assert_allclose(model_inputs.probabilities(one_column, "m"), [0.2, 0.7])
    for labels in (np.array([0, 1]), np.array([True, False]), np.array([0.0, 1.0]),
                   np.array(["yes", "no"])):  # fmt: skip
        with pytest.raises(IncompatibleModelError, match='pyfunc_predict_fn="predict_proba"'):
            model_inputs.probabilities(labels, "m")
    with pytest.raises(IncompatibleModelError, match="3 columns"):
        model_inputs.probabilities(np.full((2, 3), 1 / 3), "m")
    with pytest.raises(IncompatibleModelError, match="outside"):
        model_inputs.probabilities(np.array([-2.0, 3.5]), "m")
