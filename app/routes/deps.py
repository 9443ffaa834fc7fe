"""Dependencies shared by the API routes: rate limits and role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request

from app.auth.dependencies import require_role
from app.auth.tokens import Principal
from app.ratelimit import Decision, SlidingWindowLimiter
from fastapi_lookout import Problem
from fastapi_lookout.context import get_context


def _refuse(request: Request, decision: Decision, limit_type: str) -> Problem:
    ctx = get_context(request.scope)
    message = (f"rate limit exceeded ({limit_type}: {decision.limit} per {decision.window_seconds} s); "
               f"retry after {decision.retry_after} s")
    if ctx is not None:
        ctx.error_message = message
    return Problem(429, "rate_limited", message, headers=decision.headers(), limit_type=limit_type,
                   retry_after=decision.retry_after)


async def ip_rate_limit(request: Request) -> None:
    """Coarse per-client-IP limit in front of authentication, so token floods are limited too."""
    limiter: SlidingWindowLimiter = request.app.state.ip_limiter
    client = request.client.host if request.client else "unknown"
    decision = limiter.check(client)
    if not decision.allowed:
        raise _refuse(request, decision, limiter.limit_type)


def authorized(role: str) -> Callable[..., Awaitable[Principal]]:
    """Valid token with ``role``, then the per-user rate limit."""
    check_role = require_role(role)

    async def dependency(request: Request, principal: Principal = Depends(check_role)) -> Principal:  # noqa: B008
        limiter: SlidingWindowLimiter = request.app.state.user_limiter
        decision = limiter.check(principal.sub)
        if not decision.allowed:
            raise _refuse(request, decision, limiter.limit_type)
        return principal

    return dependency
