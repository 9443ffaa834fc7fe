"""``instrument(app)`` around an app with ``MANY_ROUTES`` routes ``/r{i}/{item_id}`` (GET, POST, DELETE):
hit every route with each method and one 422 and it holds ~49 series per route. ``/pid`` says which
worker answered."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from fastapi_lookout import instrument


def _handlers(i: int) -> tuple[Callable[..., Any], ...]:
    async def get_item(item_id: int) -> dict:
        return {"route": i, "item_id": item_id}

    async def post_item(item_id: int) -> dict:
        return {"route": i, "created": item_id}

    async def delete_item(item_id: int) -> dict:
        return {"route": i, "deleted": item_id}

    return get_item, post_item, delete_item


def create_app(routes: int) -> FastAPI:
    app = FastAPI(title="many routes")

    @app.get("/pid")
    async def pid() -> dict:
        return {"pid": os.getpid()}

    for i in range(routes):
        for method, handler in zip(("GET", "POST", "DELETE"), _handlers(i), strict=True):
            app.add_api_route(f"/r{i}/{{item_id}}", handler, methods=[method], name=f"{method.lower()}_{i}")
    return instrument(app, configure_logs=False)


app = create_app(int(os.environ.get("MANY_ROUTES", "510")))
