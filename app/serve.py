"""Run the reference service with every server-side limit applied: ``python -m app.serve``.

The Makefile's ``run``, the Dockerfile's CMD and the tests' ``AppProcess`` start
the service through this launcher, so what is tested is what runs. Beyond
``uvicorn app.main:app`` it applies the settings uvicorn does not read itself:
the request-line, header, header-timeout and connection limits
(``app.server_limits``), the idle keep-alive timeout, and the WebSocket
message size enforced while a frame is received (``WS_MAX_MESSAGE_BYTES``:
close 1009) instead of after it was buffered. uvicorn's access log stays off:
the instrumentation writes the access line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn

from app.settings import get_settings

APP: str = "app.main:app"
PROTOCOLS: dict[str, str] = {
    "httptools": "app.server_limits:GuardedHttpToolsProtocol",
    "h11": "app.server_limits:GuardedH11Protocol",
}
"""By import path: uvicorn loads them in each worker. Imported here, the library would come along
into the supervisor of ``--workers N``, whose metrics would then leave a multiprocess file of their own."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--http", choices=sorted(PROTOCOLS), default="httptools",
                   help="HTTP parser; h11 lets made-up methods reach the app (httptools refuses them)")
    p.add_argument("--timeout-graceful-shutdown", type=float, default=20.0,
                   help="seconds in-flight requests get after SIGTERM")
    return p


def uvicorn_options(args: argparse.Namespace) -> dict[str, object]:
    settings = get_settings()
    return {
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "http": PROTOCOLS[args.http],
        "ws": "websockets-sansio",  # after a close it discards what the peer still sends, not queue it
        "ws_max_size": settings.ws_max_message_bytes,
        "timeout_keep_alive": settings.server_keepalive_timeout_seconds,
        # h11's own bound must never answer first (a plain 400): the guard answers 414/431 below it.
        "h11_max_incomplete_event_size": settings.server_max_header_bytes + 1024,
        "timeout_graceful_shutdown": args.timeout_graceful_shutdown,
        "access_log": False,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    uvicorn.run(APP, **uvicorn_options(args))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
