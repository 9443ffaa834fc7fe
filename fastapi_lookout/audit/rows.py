"""An audit event made a storable row: redacted, capped to its columns, free of what the database refuses.

Bounds: ``request_data`` is redacted and, when its JSON exceeds the cap,
replaced by ``{"truncated": true, "size": n}`` (kept as encoded bytes, so the
cap is real); strings are cut to their column's length and TEXT columns to
``TEXT_MAX_CHARS``. NUL characters (which PostgreSQL refuses) and lone
surrogates are replaced, so a client cannot get its own audit row dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from operator import itemgetter, le
from typing import Any, Final

import orjson
import sqlalchemy as sa

from fastapi_lookout.audit.chain import CHAIN_COLUMNS
from fastapi_lookout.audit.event import AuditEvent
from fastapi_lookout.audit.schema import user_actions
from fastapi_lookout.audit.spool import Row
from fastapi_lookout.redaction import redact, redact_text

__all__ = ["STRING_CAPS", "TEXT_MAX_CHARS", "EncodedJSON", "encode_request_data", "insert_params", "normalise_row"]

TEXT_MAX_CHARS: Final = 1024
"""Cap of the unbounded TEXT columns (``user_roles``, ``error_message``)."""

STRING_CAPS: Final[dict[str, int]] = {
    c.name: c.type.length or TEXT_MAX_CHARS
    for c in user_actions.columns
    if isinstance(c.type, sa.String) and c.name not in CHAIN_COLUMNS
}
_STRING_CAP_ITEMS: Final = tuple(STRING_CAPS.items())
_string_values: Final = itemgetter(*STRING_CAPS)
_CAPS: Final = tuple(STRING_CAPS.values())
_NONE_AS_EMPTY: Final[dict[Any, str]] = {None: ""}


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


class EncodedJSON(bytes):
    """``request_data`` already through ``encode_request_data``: taken as it is (the writer process gets these)."""

    __slots__ = ()

    def __reduce__(self) -> tuple[type[EncodedJSON], tuple[bytes]]:
        return EncodedJSON, (bytes(self),)


def encode_request_data(data: Any, max_bytes: int) -> bytes | None:
    """Redacted JSON of ``data``, or a small marker when that JSON is larger than ``max_bytes``.

    Kept encoded in memory, so the memory bound is the byte cap, not the size
    of whatever Python objects a decoded body would make.
    """
    if data is None:
        return None
    if type(data) is EncodedJSON:
        return bytes(data)
    redacted = redact(data)
    try:
        encoded = orjson.dumps(redacted, default=str, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # e.g. an int beyond 64 bits
        encoded = orjson.dumps({"unserializable": type(data).__name__})
    if b"\\u0000" in encoded:  # rare: only then pay for a second walk
        encoded = orjson.dumps(_without_nul(orjson.loads(encoded)))
    if len(encoded) > max_bytes:
        return orjson.dumps({"truncated": True, "size": len(encoded)})
    return encoded


def _text(value: str | None, cap: int) -> str | None:
    if value is None:
        return None
    value = str(value)
    if not value.isascii():  # lone surrogates cannot be stored (nor hashed): replaced, like NUL
        value = value.encode("utf-8", "replace").decode("utf-8")
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return value[:cap]


def _utc(ts: datetime | float) -> datetime:
    if type(ts) in (float, int):  # the middleware passes time.time(): a float pickles in 1/7 of a datetime's time
        return datetime.fromtimestamp(ts, UTC)
    if ts.tzinfo is UTC:
        return ts
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def normalise_row(event: AuditEvent, request_data_max_bytes: int) -> Row:
    row: Row = {
        "timestamp": _utc(event.timestamp),
        "user_id": event.user_id,
        "username": event.username,
        "user_roles": event.user_roles,
        "action_type": event.action_type,
        "resource": event.resource,
        "outcome": event.outcome,
        "ip_address": event.ip_address,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "request_data": None if event.request_data is None else encode_request_data(
            event.request_data, request_data_max_bytes),
        "response_status": int(event.response_status),
        "error_message": None if event.error_message is None else redact_text(str(event.error_message)),
        "duration_ms": float(event.duration_ms),
    }
    # Nearly every row is strings of ASCII without NUL, each within its column's length: proved for
    # all ten at once with C-level calls (no bytecode per column); any doubt takes the per-column path.
    values = _string_values(row)
    try:
        texts = tuple(map(_NONE_AS_EMPTY.get, values, values))  # None -> "", a str stays itself
        joined = "".join(texts)  # TypeError unless every value is a str (or None)
    except TypeError:
        joined = None
    if joined is None or not joined.isascii() or "\x00" in joined or not all(map(le, map(len, texts), _CAPS)):
        for name, cap in _STRING_CAP_ITEMS:
            if row[name] is not None:
                row[name] = _text(row[name], cap)
    return row


def insert_params(row: Row) -> Row:
    data = row["request_data"]
    # sa.null(): SQL NULL, not the JSON 'null' the JSON type would store for None.
    return {**row, "request_data": sa.null() if data is None else orjson.loads(data)}
