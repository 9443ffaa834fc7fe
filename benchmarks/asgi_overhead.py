"""In-process CPU cost of ``instrument(app)`` per request, without a server or a socket.

Calls the ASGI app directly in a loop (same scope each time), bare and
instrumented, interleaved, and reports µs per request and the difference.
Deterministic enough to compare two commits; ``overhead.py`` (wrk) is the
end-to-end number.

    .venv/bin/python benchmarks/asgi_overhead.py [--requests 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from starlette.types import ASGIApp

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent / "variants")]

from _base import create_app  # noqa: E402

from fastapi_lookout import instrument  # noqa: E402
from fastapi_lookout.logging import configure_logging  # noqa: E402

SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
    "path": "/api/items/42", "raw_path": b"/api/items/42", "root_path": "", "query_string": b"",
    "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
}


async def _receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict) -> None:
    return None


async def run(app: ASGIApp, n: int) -> float:
    start = time.process_time()  # CPU of this process only: other load on the machine matters less
    for _ in range(n):
        await app(dict(SCOPE), _receive, _send)
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bare = create_app()
    ours = create_app()
    instrument(ours, configure_logs=False)
    configure_logging(stream=open(os.devnull, "wb"))  # noqa: SIM115
    results: dict[str, list[float]] = {"bare": [], "instrumented": []}
    loop = asyncio.new_event_loop()
    loop.run_until_complete(run(bare, 2000))
    loop.run_until_complete(run(ours, 2000))
    for _ in range(args.rounds):
        results["bare"].append(loop.run_until_complete(run(bare, args.requests)))
        results["instrumented"].append(loop.run_until_complete(run(ours, args.requests)))
    b, o = statistics.median(results["bare"]), statistics.median(results["instrumented"])
    print(f"bare          {b:7.1f} µs/request")
    print(f"instrumented  {o:7.1f} µs/request")
    print(f"added         {o - b:+7.1f} µs/request (median of {args.rounds} rounds x {args.requests})")


if __name__ == "__main__":
    main()
