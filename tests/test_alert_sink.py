"""The demo Alertmanager receiver turns every alert of a notification into one JSON log line."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import orjson

from tests.support.app_process import ROOT
from tests.support.binaries import free_port

NOTIFICATION = {
    "status": "firing",
    "alerts": [
        {"status": "firing", "labels": {"alertname": "AuditEventsDropped", "severity": "critical"},
         "annotations": {"summary": "audit rows lost"}},
        {"status": "resolved", "labels": {"alertname": "TargetDown"}, "annotations": {}},
    ],
}


def test_each_alert_becomes_a_log_line_and_bad_bodies_get_4xx(tmp_path):
    port = free_port()
    out = (tmp_path / "sink.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "app.alert_sink", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "sink did not start"
                time.sleep(0.05)
        assert httpx.post(f"http://127.0.0.1:{port}/pager", json=NOTIFICATION).status_code == 200
        assert httpx.post(f"http://127.0.0.1:{port}/pager", content=b"not json").status_code == 400
    finally:
        proc.terminate()
        proc.wait(10)
        out.close()
    lines = [orjson.loads(ln) for ln in (tmp_path / "sink.log").read_bytes().splitlines() if ln.startswith(b"{")]
    alerts = [ln for ln in lines if ln["message"] == "alert notification"]
    assert [(a["reason"], a["status"]) for a in alerts] == [
        ("AuditEventsDropped", "firing"), ("TargetDown", "resolved")]
    assert alerts[0]["detail"] == "pager: audit rows lost" and alerts[0]["logger"] == "app.alerts"
