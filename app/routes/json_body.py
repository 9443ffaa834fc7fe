"""A JSON request body read after the route's other dependencies, not before them.

FastAPI reads and parses a declared body before it solves any dependency, so a
protected route would buffer a body for a caller it is about to refuse. Declared
with ``json_body(Model)`` instead, the body is read last: the IP limit, the
token, the role and the user's limit are decided first (a refused caller's body
is never read), then the bytes, under the body limit, then the model. The
OpenAPI still documents the body (``request_body_openapi``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from fastapi_lookout import Problem

M = TypeVar("M", bound=BaseModel)


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency returning the request's JSON body as ``model``: 415 when it is not JSON,
    400 when it does not parse, 422 naming each invalid field."""

    async def dependency(request: Request) -> M:
        if not _is_json(request.headers.get("content-type", "")):
            raise Problem(415, "unsupported_media_type", "the request body must be application/json")
        raw = await request.body()
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_input=False)]
            raise RequestValidationError(errors) from None

    return dependency


def request_body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the required JSON body."""
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": model.model_json_schema()}}}}
