"""The reference service as a real process (``python -m app.serve``: uvicorn with the server-side
limits) on 127.0.0.1, with its stdout captured.

Contract tests read what the process really emits: the ``/metrics`` text,
the JSON lines on stdout, the rows in the database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.support.binaries import free_port

ROOT = Path(__file__).resolve().parents[2]


class AppProcess:
    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        workers: int = 1,
        http: str = "httptools",
        workdir: Path | None = None,
        new_session: bool = False,
    ) -> None:
        """``new_session``: the service leads a process group of its own (with its writer processes), which a
        test can signal as a whole, as Ctrl-C or systemd's ``KillMode=control-group`` do."""
        self.port = free_port()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="app-test-"))
        self.stdout_path = self.workdir / "stdout.log"
        self.key_path = self.workdir / "dev-issuer-key.pem"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir / 'app.db'}",
            "DEV_ISSUER_KEY_PATH": str(self.key_path),
            "LOG_ERROR_FILE": str(self.workdir / "errors.log"),
            "AUDIT_SPOOL_PATH": str(self.workdir / "audit-spool.jsonl"),
            "ENVIRONMENT": "test",
            "AUDIT_BATCH_TIMEOUT_SECONDS": "0.2",
            **(env or {}),
        }
        self.argv = [  # the launcher the Makefile and the Dockerfile use, with the server-side limits
            sys.executable, "-m", "app.serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(workers), "--http", http, "--timeout-graceful-shutdown", "20",
        ]
        self.new_session = new_session
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> AppProcess:
        self._out = self.stdout_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, cwd=self.workdir, env=self.env, stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=self.new_session,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code in (200, 503):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"app did not answer within {timeout} s:\n{self.output()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0, *, group: bool = False) -> int:
        """Signal the process (``group``: every process of its group, see ``new_session``) and wait for it;
        returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            if group:
                assert self.new_session, "only a service started with new_session leads a group of its own"
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()

    # -- what it emitted ----------------------------------------------------------
    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def json_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.output().splitlines():
            if raw.startswith("{"):
                lines.append(orjson.loads(raw))
        return lines

    def wait_for_lines(self, predicate: Any, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.json_lines() if predicate(line)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def token(self, username: str, roles: Iterable[str], **kwargs: Any) -> str:
        from app.auth.dev_issuer import DevIssuer

        return DevIssuer.load_or_create(self.key_path).mint(username, roles, **kwargs)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10.0, **kwargs)
