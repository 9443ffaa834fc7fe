"""One exporter process per directory answers every worker's scrapes with what the files say."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastapi_lookout.exposition import MetricsEndpoint
from fastapi_lookout.multiprocess_exporter import LOCK_NAME, START_SECONDS, ExporterClient
from tests.support.workers import Worker, collector_text

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workers(tmp_path) -> Iterator[list[Worker]]:
    started = [Worker(tmp_path) for _ in range(3)]
    for n, worker in enumerate(started):
        worker.send(count="a", by=n + 1)
        worker.send(observe="a", value=0.5)
        worker.send(set="livesum", k="x", value=2.0)
    yield started
    for worker in started:
        worker.kill()


@pytest.fixture
def clients(tmp_path) -> Iterator[list[ExporterClient]]:
    made = [ExporterClient(str(tmp_path)) for _ in range(3)]
    yield made
    for client in made:
        client.close()


def lines(text: bytes | None) -> list[bytes]:
    assert text is not None
    return sorted(text.splitlines())


def lock_free(directory: Path) -> bool:
    with open(directory / LOCK_NAME, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(lock, fcntl.LOCK_UN)
        return True


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


async def test_the_exporter_answers_what_the_files_say(tmp_path, workers, clients):
    client = clients[0]
    assert lines(await client.fetch(openmetrics=False)) == lines(collector_text(tmp_path))
    assert lines(await client.fetch(openmetrics=True)) == lines(collector_text(tmp_path, openmetrics=True))
    workers[1].send(count="b", by=5)  # later writes are in the next answer
    workers[2].send(many=300, prefix="new")
    assert lines(await client.fetch(openmetrics=False)) == lines(collector_text(tmp_path))


async def test_one_exporter_serves_every_worker(tmp_path, workers, clients):
    answers = await asyncio.gather(*(client.fetch(openmetrics=False) for client in clients))
    assert all(lines(answer) == lines(collector_text(tmp_path)) for answer in answers)


    def running() -> list:
        return [c._started for c in clients if c._started is not None and c._started.poll() is None]

    wait_for(lambda: len(running()) == 1)  # the others (if they started one) find the lock taken and leave
    assert not lock_free(tmp_path)


def test_the_exporter_leaves_with_the_worker_that_started_it(tmp_path, workers):
    worker = subprocess.run(  # a worker that scrapes once, then exits
        [sys.executable, "-c", "import asyncio, sys; from fastapi_lookout.multiprocess_exporter import ExporterClient;"
                               f"print(len(asyncio.run(ExporterClient({str(tmp_path)!r}).fetch(False))))"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60, check=True)
    assert int(worker.stdout) > 0
    wait_for(lambda: lock_free(tmp_path))  # its exporter noticed and left


async def test_a_worker_merges_the_files_itself_when_no_exporter_answers(tmp_path, workers, monkeypatch):
    monkeypatch.setattr("fastapi_lookout.multiprocess_exporter._SOCKET_PATH_MAX", 0)  # no socket path fits
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/metrics", "headers": [(b"accept", b"text/plain")]}
    assert await MetricsEndpoint()(scope, receive, send) == 200
    assert lines(sent[1]["body"]) == lines(collector_text(tmp_path))
    assert lock_free(tmp_path) if (tmp_path / LOCK_NAME).exists() else True  # no exporter was started


async def test_a_worker_whose_exporter_fails_stops_waiting_for_one(tmp_path, workers):
    (tmp_path / LOCK_NAME).mkdir()  # the exporter cannot open its lock: it fails at once
    client = ExporterClient(str(tmp_path))
    started = time.monotonic()
    assert await client.fetch(openmetrics=False) is None
    assert time.monotonic() - started < START_SECONDS  # it did not wait for the deadline
    again = time.monotonic()
    assert await client.fetch(openmetrics=False) is None  # and does not try again for a while
    assert time.monotonic() - again < 0.5 and client._started is None
