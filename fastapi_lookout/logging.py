"""Structured logging: one JSON object per line, the fields Loki queries rely on.

``configure_logging()`` is called once at start. It sets up

- structlog for the application (`structlog.get_logger("app.something")`),
- the stdlib root logger (uvicorn, sqlalchemy, alembic, ...) rendered by the
  same pipeline, so every line on stdout has the same shape and a real logger name,
- an error file that always receives ERROR and above as JSON,
- optionally a queue to Loki (``LOKI_URL``) that never blocks a request.

Context (``request_id``, ``user_id``) comes from the ``RequestContext`` the
middleware sets in a contextvar for the request (``context.CURRENT``) and resets
afterwards; nothing is kept in a shared dict.

The access line is the one line written for every request, so it has its own
fast path (`access_log`) that builds the same fields without the processor chain.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from threading import get_ident
from typing import IO, Any, Final

import orjson
import structlog
from structlog.types import EventDict, WrappedLogger

from fastapi_lookout.context import current_log_fields
from fastapi_lookout.redaction import is_secret_key, redact

# The log-line contract. LogQL in the dashboards may only filter on these.
BASE_FIELDS: Final = frozenset(
    {"timestamp", "level", "logger", "message", "environment", "service", "module", "function", "line"}
)
CONTEXT_FIELDS: Final = frozenset({"request_id", "user_id", "username"})
ACCESS_FIELDS: Final = frozenset({"method", "endpoint", "path", "status_code", "duration_ms", "client_ip"})
EVENT_FIELDS: Final = frozenset(
    {"exception", "reason", "required_role", "limit_type", "pkg_id", "req_id", "status", "connection_id",
     "error_type", "dropped", "detail", "transport"}
)
LOG_FIELDS: Final = BASE_FIELDS | CONTEXT_FIELDS | ACCESS_FIELDS | EVENT_FIELDS

ACCESS_LOGGER: Final = "app.access"
ACCESS_MESSAGE: Final = "http request"
LEVELS: Final = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


class LineSink:
    """Writes whole lines to a file descriptor; access lines batched per event-loop iteration.

    ``write`` sends a line at once, after anything queued before it, so the order
    on the descriptor is the order of calls. ``queue`` (the per-request access
    line) defers the write to the end of the running loop's current iteration,
    so a loop that answers several requests per iteration pays one system call
    for all their lines; without a running loop it writes at once. Every other
    line writes through, so a shutdown or crash message is out before the process
    can die (uvicorn ends with a re-raised SIGTERM: no atexit), and at most one
    iteration of access lines is at risk. Lines are never split: one ``os.write``
    per batch, retried for partial writes, under a lock.
    """

    def __init__(self, stream: IO[Any]) -> None:
        self._stream = stream  # keeps the file (and so the descriptor) open
        self._fd = stream.fileno()
        self._lock = threading.Lock()
        self._pending: deque[bytes] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop access lines were last queued on, and its thread."""
        self._loop_thread = 0
        self._flush_scheduled = False
        self.failed = 0
        """Lines lost to write errors (a closed or broken descriptor)."""

    def write(self, line: bytes) -> None:
        """Never raises: a log line that cannot be written must not fail the request."""
        self._pending.append(line)
        self.flush()

    def queue(self, line: bytes) -> None:
        """Like ``write``, but on an event loop the line waits for the end of the loop's iteration."""
        self._pending.append(line)
        if self._flush_scheduled and self._loop.is_running():  # type: ignore[union-attr]  # set when scheduled
            return  # the flush already scheduled on that loop takes this line too
        loop = self._loop
        if loop is None or self._loop_thread != get_ident() or not loop.is_running():
            # Only when the loop may have changed: asyncio.get_running_loop() costs a getpid() syscall.
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._loop, self._loop_thread = loop, get_ident()
        self._flush_scheduled = True
        loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def flush(self) -> None:
        with self._lock:
            pending = self._pending
            if not pending:
                return
            # Lines appended meanwhile wait for the next flush (deque ops are atomic: writers take no lock).
            count = len(pending)
            data = pending.popleft() if count == 1 else b"".join([pending.popleft() for _ in range(count)])
            try:
                written = os.write(self._fd, data)
                if written < len(data):  # a pipe can take part of a large batch: write the rest
                    rest = memoryview(data)[written:]
                    while rest:
                        rest = rest[os.write(self._fd, rest):]
            except OSError:
                self.failed += count


