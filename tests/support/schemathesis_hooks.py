"""Loaded by schemathesis (``SCHEMATHESIS_HOOKS``) in tests/test_schemathesis.py.

niquests (a dependency of grafana-client, the generator's extra) installs
urllib3-future, which takes the ``urllib3`` import name; its pool manager keeps
pools in a container without ``keys()``, which schemathesis reads to tell a
dropped keep-alive connection from a new one. Without a count it retries such
a request once on a fresh connection, which is what it does anyway.
"""

from __future__ import annotations

from typing import Any

from schemathesis.transport import requests as transport

_count_opened_connections = transport._count_opened_connections


def _count_or_zero(session: Any) -> int:
    try:
        return _count_opened_connections(session)
    except AttributeError:
        return 0


transport._count_opened_connections = _count_or_zero
