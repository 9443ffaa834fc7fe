"""``instrument(app)`` on a bare FastAPI app: what a user of the library gets with one call."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import orjson
import pytest
from fastapi import FastAPI, HTTPException
from prometheus_client import REGISTRY
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_lookout import instrument
from fastapi_lookout.logging import configure_logging
from fastapi_lookout.logging import flush as flush_logs
from tests.support.problems import assert_problem


class Capture:
    """A real file the log sink writes to (a file never blocks a writer, unlike an undrained pipe)."""

    def __init__(self, path) -> None:
        self.path = path
        self.file = open(path, "wb")  # noqa: SIM115 - closed by the fixture

    def fileno(self) -> int:
        return self.file.fileno()

    def lines(self) -> list[dict]:
        flush_logs()  # lines written on the event loop are queued until the loop's iteration ends
        return [orjson.loads(line) for line in self.path.read_bytes().splitlines() if line.strip()]


class Teapot:
    """A middleware added after instrument(): it must still sit inside the instrumentation."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/silent":
            return  # answers nothing: the server will send a 500
        if scope["type"] == "http" and scope["path"] == "/teapot":
            await send({"type": "http.response.start", "status": 418, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def bare_app(tmp_path, restore_logging) -> Iterator[tuple[FastAPI, Capture]]:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict:
        return {"item_id": item_id}

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("kaboom")

    instrument(app)
    app.add_middleware(Teapot)
    capture = Capture(tmp_path / "stdout.log")
    configure_logging(stream=capture, error_file=str(tmp_path / "errors.log"))
    yield app, capture
    capture.file.close()


async def test_one_call_gives_metrics_ids_and_access_lines(bare_app):
    app, capture = bare_app
    before = value("http_requests_total", method="GET", endpoint="/items/{item_id}", status_code="200")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/items/7", headers={"X-Correlation-ID": "bare-1"})
        scrape = await client.get("/metrics")
    assert response.headers["x-correlation-id"] == "bare-1"
    assert value("http_requests_total", method="GET", endpoint="/items/{item_id}", status_code="200") == before + 1
    assert 'endpoint="/items/{item_id}"' in scrape.text
    access = [ln for ln in capture.lines() if ln["logger"] == "app.access"]
    assert [(ln["request_id"], ln["endpoint"], ln["path"], ln["status_code"]) for ln in access] == [
        ("bare-1", "/items/{item_id}", "/items/7", 200)
    ]


async def test_unhandled_exception_is_a_problem_500_counted_and_logged_with_traceback(bare_app, tmp_path):
    app, capture = bare_app
    before = value("app_errors_total", error_type="RuntimeError", handler="/boom")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/boom", headers={"X-Correlation-ID": "boom-1"})
    body = assert_problem(response, 500, "internal_error")
    assert body["request_id"] == "boom-1" and "kaboom" not in response.text
    assert value("app_errors_total", error_type="RuntimeError", handler="/boom") == before + 1
    assert value("http_requests_total", method="GET", endpoint="/boom", status_code="500") >= 1
    errors = [orjson.loads(line) for line in (tmp_path / "errors.log").read_bytes().splitlines()]
    crash = [e for e in errors if e["message"] == "unhandled exception"]
    assert crash and "RuntimeError: kaboom" in crash[0]["exception"] and crash[0]["request_id"] == "boom-1"
    access = [ln for ln in capture.lines() if ln["logger"] == "app.access" and ln["request_id"] == "boom-1"]
    assert access[0]["status_code"] == 500 and access[0]["level"] == "error"


async def test_an_app_that_returns_without_answering_is_counted_and_logged_as_500(bare_app):
    app, capture = bare_app
    before = value("http_requests_total", method="GET", endpoint="unmatched", status_code="500")
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": "/silent", "raw_path": b"/silent", "root_path": "", "query_string": b"",
             "headers": [(b"x-correlation-id", b"silent-1")], "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 80), "state": {}}
    await app(scope, receive, send)
    assert sent == []  # nothing invented: the server answers a silent app
    assert value("http_requests_total", method="GET", endpoint="unmatched", status_code="500") == before + 1
    access = [ln for ln in capture.lines() if ln["logger"] == "app.access" and ln["request_id"] == "silent-1"]
    assert [(ln["status_code"], ln["level"]) for ln in access] == [(500, "error")]


async def test_middleware_added_later_is_still_inside_the_instrumentation(bare_app):
    app, _ = bare_app
    before = value("http_requests_total", method="GET", endpoint="unmatched", status_code="418")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/teapot")
    assert response.status_code == 418 and "x-correlation-id" in response.headers
    assert value("http_requests_total", method="GET", endpoint="unmatched", status_code="418") == before + 1


def test_instrumenting_twice_is_refused(restore_logging):
    app = FastAPI()
    instrument(app, configure_logs=False)
    with pytest.raises(RuntimeError):
        instrument(app, configure_logs=False)


async def test_a_log_sink_that_fails_never_fails_the_request(tmp_path, restore_logging):
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict:
        return {"ok": True}

    instrument(app, configure_logs=False)
    broken = open(tmp_path / "gone.log", "wb")  # noqa: SIM115
    configure_logging(stream=broken)
    os.close(broken.fileno())  # every write now fails with EBADF
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        responses = [await client.get("/ok") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]


def test_human_console_format_keeps_the_error_file_in_json(tmp_path, restore_logging):
    import structlog

    out = tmp_path / "console.log"
    with open(out, "wb") as stream:
        configure_logging(console_format="human", stream=stream, error_file=str(tmp_path / "errors.log"))
        structlog.get_logger("app.human").error("disk on fire", request_id="human-1")
    console = out.read_text()
    assert "disk on fire" in console and not console.lstrip().startswith("{")
    line = orjson.loads((tmp_path / "errors.log").read_bytes().splitlines()[-1])
    assert line["message"] == "disk on fire" and line["logger"] == "app.human" and line["level"] == "error"


class Item(BaseModel):
    name: str


def problem_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def read(item_id: int) -> dict:
        if item_id == 0:
            raise HTTPException(409, "item 0 is taken")
        return {"item_id": item_id}

    @app.delete("/items/{item_id}")
    async def delete(item_id: int) -> None:
        return None

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    return app


async def test_an_instrumented_apps_errors_are_all_problem_details(restore_logging):
    app = instrument(problem_app(), configure_logs=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert_problem(await client.get("/nowhere"), 404, "not_found")
        assert assert_problem(await client.get("/items/0"), 409, "conflict")["detail"] == "item 0 is taken"
        not_allowed = await client.put("/items/1")
        assert_problem(not_allowed, 405, "method_not_allowed")
        assert not_allowed.headers["allow"] == "DELETE, GET"  # every route of the path, not the first one's
        invalid = assert_problem(await client.post("/items", json={"name": 3, "password": "s3cret"}), 422,
                                 "validation_failed")
        assert invalid["errors"] == [{"loc": ["body", "name"], "msg": "Input should be a valid string",
                                      "type": "string_type"}]
        malformed = await client.post("/items", content=b"{nope", headers={"content-type": "application/json"})
        assert_problem(malformed, 400, "malformed_json")
        assert "s3cret" not in invalid["detail"] and "input" not in invalid["errors"][0]
    spec = app.openapi()
    assert "Problem" in spec["components"]["schemas"] and "HTTPValidationError" not in spec["components"]["schemas"]
    post = spec["paths"]["/items"]["post"]["responses"]
    assert set(post) == {"200", "400", "422", "500"}
    assert post["422"]["content"] == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


async def test_problem_details_can_be_left_off_and_an_apps_own_handler_is_kept(restore_logging):
    from fastapi.responses import PlainTextResponse

    plain = instrument(problem_app(), configure_logs=False, problem_details=False)
    own = problem_app()

    @own.exception_handler(404)
    async def teapot(request, exc) -> PlainTextResponse:
        return PlainTextResponse("mine", status_code=404)

    instrument(own, configure_logs=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=plain), base_url="http://t") as client:
        assert (await client.get("/nowhere")).json() == {"detail": "Not Found"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=own), base_url="http://t") as client:
        assert (await client.get("/nowhere")).text == "mine"
        assert_problem(await client.get("/items/0"), 409)


def test_the_servers_supervisor_process_writes_no_metric_files(tmp_path):
    """uvicorn's supervisor imports app.serve (and with it the settings) but serves nothing: a metric file of
    its own would be merged into every multiprocess scrape as a third process."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import app.serve"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
