"""Per-request context shared by the middleware, auth and the routes.

One mutable ``RequestContext`` lives in the ASGI scope for the lifetime of a
request (or a WebSocket connection). The outermost middleware creates it;
auth fills in the user; the access log and the audit row read it when the
response is done. It is never shared between requests, unlike the global dict
of the design this replaces.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import structlog
from starlette.types import Scope

SCOPE_KEY = "observability.context"


class RequestContext:
    """What the middleware, auth and the routes learn about one request (or WebSocket connection).

    The defaults are class attributes: one is copied onto the instance only when
    something sets it, so creating a context per request is one attribute store.
    """

    user_id: str | None = None
    username: str | None = None
    roles: tuple[str, ...] = ()
    action_type: str | None = None
    """Overrides the audit action (defaults to the route name)."""
    audit_data: Any = None
    """What the route wants recorded as ``request_data`` (redacted and capped by the writer)."""
    error_message: str | None = None
    """Why the request failed, for the audit row (e.g. the 401 reason)."""
    log_fields: dict[str, Any] | None = None
    """Extra fields for every log line written while this request is served (e.g. ``connection_id``);
    replaced, never mutated (``bind_log_fields``), so the class default is never shared state."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id

    def __repr__(self) -> str:
        return f"RequestContext(request_id={self.request_id!r}, user_id={self.user_id!r})"


CURRENT: ContextVar[RequestContext | None] = ContextVar("observability.request", default=None)
"""The request being served in this task; set and reset by the middleware (one ``set`` per request,
instead of structlog's copy-and-scan of the whole context to clear and bind)."""


def get_context(scope: Scope) -> RequestContext | None:
    return scope.get(SCOPE_KEY)


def current_log_fields() -> dict[str, Any]:
    """The fields a log line written now gets from its context: the request's id, user and
    bound fields, and anything bound with structlog's contextvars."""
    fields = structlog.contextvars.get_contextvars()
    ctx = CURRENT.get()
    if ctx is not None:
        fields.update(ctx.log_fields or ())
        if ctx.username is not None:
            fields["username"] = ctx.username
        if ctx.user_id is not None:
            fields["user_id"] = ctx.user_id
        fields["request_id"] = ctx.request_id
    return fields


def bind_log_fields(**fields: Any) -> None:
    """Add fields to every later log line of the current request; outside a request, to the
    current context through structlog's contextvars."""
    ctx = CURRENT.get()
    if ctx is None:
        structlog.contextvars.bind_contextvars(**fields)
    else:
        ctx.log_fields = {**(ctx.log_fields or {}), **fields}
