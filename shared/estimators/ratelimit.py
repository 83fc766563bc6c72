"""A requests-per-minute limit shared by every thread of a process.

Requests get evenly spaced start times (a virtual-scheduling token bucket): at 60
RPM one request may start per second. `burst` requests may start back to back
after a quiet period (default 1, i.e. no burst), so over any 60-second window at
most `rpm + burst - 1` requests start. A caller reserves its slot under a lock and
sleeps outside it, so waiting callers are served in arrival order.

One process talks to the LLM through one limiter per RPM value:
`shared_rate_limiter(rpm)` returns it. Several processes (function instances)
each have their own; the queue's dispatch rate bounds the total.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter", "shared_rate_limiter"]


class RateLimiter:
    """Thread-safe limiter: `acquire()` blocks until the caller may send a request."""

    def __init__(
        self,
        rpm: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rpm <= 0:
            raise ValueError("rpm must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rpm = rpm
        self.burst = burst
        self.interval = 60.0 / rpm
        self._tolerance = (burst - 1) * self.interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot: float | None = None  # theoretical start of the next request

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for a slot. With `timeout`, give up (reserving nothing) if the wait would be longer."""
        with self._lock:
            now = self._clock()
            next_slot = now if self._next_slot is None else max(self._next_slot, now)
            start = max(now, next_slot - self._tolerance)
            wait = start - now
            if timeout is not None and wait > timeout:
                return False
            self._next_slot = next_slot + self.interval
        if wait > 0:
            self._sleep(wait)
        return True


_shared: dict[float, RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_rate_limiter(rpm: float) -> RateLimiter:
    """The process-wide limiter for this RPM (created on first use)."""
    with _shared_lock:
        limiter = _shared.get(rpm)
        if limiter is None:
            limiter = _shared[rpm] = RateLimiter(rpm)
        return limiter
