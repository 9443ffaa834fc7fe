"""Correlation ids: accept a client's ``X-Correlation-ID`` only when it is safe to log and to label an exemplar with."""

from __future__ import annotations

import os
import re
from typing import Final

HEADER: Final = b"x-correlation-id"
MAX_LENGTH: Final = 64
_SAFE: Final = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def new_id() -> str:
    return os.urandom(16).hex()


def accept(raw: bytes | None) -> str:
    """The client's id when well-formed (1-64 of ``A-Za-z0-9._:-``), else a fresh random one."""
    if raw and len(raw) <= MAX_LENGTH and _SAFE.fullmatch(raw):
        return raw.decode("ascii")
    return new_id()
