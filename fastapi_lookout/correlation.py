"""Correlation ids: accept a client's ``X-Correlation-ID`` only when it is safe to log and to label an exemplar with."""

from __future__ import annotations

import itertools
import os
import re
from typing import Final

HEADER: Final = b"x-correlation-id"
MAX_LENGTH: Final = 64
_SAFE: Final = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

_prefix = 0
_counter = itertools.count()


def _reseed() -> None:
    """A fresh random prefix and counter: at import and in every forked child (gunicorn
    preload, multiprocessing fork), so two workers never hand out the same ids."""
    global _prefix, _counter
    _prefix = int.from_bytes(os.urandom(8)) << 64
    _counter = itertools.count(int.from_bytes(os.urandom(4)))


_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """32 hex digits: 64 random bits fixed per process, then a 64-bit counter. Unique
    without a system call or 128 fresh random bits per request; a correlation id
    is a label, not a secret, so being sequential within a process is fine."""
    return (_prefix | next(_counter)).to_bytes(16).hex()  # half the cost of an f-string with :016x


def accept(raw: bytes | None) -> str:
    """The client's id when well-formed (1-64 of ``A-Za-z0-9._:-``), else a fresh random one."""
    if raw and len(raw) <= MAX_LENGTH and _SAFE.fullmatch(raw):
        return raw.decode("ascii")
    return new_id()
