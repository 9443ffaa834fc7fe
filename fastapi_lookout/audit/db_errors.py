"""Telling a bad row from a bad database, and describing either without row contents.

A failure is blamed on the rows only when retrying them unchanged cannot
succeed (integrity or data errors, a value the driver cannot encode); anything
else (connection refused, timeout, missing table, permission denied) is the
database's state, and the writer retries the batch whole.
"""

from __future__ import annotations

import re
from typing import Final

import sqlalchemy as sa

from fastapi_lookout.redaction import redact_text

__all__ = ["SEQ_INDEX", "ChainHeadMissing", "UnhashableRow", "describe_error", "is_row_error", "is_seq_conflict"]

SEQ_INDEX: Final = "ix_user_actions_seq"
_ERROR_MESSAGE_MAX_CHARS: Final = 300
# asyncpg's client-side encoding errors quote the offending value after "query argument $n:".
_QUOTED_ARGUMENT = re.compile(r"(query argument \$\d+):.*")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return seen


class ChainHeadMissing(Exception):
    """``audit_chain_head`` has no row: the schema is not migrated (the database's state, so retried)."""


class UnhashableRow(ValueError):
    """A row the chain cannot encode: its content, so a row error."""


def is_seq_conflict(exc: BaseException) -> bool:
    """A unique violation on ``seq``: a row was put at the head's next seq behind the writer's back."""
    for err in _chain(exc):
        text = str(err)
        if getattr(err, "constraint_name", None) == SEQ_INDEX or SEQ_INDEX in text or "user_actions.seq" in text:
            return True
    return False


def is_row_error(exc: BaseException) -> bool:
    """True when the rows, not the database, caused ``exc``: retrying them unchanged cannot succeed."""
    if isinstance(exc, UnhashableRow):
        return True
    if is_seq_conflict(exc):
        return False
    if isinstance(exc, sa.exc.IntegrityError | sa.exc.DataError):
        return True
    if isinstance(exc, sa.exc.StatementError) and not isinstance(exc, sa.exc.DBAPIError):
        return True  # a bind processor refused a value before anything was sent
    for err in _chain(exc):
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if isinstance(code, str) and code[:2] in ("22", "23"):
            return True
        # asyncpg's client-side encoding error (not its ClientConfigurationError, also a ValueError)
        if isinstance(err, ValueError) and type(err).__name__ == "DataError":
            return True
    return False


def describe_error(exc: BaseException) -> str:
    """The driver's message without SQL, parameters or quoted values: logs must not carry row contents."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).split("\n", 1)[0]
    return redact_text(_QUOTED_ARGUMENT.sub(r"\1", text))[:_ERROR_MESSAGE_MAX_CHARS]
