"""What the import contracts (pyproject's [tool.importlinter], run by `make lint`) cannot
see: which modules a command's start-up actually loads.
"""

from __future__ import annotations

import subprocess
import sys


def test_cli_help_does_not_import_mlflow_or_sklearn() -> None:
    code = (
        "import sys, innflow.cli; "
        "print(sorted(m for m in ('mlflow', 'sklearn', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
