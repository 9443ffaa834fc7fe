"""Start a server binary and wait until its readiness URL answers; stop it for good."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path


def start_ready(argv: Sequence[str], ready_url: str, log_path: Path, what: str,
                timeout: float = 30.0, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """The running process once ``ready_url`` answers 200; its log tail in the error otherwise.

    ``env``: the process's whole environment (default: this one's)."""
    proc = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=log_path.open("wb"),
                            env=dict(env) if env is not None else None)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(ready_url, timeout=2) as response:
                if response.status == 200:
                    return proc
        except (OSError, urllib.error.URLError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
            raise RuntimeError(f"{what} did not become ready:\n{log[-3000:]}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
