"""Multiprocess mode: one exporter process merges the workers' files and answers every worker's scrapes.

A worker that merges the files itself keeps a cache as large as the files (at 25,000 series ~56k
objects that its garbage collector then scans on every full collection, making those ~40 % longer),
pays a first read of every entry (~0.7 s of CPU, in steps, but gen-2 collections of 70-150 ms fall
into it), and merges on every scrape it answers. So instead:

- the first worker whose ``/metrics`` is asked starts the exporter (``main()`` here) as a child process;
  a lock on ``<dir>/exporter.lock`` keeps it to one per directory (a second one exits at once);
- every worker's ``/metrics`` sends the format over ``<dir>/exporter.sock`` and passes the answer on:
  the worker only moves bytes;
- the exporter takes in new entries every ``WARM_SECONDS`` (so a scrape rarely finds many), merges
  and renders what changed when asked, and leaves when the worker that started it is gone (the next
  scrape starts another).

If no exporter answers within ``START_SECONDS``, or it failed, or the socket path is too long (or
there are no Unix sockets), the worker merges the files itself (``SharedFiles``, in steps) and does
not ask again for ``GIVE_UP_SECONDS``.

Protocol: one line, ``text`` or ``openmetrics``; the answer is ``+`` and the body, or ``-`` and why
not; then the exporter closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time

from fastapi_lookout.multiprocess_files import SharedFiles

SOCKET_NAME, LOCK_NAME = "exporter.sock", "exporter.lock"
WARM_SECONDS = 5.0
START_SECONDS = 10.0
"""How long a scrape waits for a starting exporter (its imports and first read of the files)."""
RESTART_SECONDS = 1.0
"""A worker starts an exporter at most this often (one that finds the lock taken exits at once)."""
GIVE_UP_SECONDS = 60.0
"""After an exporter failed (or none answered in time), how long a worker merges the files itself
without asking: a scrape should not wait ``START_SECONDS`` each time for one that cannot start."""
_SOCKET_PATH_MAX = 100  # AF_UNIX paths: 108 bytes on Linux, 104 on macOS


class ExporterClient:
    """A worker's side: ask the directory's exporter, starting it when none answers."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.socket = os.path.join(directory, SOCKET_NAME)
        self._started: subprocess.Popen[bytes] | None = None
        self._started_at = -RESTART_SECONDS
        self._given_up_until = 0.0

    async def fetch(self, openmetrics: bool) -> bytes | None:
        """The exposition, or None when no exporter answered (the caller merges the files itself)."""
        if (len(self.socket.encode()) > _SOCKET_PATH_MAX or time.monotonic() < self._given_up_until
                or not hasattr(asyncio, "open_unix_connection")):  # no Unix sockets (Windows)
            return None
        deadline = time.monotonic() + START_SECONDS
        while True:
            if not self._still_hoping():
                break
            try:
                return await self._ask(openmetrics)
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    break
                self._start()
                await asyncio.sleep(0.05)
        self._given_up_until = time.monotonic() + GIVE_UP_SECONDS
        return None

    async def _ask(self, openmetrics: bool) -> bytes | None:
        reader, writer = await asyncio.open_unix_connection(self.socket, limit=1 << 20)
        try:
            writer.write(b"openmetrics\n" if openmetrics else b"text\n")
            await writer.drain()
            answer = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return answer[1:] if answer[:1] == b"+" else None

    def _start(self) -> None:
        """Starts an exporter unless the one this worker started still runs (it may be loading)."""
        if self._started is not None or time.monotonic() - self._started_at < RESTART_SECONDS:
            return
        self._started_at = time.monotonic()
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}  # it writes no metric files
        self._started = subprocess.Popen(
            [sys.executable, "-c", "from fastapi_lookout.multiprocess_exporter import main; main()", self.directory,
             str(os.getpid())],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
        )

    def _still_hoping(self) -> bool:
        """Reaps the exporter this worker started if it exited: fine if it found the lock taken (another
        one serves), not if it failed."""
        if self._started is None or self._started.poll() is None:
            return True
        failed = self._started.returncode != 0
        self._started = None
        return not failed

    def close(self) -> None:
        """Stops the exporter this client started, if it still runs (tests; a worker need not)."""
        if self._started is not None:
            self._started.terminate()
            self._started.wait(10)
            self._started = None


async def serve(directory: str, parent: int) -> None:
    """The exporter: answers on ``<dir>/exporter.sock`` until process ``parent`` is gone."""
    import fcntl  # POSIX, as the exporter is (a worker elsewhere merges the files itself)

    from fastapi_lookout.exposition import encode_openmetrics, encode_text

    lock = open(os.path.join(directory, LOCK_NAME), "a")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another exporter serves this directory
    path = os.path.join(directory, SOCKET_NAME)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by an exporter that was killed
    files = SharedFiles(directory)
    turn = asyncio.Lock()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            kind = (await reader.readline()).strip()
            async with turn:
                for _ in files.refresh():
                    pass
                body = encode_openmetrics(files) if kind == b"openmetrics" else encode_text(files)
            writer.write(b"+" + body)
        except Exception as exc:  # the worker falls back to merging the files itself
            writer.write(b"-" + f"{type(exc).__name__}: {exc}".encode())
        finally:
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()

    server = await asyncio.start_unix_server(answer, path)
    warmed = time.monotonic()
    try:
        while os.getppid() == parent and os.path.isdir(directory):
            await asyncio.sleep(0.5)
            if time.monotonic() - warmed >= WARM_SECONDS:
                async with turn:
                    for _ in files.refresh(values=False):  # take in new entries: a scrape then finds few
                        pass
                warmed = time.monotonic()
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def main() -> None:
    """``python -c "from fastapi_lookout.multiprocess_exporter import main; main()" <directory> <parent pid>``."""
    directory, parent = sys.argv[1], int(sys.argv[2])
    asyncio.run(serve(directory, parent))
