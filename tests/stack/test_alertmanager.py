"""alertmanager.yml: amtool accepts it, severities route to pager/ticket, and a real Alertmanager inhibits
a warning under the critical of the same alert and job and delivers to the webhooks."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import yaml

from dashboards.config import Config
from dashboards.stack.prometheus import alertmanager
from dashboards.stack.prometheus.artifacts import alertmanager_yml
from tests.support import process
from tests.support.binaries import free_port, require, which

CFG = Config()


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = which("amtool")
    require("amtool", binary, "apt-get install prometheus-alertmanager")
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=60)


class WebhookSink:
    """Records every Alertmanager webhook POST by path (``/pager``, ``/ticket``)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.port = free_port()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                sink.received.append((self.path, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def alerts(self, path: str) -> list[dict[str, Any]]:
        return [a for p, body in list(self.received) if p == f"/{path}" for a in body["alerts"]]

    def wait_for(self, path: str, predicate: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            alerts = self.alerts(path)
            if predicate(alerts):
                return alerts
            if time.monotonic() > deadline:
                raise TimeoutError(f"webhook /{path} got {alerts}")
            time.sleep(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fast_config(sink: WebhookSink, cfg: Config = CFG) -> Config:
    """The generated config with fast grouping and webhooks pointing at ``sink`` (only through the config object)."""
    return dataclasses.replace(cfg, alerting=dataclasses.replace(
        cfg.alerting, group_wait="1s", group_interval="1s", pager_webhook_url=sink.url("pager"),
        ticket_webhook_url=sink.url("ticket")))


class AlertmanagerServer:
    """A real Alertmanager on 127.0.0.1 with the generated config, clustering off."""

    def __init__(self, cfg: Config) -> None:
        binary = which("prometheus-alertmanager") or which("alertmanager")
        if binary is None:
            raise RuntimeError("alertmanager not found (apt-get install prometheus-alertmanager)")
        self.root = Path(tempfile.mkdtemp(prefix="am-test-"))
        (self.root / "alertmanager.yml").write_bytes(alertmanager_yml(cfg))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.root / "alertmanager.log"
        self.argv = [binary, f"--config.file={self.root / 'alertmanager.yml'}", f"--storage.path={self.root / 'data'}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> AlertmanagerServer:
        try:
            self.proc = process.start_ready(self.argv, f"{self.url}/-/ready", self.log_path, "Alertmanager")
        except RuntimeError:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        process.stop(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def post(self, *alerts: dict[str, Any]) -> None:
        now = datetime.now(UTC).isoformat()
        body = json.dumps([{"startsAt": now, **a} for a in alerts]).encode()
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            return json.loads(response.read())


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    s = WebhookSink()
    yield s
    s.close()


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    path = tmp_path / "alertmanager.yml"
    path.write_bytes(alertmanager_yml(CFG))
    return path


def test_amtool_accepts_the_generated_config(generated: Path):
    result = amtool("check-config", str(generated))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 inhibit rules" in result.stdout and "2 receivers" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (("severity=critical", "alertname=AuditEventsDropped", "job=fastapi-app"), "pager"),
        (("severity=warning", "alertname=AppHighErrorRatio", "job=fastapi-app"), "ticket"),
        (("alertname=SomethingUnlabelled",), "ticket"),
    ],
)
def test_severity_routes_to_its_receiver(generated: Path, labels: tuple[str, ...], receiver: str):
    result = amtool("config", "routes", "test", f"--config.file={generated}", f"--verify.receivers={receiver}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr


def test_groups_by_alert_and_job_and_criticals_inhibit_warnings_of_the_same_alert_and_job():
    data = alertmanager.alertmanager_config(CFG)
    assert data["route"]["group_by"] == ["alertname", "job"]
    assert data["inhibit_rules"] == [{"source_matchers": ['severity="critical"'],
                                      "target_matchers": ['severity="warning"'], "equal": ["alertname", "job"]}]
    assert {r["name"]: r["webhook_configs"][0]["url"] for r in data["receivers"]} == {
        "pager": CFG.alerting.pager_webhook_url, "ticket": CFG.alerting.ticket_webhook_url}


def test_webhook_urls_can_come_from_files_instead():
    cfg = dataclasses.replace(CFG, alerting=dataclasses.replace(CFG.alerting, webhook_url_dir="/run/secrets/am/"))
    hooks = {r["name"]: r["webhook_configs"][0] for r in yaml.safe_load(alertmanager_yml(cfg))["receivers"]}
    assert hooks == {"pager": {"url_file": "/run/secrets/am/pager", "send_resolved": True},
                     "ticket": {"url_file": "/run/secrets/am/ticket", "send_resolved": True}}


def test_a_url_that_is_not_http_is_refused_by_the_build():
    cfg = dataclasses.replace(CFG, alerting=dataclasses.replace(CFG.alerting, pager_webhook_url="${PAGER_URL}"))
    assert alertmanager.problems(cfg) == ["alerting.pager_webhook_url must be an http(s) URL, got '${PAGER_URL}'"]


def test_real_alertmanager_pages_the_critical_and_inhibits_its_warning(sink: WebhookSink):
    binary = which("prometheus-alertmanager") or which("alertmanager")
    require("Alertmanager", binary, "apt-get install prometheus-alertmanager")
    base = {"alertname": "AuditQueueBacklog", "job": "fastapi-app", "instance": "app:8000"}
    with AlertmanagerServer(fast_config(sink)) as am:
        am.post({"labels": {**base, "severity": "critical"}, "annotations": {"summary": "6000 rows"}},
                {"labels": {**base, "severity": "warning"}, "annotations": {"summary": "6000 rows"}},
                {"labels": {"alertname": "AppRateLimitSpike", "job": "fastapi-app", "severity": "warning"}})
        paged = sink.wait_for("pager", lambda alerts: len(alerts) >= 1)
        ticketed = sink.wait_for("ticket", lambda alerts: len(alerts) >= 1)
        state = {(a["labels"]["alertname"], a["labels"]["severity"]): a["status"] for a in am.alerts()}
    assert [(a["labels"]["alertname"], a["labels"]["severity"]) for a in paged] == [("AuditQueueBacklog", "critical")]
    assert [a["labels"]["alertname"] for a in ticketed] == ["AppRateLimitSpike"]
    assert state[("AuditQueueBacklog", "warning")]["state"] == "suppressed"
    assert state[("AuditQueueBacklog", "warning")]["inhibitedBy"]
    assert state[("AppRateLimitSpike", "warning")]["state"] == "active"
