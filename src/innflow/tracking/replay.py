"""A logged model's predictions as evidence for `reproduce`: loaded through MLflow's pyfunc
(what any MLflow client gets), run on its own input example and on given bookings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from innflow.tracking.logged_models import load_pyfunc


@dataclass(frozen=True)
class Replayable:
    """A loaded model, the input example logged with it, and its signature's input names."""

    model: Any
    example: Any | None
    input_names: tuple[str, ...]

    def predict(self, inputs: Any) -> Any:
        """The pyfunc's output for ``inputs``."""
        return self.model.predict(inputs)

    def takes_columns(self, columns: tuple[str, ...] | list[str]) -> bool:
        """Whether every input of the signature is one of ``columns``."""
        return bool(self.input_names) and set(self.input_names) <= set(columns)

    def columns_of(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` cut down to the signature's inputs, in its order."""
        return frame[list(self.input_names)]


def replayable(uri: str) -> Replayable:
    """Load ``uri`` (RunNotFoundError when it cannot be loaded) with its input example."""
    model = load_pyfunc(uri)
    schema = model.metadata.get_input_schema()
    names = tuple(schema.input_names()) if schema is not None and schema.has_input_names() else ()
    return Replayable(model, model.input_example, names)
