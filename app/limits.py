"""Request body size limit as a pure-ASGI layer: a 413 problem before the body is read
(Content-Length over the limit) or the moment the bytes received pass it (any framing,
chunked included), never after buffering the body.

When a streamed body passes the limit the 413 is sent at once and the application's
``receive`` raises, so it stops reading; whatever the application then tries to send
(FastAPI turns the failed read into a 400) is dropped: the client has its answer.
"""

from __future__ import annotations

import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_lookout.problems import send_problem


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, send: Send, scope: Scope) -> None:
        await send_problem(send, scope, 413, "payload_too_large", f"request body exceeds {self.max_bytes} bytes",
                           headers=[(b"connection", b"close")], max_bytes=self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length":
                if not value.isdigit():
                    await send_problem(send, scope, 400, "bad_request", "malformed Content-Length")
                    return
                if int(value) > self.max_bytes:
                    await self._too_large(send, scope)
                    return
        received = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, started, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not started:
                        refused = started = True
                        await self._too_large(send, scope)
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out already
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited_receive, tracking_send)
