"""Correlation ids: accept a client's ``X-Correlation-ID`` only when it is safe to log and to label an exemplar with."""

from __future__ import annotations

import random
import re
from typing import Final

HEADER: Final = b"x-correlation-id"
MAX_LENGTH: Final = 64
_random = random.Random()
_SAFE: Final = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def new_id() -> str:
    """128 random bits as 32 hex digits. A correlation id is not a secret, so the
    fast Mersenne Twister will do (no syscall per request, unlike ``os.urandom``)."""
    return f"{_random.getrandbits(128):032x}"


def accept(raw: bytes | None) -> str:
    """The client's id when well-formed (1-64 of ``A-Za-z0-9._:-``), else a fresh random one."""
    if raw and len(raw) <= MAX_LENGTH and _SAFE.fullmatch(raw):
        return raw.decode("ascii")
    return new_id()
