"""The scaling benchmark's app: ``BENCH_ROUTES`` routes ``/r{i}/{item_id}`` (GET, POST, DELETE) and ``/plain``.

``BENCH_LIB`` picks the instrumentation: ``ours`` (``instrument(app)``), ``instrumentator``
(prometheus-fastapi-instrumentator with its defaults) or ``bare`` (none). Every variant also gets
``/_bench/encode``, which times prometheus-client's own encoders on the very registry ``/metrics``
serves (in multiprocess mode: a ``MultiProcessCollector`` over the same directory), so the benchmark
can put them beside the endpoint's figure, and ``/_bench/static``, a body the size of a scrape
rendered once (what moving it costs the server and the machine, without rendering it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from _base import devnull_stream
from fastapi import FastAPI, Response


def _route_handlers(i: int) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    async def get_item(item_id: int) -> dict:
        return {"route": i, "item_id": item_id}

    async def post_item(item_id: int) -> dict:
        return {"route": i, "item_id": item_id, "created": True}

    async def delete_item(item_id: int) -> dict:
        return {"route": i, "item_id": item_id, "deleted": True}

    return get_item, post_item, delete_item


def _timed(encode: Callable[[], bytes]) -> dict[str, float]:
    start = time.perf_counter()
    body = encode()
    return {"ms": (time.perf_counter() - start) * 1000, "bytes": len(body)}


def create_app(routes: int) -> FastAPI:
    app = FastAPI(title="scaling")

    @app.get("/plain")
    async def plain() -> dict:
        return {"ok": True}

    @app.get("/_bench/pid")
    async def pid() -> dict:
        return {"pid": os.getpid()}

    static: list[bytes] = []

    @app.get("/_bench/static")
    async def static_body() -> Response:
        """A body the size of a scrape, rendered once: what moving it costs, without rendering it."""
        if not static:
            from prometheus_client import REGISTRY, generate_latest

            static.append(generate_latest(REGISTRY))
        return Response(static[0], media_type="text/plain")

    @app.get("/_bench/encode")
    async def encode() -> dict:
        from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
        from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

        registry: Any = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        return {"text": _timed(lambda: generate_latest(registry)),
                "openmetrics": _timed(lambda: generate_openmetrics(registry)), "pid": os.getpid()}

    for i in range(routes):
        get_item, post_item, delete_item = _route_handlers(i)
        app.add_api_route(f"/r{i}/{{item_id}}", get_item, methods=["GET"], name=f"get_{i}")
        app.add_api_route(f"/r{i}/{{item_id}}", post_item, methods=["POST"], name=f"post_{i}")
        app.add_api_route(f"/r{i}/{{item_id}}", delete_item, methods=["DELETE"], name=f"delete_{i}")
    return app


def instrumented(routes: int, lib: str) -> FastAPI:
    app = create_app(routes)
    if lib == "ours":
        from fastapi_lookout import instrument
        from fastapi_lookout.logging import configure_logging

        instrument(app, configure_logs=False)
        configure_logging(stream=devnull_stream())
    elif lib == "instrumentator":
        from prometheus_fastapi_instrumentator import Instrumentator

        Instrumentator().instrument(app).expose(app)
    elif lib != "bare":
        raise ValueError(f"BENCH_LIB={lib!r}: ours, instrumentator or bare")
    return app


app = instrumented(int(os.environ.get("BENCH_ROUTES", "50")), os.environ.get("BENCH_LIB", "ours"))
