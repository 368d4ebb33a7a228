"""What keeps a running service from full health while it still answers: a start-up
snapshot the registry cannot confirm, a reload that failed, a prediction log that cannot
write. Each is reported on stderr (rate-limited), on ``/health`` (``"status":
"degraded"`` with the reasons) and in the metrics, until it is resolved.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from innflow.serving.metrics import ServiceMetrics

WINDOW_SECONDS = 60.0  # the same problem is said at most once this often
_REMEMBERED = 256  # distinct problems remembered for rate-limiting


class Degradation:
    """The service's current problems by kind (``confirmation``, ``reload``,
    ``prediction_log``), each with its reason; thread-safe (the reload poller, the log
    writer and the routes report here).
    """

    def __init__(
        self,
        metrics: ServiceMetrics,
        say: Callable[[str], None],
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics, self._say, self._window, self._clock = metrics, say, window, clock
        self._lock = threading.Lock()
        self._current: dict[str, str] = {}
        self._said: dict[tuple[str, str], float] = {}  # (kind, reason) -> when last said
        self._suppressed: dict[tuple[str, str], int] = {}

    def report(self, kind: str, reason: str, asked: bool = False) -> None:
        """Mark ``kind`` degraded (``reason``: one self-explanatory clause); say so on
        stderr unless the same problem was said within the window (then counted, and the
        count said the next time). ``asked``: an operator's own request (an admin
        reload), whose outcome is always said.
        """
        with self._lock:
            self._current[kind] = reason
            self._metrics.degraded.labels(kind).set(1)
            self._metrics.degradations.labels(kind).inc()
            key, now = (kind, reason), self._clock()
            last = self._said.get(key)
            if last is not None and now - last < self._window and not asked:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            quiet = self._suppressed.pop(key, 0)
            if len(self._said) >= _REMEMBERED:
                self._forget(now)
            self._said[key] = now
        more = ""
        if quiet and last is not None:
            more = f" ({quiet} more like it in the last {now - last:.0f} s not shown)"
        self._say(f"innflow serve: {reason}{more}")

    def clear(self, kind: str, note: str) -> None:
        """``kind`` is resolved; say so once (``note``: what holds now)."""
        with self._lock:
            if self._current.pop(kind, None) is None:
                return
            self._metrics.degraded.labels(kind).set(0)
        self._say(f"innflow serve: {kind} recovered: {note}")

    def reasons(self) -> dict[str, str]:
        """The current problems (kind -> reason); empty when healthy."""
        with self._lock:
            return dict(self._current)

    def _forget(self, now: float) -> None:
        for key in [k for k, at in self._said.items() if now - at >= self._window]:
            self._said.pop(key)
            self._suppressed.pop(key, None)
        if len(self._said) >= _REMEMBERED:  # all recent: forget the oldest
            oldest = min(self._said, key=self._said.__getitem__)
            self._said.pop(oldest)
            self._suppressed.pop(oldest, None)
