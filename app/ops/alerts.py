"""alert:error_spike (seed 001 §5): a windowed count of server errors in this web process.

Every response with a 5xx status other than 503 counts once (an unhandled exception is answered 500 by
app/web/errors.py, so it is counted there, not twice). 503 is left out on purpose: maintenance mode answers
it by design, and a database outage already has its own signals (`database_unavailable`, /health/ready).
When ERROR_SPIKE_THRESHOLD errors fall within ERROR_SPIKE_WINDOW_SECONDS, one `alert:error_spike` line is
logged (and so sent to Sentry when it is on); the next can come only a whole window later, so a long outage
pages once per window instead of once per request.

The count is per process: each web pod speaks for itself. The Prometheus rule CoursewrightErrorSpike sums
the pods' `coursewright_requests_total`, for a spike spread thinly over many pods.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import structlog

log = structlog.get_logger("coursewright.alerts")


class ErrorSpikeCounter:
    def __init__(self, threshold: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.window_seconds = window_seconds
        self._clock = clock
        self._errors: deque[float] = deque()
        self._alerted_at: float | None = None

    def record_error(self) -> int | None:
        """Count one error; returns the count in the window when this error raises the alert, else None."""
        now = self._clock()
        self._errors.append(now)
        while self._errors and self._errors[0] <= now - self.window_seconds:
            self._errors.popleft()
        # Only the last `threshold` timestamps matter; the deque never grows past that, whatever the error rate.
        while len(self._errors) > self.threshold:
            self._errors.popleft()
        if len(self._errors) < self.threshold:
            return None
        if self._alerted_at is not None and now - self._alerted_at < self.window_seconds:
            return None
        self._alerted_at = now
        return len(self._errors)


_counter: ErrorSpikeCounter | None = None


def _process_counter() -> ErrorSpikeCounter:
    global _counter
    if _counter is None:
        from app.settings import get_settings

        settings = get_settings()
        _counter = ErrorSpikeCounter(settings.error_spike_threshold, settings.error_spike_window_seconds)
    return _counter


def is_counted(status: int) -> bool:
    return status >= 500 and status != 503


def record_response(status: int, path: str) -> None:
    """Called for every response (app/web/requests.stamp_response)."""
    if not is_counted(status):
        return
    counter = _process_counter()
    count = counter.record_error()
    if count is None:
        return
    # At error level, so Sentry (when on) receives it as an event titled alert:error_spike.
    log.error("alert:error_spike", errors=count, window_seconds=counter.window_seconds,
              threshold=counter.threshold, last_path=path)
