from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from innflow import data
from innflow.config import FeaturesConfig
from innflow.modeling.features import ENGINEERED, BookingFeatures, model_columns


def _booking(**overrides) -> pd.DataFrame:
    row = {
        "hotel": "City Hotel", "lead_time": 10, "arrival_date_year": 2017,
        "arrival_date_month": "January", "arrival_date_week_number": 1,
        "arrival_date_day_of_month": 1, "stays_in_weekend_nights": 2, "stays_in_week_nights": 3,
        "adults": 2, "children": np.nan, "babies": 0, "meal": "BB", "market_segment": "Online TA",
        "distribution_channel": "TA/TO", "is_repeated_guest": 0, "previous_cancellations": 1,
        "previous_bookings_not_canceled": 3, "reserved_room_type": "A",
        "deposit_type": "No Deposit",
        "agent": 9.0, "company": np.nan, "customer_type": "Transient", "adr": 100.0,
        "required_car_parking_spaces": 0, "total_of_special_requests": 1,
    }  # fmt: skip
    row.update(overrides)
    return pd.DataFrame([row])


def test_engineered_values_for_one_booking() -> None:
    out = BookingFeatures().fit_transform(_booking())
    first = out.iloc[0]
    assert first["total_nights"] == 5
    assert first["weekend_share"] == pytest.approx(0.4)
    assert first["guests"] == 2  # missing children count as none
    assert first["adr_per_person"] == 50
    assert first["revenue"] == 500
    assert first["arrival_weekday"] == 6  # 2017-01-01 was a Sunday
    assert first["booking_weekday"] == 3  # booked 10 days before: Thursday 2016-12-22
    assert first["booking_month"] == 12
    assert first["previous_cancel_share"] == pytest.approx(0.25)
    assert first["has_agent"] == 1 and first["has_company"] == 0
    assert first["agent"] == "9" and first["company"] == "none"


def test_zero_night_stay_has_no_division_by_zero() -> None:
    out = BookingFeatures().fit_transform(
        _booking(stays_in_weekend_nights=0, stays_in_week_nights=0, adults=0)
    )
    assert out.loc[0, "weekend_share"] == 0
    assert np.isfinite(out.loc[0, "adr_per_person"])


def test_rows_are_transformed_independently(sample_frame: pd.DataFrame) -> None:
    columns = data.input_columns(FeaturesConfig())
    frame = data.validate(sample_frame)[columns].head(50)
    transformer = BookingFeatures().fit(frame)
    whole = transformer.transform(frame)
    one_by_one = pd.concat([transformer.transform(frame.iloc[[i]]) for i in range(len(frame))])
    pd.testing.assert_frame_equal(whole, one_by_one)


def test_model_columns_drop_excluded_and_put_categoricals_first() -> None:
    columns = data.input_columns(FeaturesConfig())
    categorical, numeric = model_columns(BookingFeatures(), columns, ["arrival_date_year"])
    assert "arrival_date_year" not in categorical + numeric
    assert "agent" in categorical and "lead_time" in numeric
    assert list(ENGINEERED) == numeric[: len(ENGINEERED)]
    assert "country" not in categorical  # known later, not allowed by default


def test_another_contracts_columns_are_taken_by_their_type() -> None:
    from innflow.contract import from_mapping
    from innflow.modeling.features import ContractFeatures, features_step

    shop = from_mapping({"columns": {
        "store": {"type": "text"}, "units": {"type": "integer"},
        "sold_on": {"type": "date"}, "price": {"type": "number"}}})  # fmt: skip
    step = features_step(shop, ["store", "units", "sold_on"])
    assert isinstance(step, ContractFeatures) and step.text == ("store",)
    frame = pd.DataFrame({"store": ["n", None], "units": [3, 4], "sold_on": ["2021-03-01", None]})
    out = step.fit(frame).transform(frame)
    assert list(out.columns) == list(step.get_feature_names_out())
    assert out["store"].tolist() == ["n", "none"]
    assert out["sold_on_weekday"].iloc[0] == 0.0 and np.isnan(out["sold_on_year"].iloc[1])
    categorical, numeric = model_columns(step, ["store", "units", "sold_on"], [])
    assert categorical == ["store"] and numeric[:2] == ["units", "sold_on_year"]
    # the bookings without adr (the rate model's inputs) cannot have the engineered features
    without_adr = [c for c in data.input_columns(FeaturesConfig()) if c != "adr"]
    assert isinstance(features_step(data.CONTRACT, without_adr), ContractFeatures)
    assert isinstance(features_step(data.CONTRACT, data.input_columns(FeaturesConfig())),
                      BookingFeatures)  # fmt: skip
