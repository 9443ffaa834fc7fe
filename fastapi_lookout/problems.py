"""Every HTTP error as one shape: RFC 9457 problem details (``application/problem+json``).

``{"type", "title", "status", "detail", "reason", "request_id"}``, plus
extension members where an error has more to say (``errors`` for 422,
``limit_type``/``retry_after`` for 429). ``reason`` is the machine-readable
code a client branches on; ``detail`` is for people; ``request_id`` finds
the request's log lines and audit row. ``type`` is ``about:blank``, so
``title`` is the status's phrase (RFC 9457 section 4.2.1).

``instrument(app)`` installs the handlers below (HTTPException, Starlette's
404/405, request validation, unhandled exceptions); pure-ASGI layers that
answer before the app runs use ``send_problem``. ``PROBLEM_SCHEMA`` is the
one JSON Schema of the shape: the OpenAPI documents it and tests validate
every error status of the real service against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi import exception_handlers as fastapi_handlers
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.types import Scope, Send

from fastapi_lookout import correlation
from fastapi_lookout.context import SCOPE_KEY, RequestContext

MEDIA_TYPE: Final = "application/problem+json"
_DETAIL_MAX: Final = 500

REASONS: Final[Mapping[int, str]] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    422: "validation_failed",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    503: "unavailable",
}
"""The default ``reason`` of a status, when the code that refused has nothing more precise."""


class ProblemDetails(BaseModel):
    """The error body of every status >= 400 (and of WebSocket error replies)."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field("about:blank", description="Problem type URI; `about:blank`: the status says it all.")
    title: str = Field(description="The HTTP status phrase.")
    status: int = Field(ge=400, le=599, description="The HTTP status code (the WebSocket reply's status_code).")
    detail: str = Field(description="What went wrong, for a person.")
    reason: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Machine-readable cause, stable across releases.")
    request_id: str = Field(description="Correlation id: the request's log lines and audit row carry it.")


PROBLEM_SCHEMA: Final[dict[str, Any]] = ProblemDetails.model_json_schema()
"""The JSON Schema every error body validates against."""


def reason_for(status: int) -> str:
    reason = REASONS.get(status)
    if reason is None:
        try:
            reason = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
        except ValueError:
            reason = "error"
    return reason


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(
    status: int, reason: str | None = None, detail: str | None = None, *, request_id: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """The problem object; a missing ``request_id`` is minted (an answer without one cannot be traced)."""
    title = _title(status)
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": (detail or title)[:_DETAIL_MAX],
        "reason": reason or reason_for(status),
        "request_id": request_id or correlation.new_id(),
    }
    body.update(extensions)
    return body


