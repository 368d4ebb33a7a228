"""The `innflow` command: parse, call a workflow, report. No logic lives here.

One Typer app (cli/base.py); each module adds its command group to it, in the order the
help lists them.
"""

from innflow.cli import data_commands, training  # noqa: F401, I001  (import order = help order)
from innflow.cli import registry, serving, webhooks  # noqa: F401
from innflow.cli import notebook  # noqa: F401
from innflow.cli import dashboard  # noqa: F401
from innflow.cli import server  # noqa: F401
from innflow.cli import monitoring  # noqa: F401
from innflow.cli import runs  # noqa: F401
from innflow.cli.base import app, main

__all__ = ["app", "main"]
