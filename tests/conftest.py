from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

SAMPLE = Path(__file__).parent / "data" / "bookings_sample.parquet"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked ``needs_cc`` skips, saying why, on a machine without a C compiler."""
    from innflow.serving.compiled import compiler

    if compiler() is not None:
        return
    skip = pytest.mark.skip(reason="no C compiler (set CC or install gcc): innflow compile")
    for item in items:
        if "needs_cc" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sample_frame() -> pd.DataFrame:
    """8,000 bookings drawn at random from the full data set (all arrival months)."""
    return pd.read_parquet(SAMPLE)


@pytest.fixture
def tiny_frame(sample_frame: pd.DataFrame) -> pd.DataFrame:
    """A few dozen rows spanning all three split periods."""
    return sample_frame.iloc[::200].reset_index(drop=True).copy()


@pytest.fixture(scope="session", autouse=True)
def _no_compiled_predictor_by_default(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Models serve through LightGBM's exact predictor and JSON rows are read in Python
    unless a test turns compiling on (a compile is ~10 s of gcc), and compiled libraries
    never land in ~/.cache. Session-wide, so that package- and module-scoped fixtures
    (a model loaded once for many tests) are under it too.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INNFLOW_COMPILE", "0")
        patch.setenv("INNFLOW_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        yield
