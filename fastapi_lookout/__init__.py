"""fastapi-lookout: metrics, JSON logs, correlation ids and an audit trail for FastAPI, with one call.

    from fastapi_lookout import instrument
    instrument(app)

Names are imported on first use: importing a submodule (``fastapi_lookout.problems``, say, in a server's
supervisor process) registers no metric and configures no logging as a side effect; only ``instrument`` and the
catalog (``fastapi_lookout.metrics``) do.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi_lookout.context import RequestContext
    from fastapi_lookout.instrumentation import instrument
    from fastapi_lookout.problems import Problem

_WHERE = {"instrument": "instrumentation", "RequestContext": "context", "Problem": "problems"}

__all__ = ["Problem", "RequestContext", "instrument"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
