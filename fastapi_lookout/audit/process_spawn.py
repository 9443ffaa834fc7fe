"""Starting the writer process so that SIGINT and SIGTERM cannot kill it, from its first instruction on.

Why: the app stops its writer in order (a stop frame: commit, or spool what the
database will not take). A signal sent to every process of the service — Ctrl-C
in a terminal, ``kill -TERM -PGID``, systemd's ``KillMode=control-group`` —
must not kill the writer first. The writer sets SIG_IGN itself
(``process_child.main``), but only once its code runs: before that, during the
interpreter's start-up and up to a second of imports on a busy machine, the
default action would kill it with every row it was sent.

How: SIGINT and SIGTERM are blocked in the spawning thread around the fork
and exec. A blocked signal mask survives both, so the child starts with the two
blocked: one sent meanwhile stays pending, and is discarded when the child sets
SIG_IGN (which discards pending signals) and unblocks them. No ``preexec_fn``
(unsafe in a process with threads). In the app the block lasts only the
``Popen`` call (the fork and exec, which held the event loop before as well):
a signal for the app meanwhile is handled by a thread that does not block it,
or delivered the moment the mask is restored; never lost.

Not chosen: a new session or process group (``start_new_session``) keeps a
terminal's Ctrl-C and ``kill -PGID`` away, but systemd signals every process of
the unit's cgroup whatever its group; and a bootstrap ``python -c`` that
ignores the signals before importing anything leaves the interpreter's own
start-up exposed. The child stays in the app's process group, so a SIGKILL
to the group still removes both.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import Final

__all__ = ["SHIELDED_SIGNALS", "spawn_shielded", "unshield", "wait_exit"]

SHIELDED_SIGNALS: Final = frozenset({signal.SIGINT, signal.SIGTERM})


def spawn_shielded(argv: Sequence[str], *, pass_fds: Sequence[int], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` with SIGINT and SIGTERM blocked; the child must ignore, then unblock, them."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SHIELDED_SIGNALS)
    try:
        return subprocess.Popen(list(argv), pass_fds=tuple(pass_fds), env=dict(env), stdin=subprocess.DEVNULL)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def unshield() -> None:
    """In the child, first: ignore the two signals (discarding any pending), then stop blocking them."""
    for signum in SHIELDED_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SHIELDED_SIGNALS)


async def wait_exit(process: subprocess.Popen[bytes]) -> int:
    """The child's exit status, awaited without blocking the loop: one waiting thread per child,
    as asyncio's own ``ThreadedChildWatcher`` does."""
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[int] = loop.create_future()

    def settle(code: int) -> None:
        if not exited.done():
            exited.set_result(code)

    def wait() -> None:
        code = process.wait()
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
            loop.call_soon_threadsafe(settle, code)

    threading.Thread(target=wait, name=f"audit-writer-wait-{process.pid}", daemon=True).start()
    return await exited