class ProblemResponse(Response):
    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Problem(HTTPException):
    """Raise from a route or dependency: ``raise Problem(404, "not_found", "author 7 not found")``."""

    def __init__(
        self, status_code: int, reason: str, detail: str, *, headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(status_code, detail=detail, headers=dict(headers) if headers else None)
        self.reason = reason
        self.extensions = extensions


def _request_id(scope: Scope) -> str | None:
    ctx: RequestContext | None = scope.get(SCOPE_KEY)
    return ctx.request_id if ctx is not None else None


def response(
    scope: Scope, status: int, reason: str | None = None, detail: str | None = None, *,
    headers: Mapping[str, str] | None = None, **extensions: Any,
) -> ProblemResponse:
    body = problem(status, reason, detail, request_id=_request_id(scope), **extensions)
    return ProblemResponse(body, status_code=status, headers=headers)


async def send_problem(
    send: Send, scope: Scope, status: int, reason: str | None = None, detail: str | None = None, *,
    headers: Sequence[tuple[bytes, bytes]] = (), **extensions: Any,
) -> None:
    """Answer from a pure-ASGI layer, before (or instead of) the application."""
    body = orjson.dumps(problem(status, reason, detail, request_id=_request_id(scope), **extensions))
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


# --- handlers ---------------------------------------------------------------------------------
def _from_detail(status: int, detail: Any) -> tuple[str, str, dict[str, Any]]:
    """``(reason, detail, extensions)`` of an HTTPException's ``detail``: a string, or the
    ``{"error", "reason", "message", ...}`` dict this project's routes used before."""
    if isinstance(detail, Mapping):
        rest = {str(k): v for k, v in detail.items() if k not in ("error", "reason", "message", "detail")}
        reason = detail.get("reason") or detail.get("error") or reason_for(status)
        text = detail.get("message") or detail.get("detail") or _title(status)
        return str(reason), str(text), rest
    return reason_for(status), str(detail) if detail else _title(status), {}


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route of this path answers (Starlette's own ``Allow`` names one route's)."""
    from fastapi_lookout.middleware import RouteResolver  # the middleware imports this module

    resolver: RouteResolver | None = getattr(app.state, "lookout_route_resolver", None)
    if resolver is None:
        resolver = app.state.lookout_route_resolver = RouteResolver(app.router.routes)
    return resolver.allowed_methods(scope)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if isinstance(exc, Problem):
        reason, detail, extensions = exc.reason, str(exc.detail), exc.extensions
    else:
        reason, detail, extensions = _from_detail(status, exc.detail)
    if status == 405:
        methods = allowed_methods(request.app, request.scope)
        if methods:
            headers["Allow"] = ", ".join(methods)
        detail = f"{request.method} is not allowed here; allowed: {headers.get('Allow', 'none')}"
    if status < 400 or status in (204, 304):
        return Response(status_code=status, headers=headers)
    return response(request.scope, status, reason, detail, headers=headers, **extensions)


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's errors without ``input``/``ctx``: what was sent (a password, say) is never echoed."""
    return [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")),
             "type": str(e.get("type", ""))} for e in errors]


def validation_problem(scope: Scope, errors: Iterable[Mapping[str, Any]]) -> ProblemResponse:
    """400 ``malformed_json`` when the body is not JSON, else 422 ``validation_failed`` naming each field."""
    fields = field_errors(errors)
    if any(e["type"] == "json_invalid" for e in fields):
        return response(scope, 400, "malformed_json", "the request body is not valid JSON")
    text = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in fields)
    return response(scope, 422, "validation_failed", text or "the request is invalid", errors=fields)


async def validation_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_problem(request.scope, exc.errors())


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    """What a client sees of an unhandled exception: nothing of it, but the request id."""
    return response(request.scope, 500, "internal_error", "internal error; quote the request_id when reporting it")


def install_handlers(app: FastAPI) -> None:
    """Problem-details handlers for whatever the application has not handled itself (FastAPI's
    defaults are replaced; a handler the application registered is kept)."""
    handlers = app.exception_handlers
    for key, handler, default in (
        (HTTPException, http_exception_handler, fastapi_handlers.http_exception_handler),
        (RequestValidationError, validation_exception_handler, fastapi_handlers.request_validation_exception_handler),
        (Exception, internal_error_handler, None),
    ):
        current = handlers.get(key)
        if (current is None or current is default) and not (key is Exception and 500 in handlers):
            app.add_exception_handler(key, handler)


def openapi_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the error statuses it can answer (``document_problems`` adds the schema)."""
    return {status: {"description": _title(status)} for status in statuses}


_SCHEMA_REF: Final = {"$ref": "#/components/schemas/Problem"}
_OPERATIONS: Final = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def document_problems(app: FastAPI) -> None:
    """The OpenAPI names the problem schema for every error response (FastAPI's own 422 list
    included) and a 500 for every operation: an unhandled exception can happen anywhere."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for path_item in schema.get("paths", {}).values():
            for method, operation in path_item.items():
                if method not in _OPERATIONS:
                    continue
                responses = operation.setdefault("responses", {})
                responses.setdefault("500", {"description": _title(500)})
                if "requestBody" in operation:
                    responses.setdefault("400", {"description": _title(400)})
                for status, answer in responses.items():
                    if status.isdigit() and int(status) >= 400:
                        answer["content"] = {MEDIA_TYPE: {"schema": _SCHEMA_REF}}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
