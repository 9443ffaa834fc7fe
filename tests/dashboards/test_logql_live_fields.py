"""LogQL fields against the real service's log lines. Apart from test_logql.py because it starts the
service: mutation testing (make mutation) runs test_logql.py, and a child process cannot report to it."""

from __future__ import annotations

import dataclasses

from dashboards.config import Config
from dashboards.grafana import artifacts as grafana
from dashboards.grafana import uids
from dashboards.validate.panels import validate


def test_logql_fields_exist_in_real_app_log_lines(built):
    """Fields captured from the real service's stdout under the shared traffic script, not the declared list."""
    from tests.support.app_process import AppProcess
    from tests.support.traffic import drive

    with AppProcess() as app:
        drive(app)
        app.wait_for_lines(lambda line: line.get("logger") == "app.ws", count=2, timeout=5)
        lines = app.json_lines()
    captured = frozenset(key for line in lines for key in line)
    ctx = dataclasses.replace(grafana.context(Config()), log_fields=captured)
    problems = [str(p) for p in validate({uids.LOGS: built[uids.LOGS], uids.FASTAPI: built[uids.FASTAPI]}, ctx)]
    assert problems == []
