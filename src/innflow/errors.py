"""The few deliberate errors innflow raises, each with the exit code the CLI maps it to.

User errors (bad config, bad data, leaky columns, unknown runs) exit 2; a reproduction that
does not match exits 1, a gate refusal 3, a monitoring alert (drift or decay) 4. Anything
else is a bug and keeps its traceback.
"""


class InnflowError(Exception):
    """Base class: an expected failure with a one-line message for the user."""

    exit_code = 2


class ConfigError(InnflowError):
    """The configuration or an override is invalid."""


class DataValidationError(InnflowError):
    """The bookings file is missing, unreadable or breaks the schema."""


class LeakageError(InnflowError):
    """The configuration asks for a column that leaks the label."""


class RunNotFoundError(InnflowError):
    """A run id does not exist in the tracking store."""


class ModelNotServable(InnflowError):
    """A logged model innflow cannot check requests for (no signature, tensor inputs)."""


class TrackingError(InnflowError):
    """The tracking store refused or could not be reached."""


class NotReproducible(InnflowError):
    """A run innflow cannot re-execute: not FINISHED, or not a training or notebook run."""


class ReproductionMismatch(InnflowError):
    """A re-executed run did not give bit-identical results."""

    exit_code = 1


class GateFailed(InnflowError):
    """A candidate model did not pass the promotion gate (a normal outcome)."""

    exit_code = 3


class NotebookFailed(InnflowError):
    """A cell of an executed notebook raised; the run is marked FAILED."""

    exit_code = 1


class DriftDetected(InnflowError):
    """Monitoring found drift or decay past the thresholds: the retraining trigger."""

    exit_code = 4


class IncompatibleModelError(InnflowError):
    """A logged model cannot be scored on booking columns or does not return probabilities."""
