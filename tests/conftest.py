"""Shared fixtures. In CI (``CI=true``) a skipped test is a failed test: every
real server this suite needs is installed by ``.ci/run``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest
import structlog

from fastapi_lookout import logging as app_logging
from tests.support import postgres as pg
from tests.support.app_process import AppProcess
from tests.support.binaries import in_ci, require
from tests.support.traffic import Sent, drive


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, which must run every test: {reason}"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests that call ``configure_logging`` in this process: put the previous setup back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    state = vars(app_logging._state).copy()
    yield
    vars(app_logging._state).update(state)
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pg.PostgresServer]:
    require("PostgreSQL", pg.available(), "apt-get install postgresql")
    server = pg.PostgresServer()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def postgres_db(postgres_server: pg.PostgresServer) -> str:
    """A fresh, empty database on the shared server; returns its name."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    return name


@pytest.fixture(scope="session")
def service() -> Iterator[tuple[AppProcess, Sent]]:
    """One real service process (SQLite, h11 so made-up methods reach the app) after the full traffic mix."""
    with AppProcess(http="h11") as app:
        sent = drive(app)
        sent.scrape = httpx.get(f"{app.base_url}/metrics", timeout=10).text  # before other tests add traffic
        yield app, sent