class ErrorFile:
    """Appends ERROR+ lines as JSON to a file, whatever the console format."""

    def __init__(self, path: str) -> None:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the process
        self._lock = threading.Lock()

    def write(self, line: bytes) -> None:
        try:
            with self._lock:
                self._file.write(line)
        except OSError:
            pass  # a full disk must not fail the request; stdout still has the line


class _State:
    """What ``configure_logging`` decided; read by the renderer and the access-log fast path."""

    def __init__(self) -> None:
        self.static: dict[str, str] = {"environment": "development", "service": "app"}
        self.json_console = True
        self.sink: LineSink | None = None
        self.errors: ErrorFile | None = None
        self.shipper: Callable[[str, str], None] | None = None
        self.human: Callable[[WrappedLogger, str, EventDict], str] | None = None
        self.min_level = 20
        self.access_suffix = b"}\n"
        """``,"logger":...}`` + newline: the access line's constant fields, serialised once."""


_state = _State()


_second: tuple[int, str] = (-1, "")
_MILLIS: Final = tuple(f".{ms:03d}Z" for ms in range(1000))


def _timestamp() -> str:
    """ISO 8601 UTC with milliseconds; the date-time part is formatted once per second."""
    now = time.time()
    whole = int(now)
    second = _second if _second[0] == whole else _new_second(whole)
    return second[1] + _MILLIS[int((now - whole) * 1000)]


def _new_second(whole: int) -> tuple[int, str]:
    """Format a new second (one tuple swap, so threads never see a torn value)."""
    global _second
    _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return _second


def _add_request_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in current_log_fields().items():
        event_dict.setdefault(key, value)
    return event_dict


def _add_static_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in _state.static.items():
        event_dict.setdefault(key, value)
    return event_dict


def _add_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict["timestamp"] = _timestamp()
    return event_dict


def _rename_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event = event_dict.pop("event", None)
    if "message" not in event_dict:
        event_dict["message"] = event if isinstance(event, str) else str(event)
    return event_dict


