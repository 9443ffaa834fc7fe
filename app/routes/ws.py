"""WebSocket ``/ws?token=...``: JSON packages ``{"pkg_id": int, "req_id": str, "data": {...}}``.

Every frame gets exactly one JSON answer ``{"pkg_id", "req_id", "request_id",
"status_code", "data" | "error"}`` (``error``: the problem-details object of HTTP
errors), one ``ws message`` log line and one audit row; a malformed
frame gets an error answer, never a dropped connection.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import structlog
from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from app import authors as store
from app.auth.dependencies import authenticate_websocket
from app.auth.tokens import AuthError, Principal
from app.ratelimit import SlidingWindowLimiter
from app.routes.authors import MAX_ID, AuthorIn
from fastapi_lookout import correlation, metrics
from fastapi_lookout.audit import AuditEvent, outcome_for_status
from fastapi_lookout.context import bind_log_fields, get_context
from fastapi_lookout.problems import problem

router = APIRouter(tags=["websocket"])
_log = structlog.get_logger("app.ws")

Handler = Callable[[WebSocket, dict[str, Any]], Awaitable[tuple[int, Any]]]


class PackageError(Exception):
    def __init__(self, status_code: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status_code, self.error, self.message = status_code, error, message


async def _list_authors(ws: WebSocket, data: dict[str, Any]) -> tuple[int, Any]:
    limit = data.get("limit", 100)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 500:
        raise PackageError(422, "invalid", "limit must be an integer from 1 to 500")
    return 200, await store.list_authors(ws.app.state.engine, limit)


async def _get_author(ws: WebSocket, data: dict[str, Any]) -> tuple[int, Any]:
    author_id = data.get("author_id")
    if not isinstance(author_id, int) or isinstance(author_id, bool) or not 1 <= author_id <= MAX_ID:
        raise PackageError(422, "invalid", f"author_id must be an integer from 1 to {MAX_ID}")
    author = await store.get_author(ws.app.state.engine, author_id)
    if author is None:
        raise PackageError(404, "not_found", f"author {author_id} not found")
    return 200, author


async def _create_author(ws: WebSocket, data: dict[str, Any]) -> tuple[int, Any]:
    try:
        body = AuthorIn.model_validate(data)
    except ValidationError as exc:
        raise PackageError(422, "invalid", "; ".join(e["msg"] for e in exc.errors())[:300]) from None
    try:
        return 201, await store.create_author(ws.app.state.engine, body.name, body.bio)
    except store.DuplicateAuthor:
        raise PackageError(409, "conflict", "an author with this name exists") from None


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    role: str
    handler: Handler


PACKAGES: dict[int, Package] = {
    1: Package("list_authors", "get-authors", _list_authors),
    2: Package("get_author", "get-authors", _get_author),
    3: Package("create_author", "create-author", _create_author),
}


class ConnectionRegistry:
    """Open connections per user, for the per-user connection limit (per process)."""

    def __init__(self) -> None:
        self._open: Tally[str] = Tally()

    def try_add(self, user: str, limit: int) -> bool:
        if self._open[user] >= limit:
            return False
        self._open[user] += 1
        return True

    def remove(self, user: str) -> None:
        self._open[user] -= 1
        if self._open[user] <= 0:
            del self._open[user]


REFUSED_FRAME_STATUSES: Final = frozenset({400, 404, 413, 429})
"""Frames refused before any work (malformed, unknown package, too large, over the rate limit): a client
sending many of them is broken or hostile, and each still costs a reply, a log line and an audit row."""
CLOSE_POLICY_VIOLATION: Final = 1008
CLOSE_TOKEN_EXPIRED: Final = 4401


@dataclass(slots=True)
class Session:
    """One accepted connection: who, its message budget, and how many frames it had refused."""

    principal: Principal
    connection_id: str
    limiter: SlidingWindowLimiter
    max_refused: int
    refused: int = 0


async def _send(ws: WebSocket, payload: dict[str, Any]) -> None:
    if ws.application_state is not WebSocketState.CONNECTED:
        return  # closed meanwhile (the token expired): nobody to answer
    await ws.send_text(orjson.dumps(payload).decode())
    metrics.WS_MESSAGES_SENT.inc()


async def _reject(ws: WebSocket, status: str, code: int, error: dict[str, Any]) -> None:
    metrics.WS_CONNECTIONS.labels(status).inc()
    _log.warning("ws rejected", status=status, reason=error.get("reason"))
    await ws.accept()
    await _send(ws, {"error": error})
    await ws.close(code=code)


def _byte_size(raw: str | bytes) -> int:
    """A frame's size in bytes: a text frame's in UTF-8 (10,000 emoji are 40 kB, not 10,000 characters)."""
    if isinstance(raw, bytes) or raw.isascii():
        return len(raw)
    return len(raw.encode("utf-8", "surrogatepass"))


def _parse(raw: str | bytes | None, max_bytes: int) -> tuple[int | None, str | None, dict[str, Any]]:
    """``(pkg_id, req_id, data)`` or PackageError for frames we cannot serve."""
    if raw is None:
        raise PackageError(400, "malformed", "empty frame")
    if len(raw) > max_bytes or (len(raw) * 4 > max_bytes and _byte_size(raw) > max_bytes):
        raise PackageError(413, "message_too_large", f"frame exceeds {max_bytes} bytes")
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise PackageError(400, "malformed", "frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise PackageError(400, "malformed", "frame must be a JSON object")
    pkg_id, req_id, data = frame.get("pkg_id"), frame.get("req_id"), frame.get("data", {})
    if not isinstance(req_id, str) or not 0 < len(req_id) <= 64:
        req_id = None
    if not isinstance(pkg_id, int) or isinstance(pkg_id, bool):
        raise PackageError(400, "malformed", "pkg_id must be an integer")
    if req_id is None:
        raise PackageError(400, "malformed", "req_id must be a string of 1-64 characters")
    if not isinstance(data, dict):
        raise PackageError(400, "malformed", "data must be a JSON object")
    return pkg_id, req_id, data


def _close_at_expiry(ws: WebSocket, session: Session) -> asyncio.TimerHandle | None:
    """One timer per connection (nothing per message): when the token's ``exp`` plus the leeway
    passes, the client is told why and the socket closes with 4401."""
    valid_until = session.principal.valid_until
    if valid_until is None:
        return None

    def expire() -> None:
        task = asyncio.ensure_future(_expire(ws, session))
        _expiring.add(task)
        task.add_done_callback(_expiring.discard)

    return asyncio.get_running_loop().call_later(max(0.0, valid_until - time.time()), expire)


_expiring: set[asyncio.Future[None]] = set()


async def _expire(ws: WebSocket, session: Session) -> None:
    if ws.application_state is not WebSocketState.CONNECTED:
        return
    _log.info("ws token expired", status="closed", reason="expired")
    await _send(ws, {"error": problem(401, "expired", "the token expired: reconnect with a fresh one",
                                      request_id=session.connection_id)})
    await ws.close(code=CLOSE_TOKEN_EXPIRED, reason="token expired")


@router.websocket("/ws", name="ws")
async def websocket_endpoint(websocket: WebSocket, token: str | None = None) -> None:
    app = websocket.app
    settings = app.state.settings
    ctx = get_context(websocket.scope)
    connection_id = ctx.request_id if ctx else correlation.new_id()
    try:
        principal = await authenticate_websocket(app.state.token_verifier, token)
    except AuthError as exc:
        await _reject(websocket, "rejected_auth", CLOSE_TOKEN_EXPIRED if exc.reason == "expired" else 4401,
                      problem(exc.status_code, exc.reason, exc.message, request_id=connection_id))
        return
    registry: ConnectionRegistry = app.state.ws_registry
    if not registry.try_add(principal.sub, settings.ws_max_connections_per_user):
        metrics.RATE_LIMIT_HITS.labels("ws_connection").inc()
        await _reject(websocket, "rejected_limit", 4429,
                      problem(429, "too_many_connections",
                              f"at most {settings.ws_max_connections_per_user} connections per user",
                              request_id=connection_id, limit=settings.ws_max_connections_per_user))
        return
    bind_log_fields(user_id=principal.sub, connection_id=connection_id)
    metrics.WS_CONNECTIONS.labels("accepted").inc()
    metrics.WS_CONNECTIONS_ACTIVE.inc()
    session = Session(principal, connection_id,
                      SlidingWindowLimiter("ws_message", settings.ws_messages_per_minute,
                                           settings.ws_messages_per_minute),
                      settings.ws_max_refused_frames)
    expiry = None
    try:
        await websocket.accept()
        _log.info("ws connected", status="accepted")
        expiry = _close_at_expiry(websocket, session)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text") if message.get("text") is not None else message.get("bytes")
            if await _handle(websocket, session, raw) in REFUSED_FRAME_STATUSES:
                session.refused += 1
                if session.refused >= session.max_refused:
                    _log.warning("ws closed", status="closed", reason="policy_violation")
                    await websocket.close(code=CLOSE_POLICY_VIOLATION,
                                          reason=f"{session.refused} frames refused")
                    break
    except WebSocketDisconnect:
        pass
    finally:
        if expiry is not None:
            expiry.cancel()
        registry.remove(principal.sub)
        metrics.WS_CONNECTIONS_ACTIVE.dec()
        _log.info("ws disconnected", status="closed")


async def _handle(ws: WebSocket, session: Session, raw: str | bytes | None) -> int:
    """Answer one frame; returns its status code. Every frame, malformed ones included, counts
    against the connection's message budget first."""
    start = time.perf_counter()
    metrics.WS_MESSAGES_RECEIVED.inc()
    principal = session.principal
    request_id = correlation.new_id()
    pkg_id: int | None = None
    req_id: str | None = None
    data: dict[str, Any] = {}
    package: Package | None = None
    status_code, result, error = 200, None, None
    try:
        decision = session.limiter.check(session.connection_id)
        if not decision.allowed:
            raise PackageError(429, "rate_limited", f"message rate limit; retry after {decision.retry_after} s")
        pkg_id, req_id, data = _parse(raw, ws.app.state.settings.ws_max_message_bytes)
        package = PACKAGES.get(pkg_id)
        if package is None:
            raise PackageError(404, "unknown_package", f"no package {pkg_id}")
        if package.role not in principal.roles:
            metrics.AUTH_ATTEMPTS.labels("forbidden").inc()
            raise PackageError(403, "forbidden", f"role {package.role!r} required")
        status_code, result = await package.handler(ws, data)
    except PackageError as exc:
        status_code, error = exc.status_code, problem(exc.status_code, exc.error, exc.message, request_id=request_id)
    except Exception as exc:
        status_code, error = 500, problem(500, "internal_error", "internal error", request_id=request_id)
        metrics.APP_ERRORS.labels(type(exc).__name__, "/ws").inc()
        _log.error("ws package failed", exc_info=exc, pkg_id=pkg_id, request_id=request_id)
    reply: dict[str, Any] = {"pkg_id": pkg_id, "req_id": req_id, "request_id": request_id,
                             "status_code": status_code}
    reply["data" if error is None else "error"] = result if error is None else error
    await _send(ws, reply)
    duration = time.perf_counter() - start
    label = str(pkg_id) if package is not None else "unknown"
    metrics.WS_MESSAGE_PROCESSING_DURATION.labels(label).observe(duration)
    _log.log(
        20 if status_code < 500 else 40, "ws message", request_id=request_id, pkg_id=label, req_id=req_id,
        status_code=status_code, duration_ms=round(duration * 1000.0, 3),
    )
    writer = getattr(ws.app.state, "audit_writer", None)
    if writer is not None:
        writer.enqueue(
            AuditEvent(
                timestamp=datetime.now(UTC),
                action_type=f"ws.{package.name}" if package else "ws.invalid",
                resource=f"WS /ws pkg {label}",
                outcome=outcome_for_status(status_code),
                response_status=status_code,
                duration_ms=round(duration * 1000.0, 3),
                user_id=principal.sub,
                username=principal.username,
                user_roles=",".join(sorted(principal.roles)) or None,
                ip_address=ws.client.host if ws.client else None,
                request_id=request_id,
                request_data={"pkg_id": pkg_id, "req_id": req_id, "data": data},
                error_message=error["detail"] if error else None,
            )
        )
    return status_code
