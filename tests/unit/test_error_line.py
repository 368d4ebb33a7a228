"""The error line is a failed command's last word on stderr."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A thread still finishing after the failure (as MLflow's artifact downloads do when the
# listing under them fails) logs and warns once the error line is out.
SCRIPT = textwrap.dedent("""
    import logging, threading, time, warnings
    from innflow.cli.base import _fail
    from innflow.errors import TrackingError

    logging.basicConfig()

    def late():
        time.sleep(0.3)
        logging.getLogger("mlflow.utils.file_utils").warning("Successfully removed /tmp/x")
        warnings.warn("late warning")

    threading.Thread(target=late).start()
    logging.getLogger("mlflow").warning("before the failure")
    _fail(TrackingError("the tracking store cannot be reached"))
""")


def test_nothing_is_logged_after_the_error_line() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "before the failure" in lines[0]  # logging works until the failure
    assert lines[-1] == "error: the tracking store cannot be reached", lines
    assert not any("Successfully removed" in line or "late warning" in line for line in lines)
