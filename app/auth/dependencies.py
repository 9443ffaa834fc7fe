"""FastAPI glue: turn a request's bearer token into a ``Principal``, or a 400/401/403/503 problem.

Each check counts exactly one ``auth_attempts_total`` sample, fills the
request's ``RequestContext`` (the access log, every other log line of the
request and the audit row read the user and the failure reason from it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import structlog
from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from app.auth.tokens import AuthError, Principal, TokenVerifier
from fastapi_lookout import Problem, metrics
from fastapi_lookout.context import RequestContext, bind_log_fields, get_context

# Declared on every protected route only so OpenAPI documents the scheme (Swagger's
# "Authorize" button); the header is parsed below, where missing and wrong-scheme differ.
_BEARER = HTTPBearer(auto_error=False, bearerFormat="JWT", description="Keycloak access token")
_WWW_AUTHENTICATE_INVALID = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
_WWW_AUTHENTICATE_SCOPE = {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}


def _logger() -> Any:
    # Looked up per call, not cached at import: tests' capture_logs and a late
    # structlog.configure() then always apply.
    return structlog.get_logger("app.auth")


def get_verifier(connection: HTTPConnection) -> TokenVerifier:
    """The app's verifier, which the app factory puts at ``app.state.token_verifier``."""
    verifier = getattr(connection.app.state, "token_verifier", None)
    if not isinstance(verifier, TokenVerifier):
        raise RuntimeError("app.state.token_verifier is not set: the app factory must call build_verifier()")
    return verifier


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if not authorization or not authorization.strip():
        raise AuthError("missing", "no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError("malformed", "Authorization scheme must be Bearer")
    token = token.strip()
    if not token:
        raise AuthError("malformed", "Authorization header has no token after Bearer")
    return token


def require_role(role: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits holders of realm role ``role``: ``Depends(require_role("get-authors"))``."""

    async def dependency(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
    ) -> Principal:
        ctx = get_context(request.scope)
        authorization = request.headers.getlist("authorization")
        if len(authorization) > 1:  # which one would a proxy have checked? Refuse, never guess
            metrics.AUTH_ATTEMPTS.labels("malformed").inc()
            _logger().warning("authentication failed", reason="duplicate_authorization", required_role=role)
            if ctx is not None:
                ctx.error_message = "duplicate_authorization: more than one Authorization header"
            raise Problem(400, "duplicate_authorization", "send exactly one Authorization header")
        try:
            principal = await get_verifier(request).verify(bearer_token(authorization[0] if authorization else None))
        except AuthError as exc:
            _count_failure(exc, required_role=role)
            if ctx is not None:
                ctx.error_message = f"{exc.reason}: {exc.message}"
            raise _http_error(exc) from None
        _bind_user(principal, ctx)
        if role not in principal.roles:
            message = f"role '{role}' required"
            metrics.AUTH_ATTEMPTS.labels("forbidden").inc()
            _logger().warning("permission denied", reason="forbidden", required_role=role)
            if ctx is not None:
                ctx.error_message = f"forbidden: {message}"
            raise Problem(403, "forbidden", message, headers=_WWW_AUTHENTICATE_SCOPE)
        metrics.AUTH_ATTEMPTS.labels("success").inc()
        return principal

    dependency.__qualname__ = f"require_role({role!r})"
    return dependency


async def authenticate_websocket(verifier: TokenVerifier, token: str | None) -> Principal:
    """Check a WebSocket's ``?token=`` (browsers cannot set handshake headers); raises ``AuthError``."""
    try:
        principal = await verifier.verify(token)
    except AuthError as exc:
        _count_failure(exc, transport="websocket")
        raise
    metrics.AUTH_ATTEMPTS.labels("success").inc()
    _bind_user(principal, None)
    return principal


def _count_failure(exc: AuthError, **fields: str) -> None:
    metrics.AUTH_ATTEMPTS.labels(exc.reason).inc()
    _logger().warning("authentication failed", reason=exc.reason, detail=exc.message, **fields)


def _bind_user(principal: Principal, ctx: RequestContext | None) -> None:
    if ctx is not None:
        ctx.user_id = principal.sub
        ctx.username = principal.username
        ctx.roles = tuple(sorted(principal.roles))
    else:
        bind_log_fields(user_id=principal.sub, username=principal.username)


def _http_error(exc: AuthError) -> Problem:
    """401 (or 503 when Keycloak's keys are unavailable) whose ``reason`` is the refusal's."""
    unavailable = exc.status_code == 503
    return Problem(exc.status_code, exc.reason, exc.message,
                   headers=None if unavailable else _WWW_AUTHENTICATE_INVALID)
