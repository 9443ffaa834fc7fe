"""A throwaway PostgreSQL cluster on 127.0.0.1 at a free port (Debian's `postgresql`).

``initdb`` refuses to run as root, so as root the cluster is created and run as
the ``postgres`` system user the Debian package creates.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.binaries import free_port, which


def _bindir() -> Path | None:
    initdb = which("initdb", "/usr/lib/postgresql/*/bin/initdb")
    return Path(initdb).parent if initdb else None


def available() -> bool:
    return _bindir() is not None and shutil.which("psql") is not None


class PostgresServer:
    """``start()``, ``stop()``, ``restart()``; ``url(db)`` (asyncpg), ``dsn(db)`` (libpq)."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="pg-test-"))
        self.datadir = self.root / "data"
        self.user = "postgres"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as_user = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]
        self._run(
            [str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user, "-A", "trust",
             "--no-sync", "-E", "UTF8", "--locale=C"]
        )
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
            )

    def _run(self, argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as_user, *argv], check=check, capture_output=True, text=True, cwd=self.root
        )

    def start(self) -> None:
        self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.root / "log"), "-w",
             "-t", "60", "start"]
        )
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"], check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.psql("SELECT 1", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not accept connections on {self.port}")

    def psql(
        self, sql: str, db: str = "postgres", check: bool = True, user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", user or self.user, "-d", db, "-c", sql],
            check=check, capture_output=True, text=True,
        )

    def create_database(self, name: str) -> None:
        self.psql(f'CREATE DATABASE "{name}"')

    def url(self, db: str = "postgres", user: str | None = None) -> str:
        return f"postgresql+asyncpg://{user or self.user}@127.0.0.1:{self.port}/{db}"

    def dsn(self, db: str = "postgres", user: str | None = None) -> str:
        return f"postgresql://{user or self.user}@127.0.0.1:{self.port}/{db}"

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
