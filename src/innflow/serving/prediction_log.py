"""The prediction log: every scored booking, appended by a background writer to rotated
parquet files, for monitoring. It never slows or fails a request: appending is a
non-blocking put on a bounded queue, and anything that cannot be written is counted as
dropped and reported (``on_problem``: the service marks itself degraded and says why on
stderr) instead of raised. A directory that cannot be written is refused at start
(``check_writable``).
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd


class PredictionLog:
    """Background writer of scored bookings to ``directory/predictions-*.parquet``."""

    def __init__(
        self,
        directory: Path,
        on_drop: Callable[[int], None],
        on_problem: Callable[[str], None] | None = None,
        on_written: Callable[[], None] | None = None,
        rotate_rows: int = 50_000,
        flush_seconds: float = 5.0,
        queue_size: int = 10_000,
    ) -> None:
        self.directory = Path(directory)
        self.on_drop = on_drop
        self.on_problem = on_problem or (lambda reason: None)
        self.on_written = on_written or (lambda: None)
        self.rotate_rows = rotate_rows
        self.flush_seconds = flush_seconds
        self._queue: queue.Queue[pd.DataFrame | None] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(
            target=self._run, name="innflow-prediction-log", daemon=True
        )
        self._sequence = 0

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def append(self, rows: pd.DataFrame) -> None:
        """Queue scored rows; when the queue is full they are dropped and counted."""
        try:
            self._queue.put_nowait(rows)
        except queue.Full:
            self.on_drop(len(rows))
            self.on_problem("prediction log: the writer cannot keep up, scored bookings dropped")

    def stop(self, timeout: float = 10.0) -> None:
        """Flush what is queued and stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        pending: list[pd.DataFrame] = []
        count, last = 0, time.monotonic()
        while True:
            done = False
            try:
                item = self._queue.get(timeout=self.flush_seconds)
            except queue.Empty:  # a timer tick: flush what is pending
                item = pd.DataFrame()
            if item is None:
                done = True
            elif not item.empty:
                pending.append(item)
                count += len(item)
            due = time.monotonic() - last >= self.flush_seconds
            if pending and (done or due or count >= self.rotate_rows):
                self._write(pending, count)
                pending, count, last = [], 0, time.monotonic()
            if done:
                return

    def _write(self, frames: list[pd.DataFrame], count: int) -> None:
        self._sequence += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # the pid keeps the files of several worker processes apart
            name = f"predictions-{stamp}-{os.getpid()}-{self._sequence:06d}.parquet"
            target = self.directory / name
            pd.concat(frames, ignore_index=True).to_parquet(target, index=False)
        except Exception as e:  # a full or broken sink must never reach a request: say it
            self.on_drop(count)
            self.on_problem(
                f"prediction log: cannot write to {self.directory} ({type(e).__name__}: {e}); "
                "scored bookings dropped"
            )
            return
        self.on_written()


def check_writable(directory: Path) -> None:
    """Create ``directory`` if needed and write and remove a file there; the OSError
    says why not (a service refuses to start rather than drop every record).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".innflow-check-") as probe:
        probe.write(b"ok")
        probe.flush()
