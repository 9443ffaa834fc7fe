"""Ship log lines straight to Loki (``LOKI_URL``) without ever slowing a request.

python-logging-loki posts synchronously and its queue handler has an unbounded
queue; a hanging Loki would grow memory without limit. Here the request path
only does a ``put_nowait`` into a bounded queue; one daemon thread posts with a
timeout. When the queue is full the line is dropped and counted (stdout still
has it: Alloy remains the primary path).

Stream labels match what the Alloy pipeline sets (``service``, ``environment``,
``level``), so the same LogQL works for both paths.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from typing import Any

import requests
from logging_loki import LokiHandler
from logging_loki.emitter import LokiEmitterV1

QUEUE_SIZE = 10_000
POST_TIMEOUT_SECONDS = 3.0


class _TimeoutSession(requests.Session):
    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", POST_TIMEOUT_SECONDS)
        return super().request(*args, **kwargs)


class _Emitter(LokiEmitterV1):
    """Labels: the static tags plus ``level``; no per-logger stream."""

    level_tag = "level"
    session_class = _TimeoutSession

    def build_tags(self, record: logging.LogRecord) -> dict[str, Any]:
        return {**self.tags, self.level_tag: record.levelname.lower()}


class LokiShipper:
    def __init__(self, url: str, labels: dict[str, str], queue_size: int = QUEUE_SIZE) -> None:
        push_url = url.rstrip("/")
        if not push_url.endswith("/loki/api/v1/push"):
            push_url += "/loki/api/v1/push"
        self._handler = LokiHandler(url=push_url, tags=labels, version="1")
        self._handler.emitter = _Emitter(push_url, labels)
        self._queue: queue.Queue[logging.LogRecord | None] = queue.Queue(maxsize=queue_size)
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="loki-shipper", daemon=True)
        self._thread.start()

    def ship(self, level: str, line: str) -> None:
        record = logging.LogRecord("app", logging.getLevelName(level.upper()), "", 0, line, None, None)
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            record = self._queue.get()
            if record is None:
                return
            try:
                self._handler.emitter(record, record.getMessage())
            except Exception:
                self.failed += 1
                self._handler.emitter.close()

    def close(self, timeout: float = 2.0) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout)
