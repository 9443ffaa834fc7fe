"""fastapi-lookout: metrics, JSON logs, correlation ids and an audit trail for FastAPI, with one call.

    from fastapi_lookout import instrument
    instrument(app)

Names are imported on first use: importing a submodule (``fastapi_lookout.problems``, say, in a server's
supervisor process) registers no metric and configures no logging as a side effect; only ``instrument`` and the
catalog (``fastapi_lookout.metrics``) do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi_lookout.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from fastapi_lookout.context import RequestContext
    from fastapi_lookout.instrumentation import instrument
    from fastapi_lookout.problems import Problem

_WHERE = {"instrument": "instrumentation", "RequestContext": "context", "Problem": "problems"}

__all__ = ["Problem", "RequestContext", "instrument"]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
