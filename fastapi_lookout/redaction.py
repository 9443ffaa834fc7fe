"""Remove secrets from anything that is about to be logged or stored.

Used by the log pipeline (every event) and the audit writer (``request_data``).
Keys are matched case-insensitively on a substring, so ``Authorization``,
``access_token``, ``client_secret``, ``X-Api-Key`` and ``set-cookie`` are all
caught wherever they are nested. In free text (a log message, a URL) bearer
tokens, JWTs and the values of secret-named query parameters are replaced,
whatever their shape (``WebSocket /ws?token=abc`` logs ``?token=[REDACTED]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

REDACTED: Final = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"authorization|token|passw|secret|cookie|api[-_]?key|credential|session|private[-_]?key",
    re.IGNORECASE,
)
# Secrets that show up inside free text: bearer tokens and JWTs.
_SECRET_TEXT = re.compile(
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+|\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"
)
# Secrets in a URL's query string, whatever their shape (`/ws?token=abc`, `?api_key=1&x=2`): the
# parameter's name is kept, its value replaced up to the next separator.
_SECRET_QUERY = re.compile(
    r"(?i)([?&;][^=&;?#\s\"']*(?:token|passw|secret|api[-_]?key|credential|session|signature|"
    r"private[-_]?key|authorization)[^=&;?#\s\"']*=)[^&;#\s\"']*"
)
_MAX_DEPTH: Final = 8


def is_secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def redact_text(text: str) -> str:
    """``text`` without bearer tokens, JWTs or secret query-string values (any shape)."""
    if "=" in text:
        text = _SECRET_QUERY.sub(r"\1" + REDACTED, text)
    return _SECRET_TEXT.sub(REDACTED, text)


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` with secret-named keys and token-looking strings replaced."""
    if _depth > _MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