def _normalise_level(_: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    level = str(event_dict.get("level", method)).lower()
    event_dict["level"] = "warning" if level in {"warn", "exception"} else level
    if level == "exception":
        event_dict["level"] = "error"
    return event_dict


def _redact_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in list(event_dict):
        if is_secret_key(key) and key not in CONTEXT_FIELDS:
            event_dict[key] = "[REDACTED]"
    message = event_dict.get("message")
    cleaned = redact({k: v for k, v in event_dict.items() if k not in BASE_FIELDS})
    event_dict.update(cleaned)
    if isinstance(message, str):
        event_dict["message"] = redact(message)
    return event_dict


def _logger_name(logger: WrappedLogger, _: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if record is not None:
        event_dict["logger"] = record.name
    elif "logger" not in event_dict:
        event_dict["logger"] = getattr(logger, "name", None) or "app"
    return event_dict


def _emit(line: bytes, level: str, human: str | None = None) -> None:
    if _state.sink is not None:
        _state.sink.write(line if human is None else human.encode() + b"\n")
    if _state.errors is not None and LEVELS.get(level, 0) >= 40:
        _state.errors.write(line)
    if _state.shipper is not None:
        _state.shipper(level, line[:-1].decode())


def _render(logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
    """Last processor: writes the line to every sink and returns it (for the stdlib bridge)."""
    event_dict.pop("_record", None)
    event_dict.pop("_from_structlog", None)
    line = orjson.dumps(event_dict, default=str, option=orjson.OPT_APPEND_NEWLINE)
    level = event_dict.get("level", "info")
    human = None
    if not _state.json_console and _state.human is not None:
        human = _state.human(logger, method, dict(event_dict))
    _emit(line, level, human)
    return ""


_CALLSITE = structlog.processors.CallsiteParameterAdder(
    {
        structlog.processors.CallsiteParameter.MODULE,
        structlog.processors.CallsiteParameter.FUNC_NAME,
        structlog.processors.CallsiteParameter.LINENO,
    },
    additional_ignores=["fastapi_lookout.logging"],
)


def _callsite(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    _CALLSITE(logger, method, event_dict)
    event_dict["function"] = event_dict.pop("func_name", None)
    event_dict["line"] = event_dict.pop("lineno", None)
    return event_dict


def _shared_processors() -> list[Callable[[WrappedLogger, str, EventDict], EventDict]]:
    return [
        _add_request_fields,
        structlog.processors.add_log_level,
        _normalise_level,
        _logger_name,
        _add_timestamp,
        _add_static_fields,
        _callsite,
        structlog.processors.format_exc_info,
        _rename_event,
        _redact_event,
    ]


class _NamedLogger:
    """structlog's wrapped logger: it only carries the name; `_render` does the writing."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, message: str) -> None:  # the renderer already wrote the line
        return None

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _logger_factory(*args: Any) -> _NamedLogger:
    return _NamedLogger(str(args[0]) if args else "app")


class _StdlibBridge(logging.Handler):
    """Sends stdlib records (uvicorn, sqlalchemy, ...) through the same processors."""

    def __init__(self) -> None:
        super().__init__()
        self._processors = _shared_processors()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event: MutableMapping[str, Any] = {
                "event": record.getMessage(),
                "level": record.levelname.lower(),
                "logger": record.name,
                "module": record.module,
                "function": record.funcName,
                "line": record.lineno,
            }
            if record.exc_info:
                event["exc_info"] = record.exc_info
            for proc in self._processors:
                if proc is _callsite:
                    continue
                event = proc(None, record.levelname.lower(), event)
            _render(None, record.levelname.lower(), event)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def configure_logging(
    *,
    level: str = "INFO",
    console_format: str = "json",
    environment: str = "development",
    service: str = "app",
    error_file: str | None = None,
    loki_url: str | None = None,
    stream: IO[Any] | None = None,
) -> None:
    """Configure structlog and stdlib logging once for the process."""
    _state.static = {"environment": environment, "service": service}
    _state.json_console = console_format == "json"
    flush()
    _state.sink = LineSink(stream or sys.stdout)
    _state.errors = ErrorFile(error_file) if error_file else None
    _state.min_level = logging.getLevelName(level.upper())
    _state.access_suffix = b"," + orjson.dumps(_access_constants())[1:] + b"\n"
    _state.human = None if _state.json_console else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    if loki_url:
        from fastapi_lookout.log_shipping import LokiShipper

        _state.shipper = LokiShipper(loki_url, {"service": service, "environment": environment}).ship
    else:
        _state.shipper = None

    structlog.configure(
        processors=[*_shared_processors(), _render],
        wrapper_class=structlog.make_filtering_bound_logger(_state.min_level),
        logger_factory=_logger_factory,
        cache_logger_on_first_use=True,
    )

    root = logging.getLogger()
    root.handlers[:] = [_StdlibBridge()]
    root.setLevel(_state.min_level)
    for name in ("uvicorn", "uvicorn.error", "sqlalchemy", "alembic"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # uvicorn's own access log would duplicate ours (and has no request_id). uvicorn decides
    # per connection with ``hasHandlers()`` whether to format one; a disabled logger that still
    # propagates to the root handler costs every request that formatting for nothing.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    uvicorn_access.disabled = True
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def flush() -> None:
    """Write every queued line now (runs at exit; tests reading output in-process call it)."""
    if _state.sink is not None:
        _state.sink.flush()


atexit.register(flush)


def access_log(fields: dict[str, Any], level: str = "info") -> None:
    """The per-request line: same fields as any other line, built without the processor chain.

    The fields that never change (logger, message, environment, service, call
    site) are serialised once by ``configure_logging`` and appended as bytes.
    ``fields`` is owned by the caller and consumed here.
    """
    state = _state
    if LEVELS[level] < state.min_level:
        return
    fields["timestamp"] = _timestamp()
    fields["level"] = level
    if state.human is not None:
        fields.update(_access_constants())
        _emit(orjson.dumps(fields, default=str, option=orjson.OPT_APPEND_NEWLINE), level,
              state.human(None, level, {"event": fields.pop("message"), **fields}))
        return
    line = orjson.dumps(fields, default=str)[:-1] + state.access_suffix
    if state.sink is not None:
        state.sink.queue(line)
    if state.errors is not None and LEVELS[level] >= 40:
        state.errors.write(line)
    if state.shipper is not None:
        state.shipper(level, line[:-1].decode())


def _access_constants() -> dict[str, Any]:
    return {
        "logger": ACCESS_LOGGER,
        "message": ACCESS_MESSAGE,
        **_state.static,
        "module": "logging",
        "function": "access_log",
        "line": access_log.__code__.co_firstlineno,
    }


def monotonic_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)
