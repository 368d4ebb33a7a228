"""SIGTERM's interrupt: held back inside database calls, raised again when swallowed."""

from __future__ import annotations

import os
import signal
import sys
import time
import types
from collections.abc import Iterator

import pytest

from innflow.cli import termination
from innflow.cli.termination import Terminated


@pytest.fixture
def handler() -> Iterator[None]:
    saved = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGALRM)
    termination.install()
    try:
        yield
    finally:
        termination.settle()
        termination._received.clear()
        signal.signal(signal.SIGTERM, saved[0])
        signal.signal(signal.SIGALRM, saved[1])


def _in_module(name: str, body: str) -> types.FunctionType:
    """A function whose frames belong to module ``name`` (as SQLAlchemy's would)."""
    namespace: dict[str, object] = {"__name__": name, "os": os, "signal": signal, "time": time}
    exec(compile(body, f"<{name}>", "exec"), namespace)
    return namespace["call"]  # type: ignore[return-value]


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_database_call_is_recognised_by_its_callers_frames() -> None:
    call = _in_module("sqlalchemy.engine.fake", "def call(f):\n    return f()\n")
    assert call(lambda: termination.in_database_call(sys._getframe()))
    assert not termination.in_database_call(sys._getframe())


def test_the_interrupt_waits_for_the_database_call_to_return(handler: None) -> None:
    call = _in_module(
        "sqlalchemy.engine.fake",
        "def call():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    end = time.monotonic() + 0.3\n"
        "    while time.monotonic() < end:\n"
        "        pass\n"
        "    return 'returned'\n",
    )
    assert call() == "returned"  # not interrupted inside
    with pytest.raises(Terminated):
        _spin(2.0)
    assert termination.settle()


def test_a_call_that_never_returns_is_interrupted_after_the_deferral(handler: None) -> None:
    call = _in_module(
        "mlflow.store.fake",
        "def call(seconds):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    end = time.monotonic() + seconds\n"
        "    while time.monotonic() < end:\n"
        "        pass\n",
    )
    started = time.monotonic()
    with pytest.raises(Terminated):
        call(termination.MAX_DEFERRAL_SECONDS + 3)
    waited = time.monotonic() - started
    assert termination.MAX_DEFERRAL_SECONDS <= waited < termination.MAX_DEFERRAL_SECONDS + 1


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_swallowed_by_a_finalizer_is_raised_again(handler: None) -> None:
    class Finalized:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)  # raised here: "Exception ignored"

    Finalized()
    with pytest.raises(Terminated):
        _spin(termination.WATCHDOG_SECONDS + 2)


def test_no_second_interrupt_while_the_first_unwinds(handler: None) -> None:
    cleaned_up = False
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        _spin(1.0)
    except Terminated:
        _spin(termination.WATCHDOG_SECONDS + 1)  # the cleanup (marking the run KILLED)
        cleaned_up = True
    assert cleaned_up
    assert termination.settle()
