from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

SAMPLE = Path(__file__).parent / "data" / "bookings_sample.parquet"


@pytest.fixture(scope="session")
def sample_frame() -> pd.DataFrame:
    """8,000 bookings drawn at random from the full data set (all arrival months)."""
    return pd.read_parquet(SAMPLE)


@pytest.fixture
def tiny_frame(sample_frame: pd.DataFrame) -> pd.DataFrame:
    """A few dozen rows spanning all three split periods."""
    return sample_frame.iloc[::200].reset_index(drop=True).copy()
