"""``/api/authors``: the audited, role-protected resource of the reference service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from app import authors as store
from app.routes.deps import authorized, ip_rate_limit
from fastapi_lookout.context import get_context

router = APIRouter(prefix="/api/authors", tags=["authors"], dependencies=[Depends(ip_rate_limit)])

AuthorId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class AuthorIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    bio: str | None = Field(default=None, max_length=2000)


class AuthorOut(BaseModel):
    id: int
    name: str
    bio: str | None
    created_at: str | None


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
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AuthorOut]:
    _note(request, {"limit": limit, "offset": offset})
    return [AuthorOut(**a) for a in await store.list_authors(request.app.state.engine, limit, offset)]


@router.get("/{author_id}", name="get_author", dependencies=[Depends(authorized("get-authors"))])
async def get_author(request: Request, author_id: AuthorId) -> AuthorOut:
    _note(request, {"author_id": author_id})
    author = await store.get_author(request.app.state.engine, author_id)
    if author is None:
        _note(request, {"author_id": author_id}, f"author {author_id} not found")
        raise HTTPException(404, detail={"error": "not_found", "message": f"author {author_id} not found"})
    return AuthorOut(**author)


@router.post("", name="create_author", status_code=201, dependencies=[Depends(authorized("create-author"))])
async def create_author(request: Request, body: AuthorIn) -> AuthorOut:
    _note(request, body.model_dump())
    try:
        author = await store.create_author(request.app.state.engine, body.name, body.bio)
    except store.DuplicateAuthor:
        _note(request, body.model_dump(), f"author {body.name!r} already exists")
        raise HTTPException(409, detail={"error": "conflict", "message": "an author with this name exists"}) from None
    return AuthorOut(**author)


@router.delete(
    "/{author_id}", name="delete_author", status_code=204, dependencies=[Depends(authorized("delete-author"))]
)
async def delete_author(request: Request, author_id: AuthorId) -> Response:
    _note(request, {"author_id": author_id})
    if not await store.delete_author(request.app.state.engine, author_id):
        raise HTTPException(404, detail={"error": "not_found", "message": f"author {author_id} not found"})
    return Response(status_code=204)
