"""Per-request context shared by the middleware, auth and the routes.

One mutable ``RequestContext`` lives in the ASGI scope for the lifetime of a
request (or a WebSocket connection). The outermost middleware creates it;
auth fills in the user; the access log and the audit row read it when the
response is done. It is never shared between requests, unlike the global dict
of the design this replaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.types import Scope

SCOPE_KEY = "observability.context"


@dataclass(slots=True)
class RequestContext:
    request_id: str
    user_id: str | None = None
    username: str | None = None
    roles: tuple[str, ...] = ()
    action_type: str | None = None
    """Overrides the audit action (defaults to the route name)."""
    audit_data: Any = None
    """What the route wants recorded as ``request_data`` (redacted and capped by the writer)."""
    error_message: str | None = None
    """Why the request failed, for the audit row (e.g. the 401 reason)."""
    extra: dict[str, Any] = field(default_factory=dict)


def get_context(scope: Scope) -> RequestContext | None:
    return scope.get(SCOPE_KEY)
