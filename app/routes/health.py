"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from fastapi_lookout import problems
from fastapi_lookout.problems import openapi_responses

router = APIRouter(tags=["health"])


@router.get("/health", name="health", responses=openapi_responses(414, 431, 503))
async def health(request: Request) -> Response:
    """200 when the database answers; a 503 problem (``database_unavailable``) when it does not."""
    body: dict[str, Any] = {"status": "ok", "version": request.app.version}
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        body["database"] = "ok"
    except Exception as exc:
        return problems.response(request.scope, 503, "database_unavailable",
                                 f"the database does not answer ({type(exc).__name__})", version=request.app.version)
    writer = getattr(request.app.state, "audit_writer", None)
    if writer is not None:
        body["audit_pending"] = writer.pending
        # Rows spooled for another database, set aside at start: healthy, but waiting for a reviewer.
        body["audit_spool_foreign_rows"] = writer.foreign_spool_rows
    return JSONResponse(body)
