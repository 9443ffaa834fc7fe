"""Limits on every byte before the application sees a request: uvicorn's HTTP protocols, guarded.

uvicorn bounds none of these with httptools (its ``h11_max_incomplete_event_size``
only applies to h11, and answers a plain 400): a 200 MiB header was read whole
and answered 200, a 60 kB path was logged whole, a client could hold a
connection open for ever sending a header a byte at a time. Each protocol here
keeps a bounded copy of the request head while it arrives and answers, as a
problem-details body, before the parser has buffered more than the limit:

- 414 when the request line (method, target, version) passes ``max_request_line_bytes``;
- 431 when the head (request line and headers) passes ``max_header_bytes``;
- 408 when a head has not arrived ``header_timeout_seconds`` after its first byte
  (a new connection that sends nothing is closed after that long too);
- 503 when the process already holds ``max_connections`` connections (WebSockets included).

Idle keep-alive connections are closed by uvicorn's ``timeout_keep_alive``, which
``app.serve`` sets. The limits are read from the settings in each worker process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from typing import Any, Final

import h11
import orjson
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import get_settings
from fastapi_lookout.problems import MEDIA_TYPE, problem

_log = structlog.get_logger("app.server")

_HEAD_END: Final = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_request_line_bytes: int
    max_header_bytes: int
    header_timeout_seconds: float
    max_connections: int


@lru_cache(maxsize=1)
def limits() -> ServerLimits:
    settings = get_settings()
    return ServerLimits(
        max_request_line_bytes=settings.server_max_request_line_bytes,
        max_header_bytes=settings.server_max_header_bytes,
        header_timeout_seconds=settings.server_header_timeout_seconds,
        max_connections=settings.server_max_connections,
    )


def head_verdict(head: bytes | bytearray, max_line: int, max_head: int) -> int | None:
    """414 or 431 when what has arrived of a request head already breaks a limit, else None."""
    line_end = head.find(b"\r\n", 0, max_line + 2)
    if line_end == -1 and len(head) > max_line:
        return 414
    end = head.find(_HEAD_END)
    if (len(head) if end == -1 else end + len(_HEAD_END)) > max_head:
        return 431
    return None


def _refusal(status: int, reason: str, detail: str) -> bytes:
    body = orjson.dumps(problem(status, reason, detail))
    return b"".join([
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode(),
        f"content-type: {MEDIA_TYPE}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n".encode(),
        body,
    ])


_REFUSALS: Final = {
    408: ("request_timeout", "the request head did not arrive in time"),
    414: ("uri_too_long", "the request line is longer than the server accepts"),
    431: ("headers_too_large", "the request headers are larger than the server accepts"),
    503: ("too_many_connections", "the server holds as many connections as it accepts; retry later"),
}


class _HeadGuard:
    """Mixed into a uvicorn HTTP protocol (before it in the bases)."""

    transport: asyncio.Transport
    connections: set[Any]
    cycle: Any
    client: tuple[str, int] | None
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._limits = limits()
        self._head = bytearray()
        self._cap = max(self._limits.max_header_bytes, self._limits.max_request_line_bytes) + len(_HEAD_END) + 1
        self._head_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self._limits.max_connections:
            self._refuse(503)
            return
        self._arm_head_timer()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._expecting_head():
            if self._head_timer is None:
                self._arm_head_timer()
            if len(self._head) < self._cap:
                self._head += data[: self._cap - len(self._head)]
            verdict = head_verdict(self._head, self._limits.max_request_line_bytes, self._limits.max_header_bytes)
            if verdict is not None:
                self._refuse(verdict)
                return
        cycle = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not cycle or self.transport.get_protocol() is not self:  # a head was parsed (or upgraded)
            self._head.clear()
            self._disarm_head_timer()

    def _expecting_head(self) -> bool:
        raise NotImplementedError

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self._limits.header_timeout_seconds, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()  # type: ignore[union-attr]
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        if self._head:
            self._refuse(408)
        elif self.cycle is None or self._expecting_head():
            self.transport.close()  # nothing asked: nothing to answer

    def _refuse(self, status: int) -> None:
        reason, detail = _REFUSALS[status]
        client = self.client[0] if self.client else None
        _log.warning("request refused by the server", reason=reason, status_code=status, client_ip=client)
        self._disarm_head_timer()
        self._head.clear()
        self.transport.write(_refusal(status, reason, detail))
        self.transport.close()


class GuardedHttpToolsProtocol(_HeadGuard, HttpToolsProtocol):
    """uvicorn's httptools protocol with head, timeout and connection limits (``--http httptools``)."""

    def _expecting_head(self) -> bool:
        return self.cycle is None or not self.cycle.more_body


class GuardedH11Protocol(_HeadGuard, H11Protocol):
    """uvicorn's h11 protocol with the same limits (``--http h11``: made-up methods reach the app)."""

    def _expecting_head(self) -> bool:
        return self.conn.their_state in (h11.IDLE, h11.DONE)

