"""The line sink batches access lines per event-loop iteration without reordering or losing lines."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path

from fastapi_lookout.logging import LineSink, configure_logging


def read(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def test_lines_on_a_loop_are_written_together_when_the_iteration_ends(tmp_path):
    path = tmp_path / "out.log"
    with open(path, "wb") as stream:
        sink = LineSink(stream)
        seen_inside: list[list[bytes]] = []

        async def burst() -> None:
            for i in range(50):
                sink.queue(b"loop-%d\n" % i)
            seen_inside.append(read(path))  # same iteration: nothing written yet
            await asyncio.sleep(0)  # the iteration ends, the batch goes out
            await asyncio.sleep(0)
            seen_inside.append(read(path))

        asyncio.run(burst())
    assert seen_inside[0] == []
    assert seen_inside[1] == [b"loop-%d" % i for i in range(50)]


def test_a_thread_without_a_loop_flushes_everything_queued_before_it_in_order(tmp_path):
    path = tmp_path / "out.log"
    with open(path, "wb") as stream:
        sink = LineSink(stream)

        async def mixed() -> None:
            sink.queue(b"first\n")
            thread = threading.Thread(target=sink.queue, args=(b"from-thread\n",))
            thread.start()
            thread.join()
            sink.queue(b"third\n")
            await asyncio.sleep(0)
            await asyncio.sleep(0)

        asyncio.run(mixed())
    lines = read(path)
    assert lines.index(b"first") < lines.index(b"from-thread") < lines.index(b"third")
    assert sorted(lines) == sorted([b"first", b"from-thread", b"third"])


def test_lines_queued_on_a_loop_that_stopped_are_not_lost(tmp_path):
    path = tmp_path / "out.log"
    with open(path, "wb") as stream:
        sink = LineSink(stream)
        loop = asyncio.new_event_loop()

        async def write_and_stop() -> None:
            sink.queue(b"queued\n")
            loop.stop()

        task = loop.create_task(write_and_stop())
        loop.run_forever()  # stops before the flush callback runs
        assert task.done()
        loop.close()
        assert read(path) == []
        sink.queue(b"after\n")  # no running loop now: flushes the queue too
    assert read(path) == [b"queued", b"after"]


def test_many_threads_never_split_or_drop_a_line(tmp_path):
    path = tmp_path / "out.log"
    with open(path, "wb") as stream:
        sink = LineSink(stream)

        def spam(name: int) -> None:
            for i in range(500):
                (sink.queue if i % 2 else sink.write)(b"%d-%d-%s\n" % (name, i, b"x" * 300))

        threads = [threading.Thread(target=spam, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sink.flush()
    lines = read(path)
    assert len(lines) == 8 * 500
    assert all(line.endswith(b"x" * 300) and line.count(b"-") == 2 for line in lines)


class StaleDescriptor:
    """A descriptor number that was closed, held by an object that will not close it again when collected
    (a file object would, and by then the number may belong to someone else, e.g. an event loop's epoll)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


def test_a_closed_descriptor_counts_lost_lines_and_never_raises(tmp_path):
    fd = os.open(tmp_path / "gone.log", os.O_WRONLY | os.O_CREAT)
    os.close(fd)
    sink = LineSink(StaleDescriptor(fd))  # type: ignore[arg-type]
    sink.write(b"a\n")
    sink.queue(b"b\n")
    assert sink.failed == 2


def test_any_other_line_writes_through_with_the_queue_before_it(tmp_path):
    """A shutdown or crash message must be out before the process can die (no atexit on a re-raised SIGTERM)."""
    path = tmp_path / "out.log"
    with open(path, "wb") as stream:
        sink = LineSink(stream)
        written: list[list[bytes]] = []

        async def shutdown() -> None:
            sink.queue(b"last access\n")
            sink.write(b"Application shutdown complete.\n")
            written.append(read(path))  # before the loop's iteration ends

        asyncio.run(shutdown())
    assert written == [[b"last access", b"Application shutdown complete."]]


def test_uvicorn_never_formats_its_own_access_line(tmp_path, restore_logging):
    """uvicorn formats an access line per request whenever ``uvicorn.access`` has handlers up its
    chain, even when the logger is disabled; ours replaces it, so it must have none."""
    logging.getLogger("uvicorn.access").propagate = True  # what a previous configuration may have left
    with open(tmp_path / "out.log", "wb") as stream:
        configure_logging(stream=stream)
    assert not logging.getLogger("uvicorn.access").hasHandlers()
    assert logging.getLogger("uvicorn.error").hasHandlers()  # the rest of uvicorn still logs through ours
