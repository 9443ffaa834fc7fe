"""Sliding-window rate limits: per minute and per second (burst), per key.

Each key keeps the timestamps of its accepted hits in the last minute (a
deque), so the window really slides. The check-and-record runs without an
``await`` in between, which makes it atomic on the event loop; the
``asyncio.Lock`` guards the periodic sweep that drops idle keys, the only
multi-step mutation. Limits are per process: with several workers each has
its own window (documented in the README).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass

import structlog

from fastapi_lookout import metrics

_log = structlog.get_logger("app.ratelimit")


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one hit; a refusal's numbers are those of the window that refused it
    (a burst refusal reports the burst, not the untouched per-minute budget)."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int
    """Whole seconds until a request would be accepted (0 when allowed)."""
    reset: int
    """Seconds until the reported window has room again."""
    window_seconds: int = 60
    """The window ``limit`` counts over: 60 (per minute) or 1 (burst)."""

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
            "X-RateLimit-Window": str(self.window_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class SlidingWindowLimiter:
    def __init__(self, limit_type: str, per_minute: int, burst: int, max_keys: int = 100_000) -> None:
        if limit_type not in metrics.RATE_LIMIT_TYPES:
            raise ValueError(f"unknown limit type {limit_type!r}")
        self.limit_type = limit_type
        self.per_minute = per_minute
        self.burst = burst
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = asyncio.Lock()
        self._counter = metrics.RATE_LIMIT_HITS.labels(limit_type)

    def check(self, key: str, now: float | None = None) -> Decision:
        """Record a hit for ``key`` if allowed. Synchronous on purpose: no await between read and write."""
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - 60.0:
            hits.popleft()
        in_last_second = 0
        for ts in reversed(hits):
            if ts <= now - 1.0:
                break
            in_last_second += 1
        if len(hits) >= self.per_minute:
            limit, window, wait = self.per_minute, 60, hits[0] + 60.0 - now
        elif in_last_second >= self.burst:
            limit, window, wait = self.burst, 1, hits[-in_last_second] + 1.0 - now
        else:
            hits.append(now)
            return Decision(True, self.per_minute, self.per_minute - len(hits), 0, math.ceil(hits[0] + 60.0 - now))
        self._counter.inc()
        _log.warning("rate limit exceeded", limit_type=self.limit_type)
        retry = max(1, math.ceil(wait))
        return Decision(False, limit, 0, retry, retry, window)

    async def sweep(self, now: float | None = None) -> int:
        """Forget keys with no hit in the last minute; returns how many were dropped."""
        now = time.monotonic() if now is None else now
        async with self._lock:
            idle = [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - 60.0]
            for key in idle:
                del self._hits[key]
            if len(self._hits) > self.max_keys:  # a flood of distinct keys: keep memory bounded
                self._hits.clear()
            return len(idle)

    def __len__(self) -> int:
        return len(self._hits)
