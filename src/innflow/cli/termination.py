"""SIGTERM, as a scheduler (Airflow, Kubernetes) stops a task: unwound like Ctrl-C, so
every open MLflow run ends KILLED instead of staying RUNNING forever.

An exception raised from a signal handler lands wherever the main thread is, and two
places lose it:
- inside a database call, it leaves the call's cursor open; on SQLite that cursor's lock
  then makes marking the run KILLED wait on this very process until "database is locked"
  (exit 2, run left RUNNING). The interrupt is held back until the call returns.
- inside a weakref callback or ``__del__``, Python prints "Exception ignored" and goes on
  as if no signal came. A watchdog raises it again until it is seen unwinding.
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType

# Modules whose frames on the stack mean "a database call is in progress".
DATABASE_MODULES = ("sqlalchemy", "sqlite3", "alembic", "mlflow.store")
# A call that does not return within this long (a hung server) is interrupted anyway.
MAX_DEFERRAL_SECONDS = 5.0
RETRY_SECONDS = 0.02
WATCHDOG_SECONDS = 1.0


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


_received: list[float] = []


def install() -> None:
    """Handle SIGTERM in the main thread from now on."""
    signal.signal(signal.SIGTERM, _on_signal)


def settle() -> bool:
    """Stop the watchdog; whether SIGTERM arrived. Called once the command has ended."""
    if _received:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return bool(_received)


def in_database_call(frame: FrameType | None) -> bool:
    """Whether ``frame`` or one of its callers runs code of DATABASE_MODULES."""
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(DATABASE_MODULES):
            return True
        frame = frame.f_back
    return False


def unwinding() -> bool:
    """Whether the exception being handled is, or was caused by, a Terminated."""
    error: BaseException | None = sys.exc_info()[1]
    while error is not None:
        if isinstance(error, Terminated):
            return True
        error = error.__context__
    return False


def _again_in(seconds: float) -> None:
    # SIGALRM runs the handler again at wherever the main thread is by then.
    signal.signal(signal.SIGALRM, _on_signal)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if not _received:
        _received.append(time.monotonic())
    if unwinding():
        _again_in(WATCHDOG_SECONDS)
        return
    if in_database_call(frame) and time.monotonic() - _received[0] < MAX_DEFERRAL_SECONDS:
        _again_in(RETRY_SECONDS)
        return
    _again_in(WATCHDOG_SECONDS)
    raise Terminated
