"""Finding real server binaries, and skipping (locally) or failing (in CI) without them."""

from __future__ import annotations

import glob
import os
import shutil
import socket

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(what: str, found: object, hint: str) -> None:
    """Skip the test when ``found`` is falsy; conftest turns such skips into failures in CI."""
    if not found:
        pytest.skip(f"{what} not available ({hint})")


def which(name: str, *extra_globs: str) -> str | None:
    path = shutil.which(name)
    if path:
        return path
    for pattern in extra_globs:
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[-1]
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
