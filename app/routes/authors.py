"""``/api/authors``: the audited, role-protected resource of the reference service.

Every parameter is bounded where it enters (ids and offsets fit the database's
integers, names and bios its columns, no NUL that PostgreSQL cannot store), so
nothing a client sends reaches the database as an error; and every status a
route can answer is in the OpenAPI, with the problem-details schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app import authors as store
from app.routes.deps import authorized, ip_rate_limit
from app.routes.json_body import json_body, request_body_openapi
from fastapi_lookout import Problem
from fastapi_lookout.context import get_context
from fastapi_lookout.problems import openapi_responses

MAX_ID: Final = 2**31 - 1
"""The ``authors.id`` column is a 32-bit integer on PostgreSQL."""
NO_NUL: Final = "^[^\\u0000]*$"
"""PostgreSQL text cannot hold U+0000: refused at the edge, naming the field."""

router = APIRouter(
    prefix="/api/authors", tags=["authors"], dependencies=[Depends(ip_rate_limit)],
    # Any /api request: duplicate Authorization, token, role, body and header limits, limits, Keycloak down.
    responses=openapi_responses(400, 401, 403, 413, 414, 422, 429, 431, 503),
)

AuthorId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL (U+0000) characters")
    return value


class AuthorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Lengths as sent: no trimming that would let 201 characters in or turn "\f" into "".
    name: str = Field(min_length=1, max_length=200, json_schema_extra={"pattern": NO_NUL})
    bio: str | None = Field(default=None, max_length=2000, json_schema_extra={"pattern": NO_NUL})

    _nul = field_validator("name", "bio")(_no_nul)


class AuthorOut(BaseModel):
    id: int
    name: str
    bio: str | None
    created_at: str = Field(json_schema_extra={"format": "date-time"}, description="ISO 8601, UTC (`+00:00`).")


def _note(request: Request, data: Any, error: str | None = None) -> None:
    ctx = get_context(request.scope)
    if ctx is not None:
        ctx.audit_data = data
        if error:
            ctx.error_message = error


@router.get("", name="list_authors", dependencies=[Depends(authorized("get-authors"))])
async def list_authors(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[AuthorOut]:
    _note(request, {"limit": limit, "offset": offset})
    return [AuthorOut(**a) for a in await store.list_authors(request.app.state.engine, limit, offset)]


@router.get("/{author_id}", name="get_author", dependencies=[Depends(authorized("get-authors"))],
            responses=openapi_responses(404))
async def get_author(request: Request, author_id: AuthorId) -> AuthorOut:
    _note(request, {"author_id": author_id})
    author = await store.get_author(request.app.state.engine, author_id)
    if author is None:
        _note(request, {"author_id": author_id}, f"author {author_id} not found")
        raise Problem(404, "not_found", f"author {author_id} not found")
    return AuthorOut(**author)


@router.post("", name="create_author", status_code=201, dependencies=[Depends(authorized("create-author"))],
             responses=openapi_responses(409, 415), openapi_extra=request_body_openapi(AuthorIn))
async def create_author(request: Request, body: Annotated[AuthorIn, Depends(json_body(AuthorIn))]) -> AuthorOut:
    _note(request, body.model_dump())
    try:
        author = await store.create_author(request.app.state.engine, body.name, body.bio)
    except store.DuplicateAuthor:
        _note(request, body.model_dump(), f"author {body.name!r} already exists")
        raise Problem(409, "conflict", "an author with this name exists") from None
    return AuthorOut(**author)


@router.delete("/{author_id}", name="delete_author", status_code=204,
               dependencies=[Depends(authorized("delete-author"))], responses=openapi_responses(404))
async def delete_author(request: Request, author_id: AuthorId) -> Response:
    _note(request, {"author_id": author_id})
    if not await store.delete_author(request.app.state.engine, author_id):
        _note(request, {"author_id": author_id}, f"author {author_id} not found")
        raise Problem(404, "not_found", f"author {author_id} not found")
    return Response(status_code=204)
