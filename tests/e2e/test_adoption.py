"""Adoption end to end: another team's service, with its own ``app`` package, takes the bundle as a user would.

The distribution is built and installed (not editable) into a fresh virtualenv
with the generator extra; the example orders service (examples/orders-service:
other routes, no database, no auth, no WebSocket) is instrumented with the
README's import line and run from that virtualenv; its stack is generated from
its own config (features mostly off, its own job and log service names) with
the installed ``fastapi-lookout-stack``; a real Prometheus scrapes it; then every
Prometheus panel of the generated dashboards must show data, promtool must
accept the generated rules and their tests, and nothing may remain of the
switched-off features or of the reference service's names.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from dashboards.validate.live import OK, DirectRunner, Window, check_dashboard
from tests.support import prometheus as prom
from tests.support.binaries import free_port, require, which
from tests.support.process import start_ready, stop

pytestmark = pytest.mark.realserver

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "orders-service"
IMPORT_LINE = "from fastapi_lookout import instrument"
SWITCHED_OFF = ("keycloak", "audit", "ws_", "websocket", "rate_limit_hits", "auth_attempts", "db_query_duration",
                "user_actions", "postgres", "fastapi-app", "alert-webhook")
"""Traces of the features the orders service does not have, and of the reference service's names."""
ALLOWED_NO_DATA: set[str] = set()
"""Panels allowed to stay empty for the orders service: none. (The status-class panel is one query whose
classes come from the data, so a class nobody answered is absent rather than an empty line.)"""


@dataclass
class Adopted:
    venv: Path
    service: Path
    deploy: Path


def _run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 900) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def adopted(tmp_path_factory: pytest.TempPathFactory) -> Adopted:
    require("Prometheus", prom.binary(), "apt-get install prometheus")
    base = tmp_path_factory.mktemp("adoption")
    venv = base / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=base)
    _run(venv / "bin" / "pip", "install", "-q", f"{ROOT}[generator]", "uvicorn", cwd=base)
    service = base / "orders"
    shutil.copytree(EXAMPLE, service)
    env = {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
           "FASTAPI_LOOKOUT_NODE_MODULES": str(ROOT / "node_modules")}  # Loki's grammar, from npm
    _run(venv / "bin" / "fastapi-lookout-stack", "--config", "lookout.yaml", "--out", "deploy", cwd=service, env=env)
    return Adopted(venv, service, service / "deploy")


def test_the_install_is_not_editable_and_names_nothing_a_service_already_has(adopted: Adopted):
    code = ("import sysconfig, pathlib, app, fastapi_lookout, fastapi_lookout_dashboards; "
            "site = pathlib.Path(sysconfig.get_paths()['purelib']); "
            "print(app.__file__); print(fastapi_lookout.__file__); "
            "print(sorted(p.name for p in site.iterdir() if p.name in ('app', 'dashboards', 'tests', 'scripts')))")
    lines = _run(adopted.venv / "bin" / "python", "-c", code, cwd=adopted.service).stdout.splitlines()
    assert lines[0] == str(adopted.service / "app" / "__init__.py")  # their app, not ours
    assert "site-packages" in lines[1] and str(ROOT) not in lines[1]  # installed, not a link to the checkout
    assert lines[2] == "[]"
    assert IMPORT_LINE in (adopted.service / "app" / "main.py").read_text()
    readme = (ROOT / "README.md").read_text()
    assert IMPORT_LINE in readme


def test_the_generated_stack_has_only_what_the_service_has(adopted: Adopted):
    files = sorted(str(p.relative_to(adopted.deploy)) for p in adopted.deploy.rglob("*") if p.is_file())
    assert [f for f in files if f.startswith("grafana/dashboards/")] == [
        "grafana/dashboards/application-logs.json", "grafana/dashboards/fastapi-metrics.json"]
    assert not [f for f in files if f.startswith(("keycloak/", "postgres/"))]
    found = {}
    for name in files:
        if name.startswith("loki/"):
            continue  # Loki's own settings (per_stream_rate_limit...) are not features of the service
        text = (adopted.deploy / name).read_text().lower()
        hits = [t for t in SWITCHED_OFF if t in text]
        if hits:
            found[name] = hits
    assert found == {}
    scrape = (adopted.deploy / "prometheus" / "prometheus.yml").read_text()
    assert re.findall(r"job_name: (\S+)", scrape) == ["orders", "prometheus", "alertmanager", "alloy"]
    compose = (adopted.deploy / "docker-compose.yml").read_text()
    assert "image: orders:1.0.0" in compose and "/healthz" in compose


def test_promtool_accepts_the_generated_rules_and_their_tests(adopted: Adopted):
    promtool = which("promtool")
    require("promtool", promtool, "apt-get install prometheus")
    root = adopted.deploy / "prometheus"
    rules = sorted(str(p.relative_to(root)) for p in (root / "rules").glob("*.yml"))
    tests = sorted(str(p.relative_to(root)) for p in (root / "tests").glob("*.yml"))
    _run(str(promtool), "check", "rules", *rules, cwd=root)
    _run(str(promtool), "test", "rules", *tests, cwd=root)


@pytest.fixture(scope="module")
def scraped(adopted: Adopted) -> Iterator[str]:
    port = free_port()
    log = adopted.service / "uvicorn.log"
    proc = start_ready([str(adopted.venv / "bin" / "uvicorn"), "app.main:app", "--app-dir", str(adopted.service),
                        "--host", "127.0.0.1",
                        "--port", str(port)], f"http://127.0.0.1:{port}/healthz", log, "the orders service")
    try:
        with prom.PrometheusServer({"orders": [f"127.0.0.1:{port}"]}) as server:
            server.wait_scraped(samples=1, timeout=60)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                for _ in range(2):  # two rounds, scrapes in between: rate() needs two samples of each series
                    client.post("/orders", json={"item": "book", "quantity": 2})
                    client.get("/orders")
                    client.get("/orders/1")
                    client.get("/orders/999")  # 404
                    client.post("/orders", json={"item": "", "quantity": 0})  # 422
                    client.get("/orders/", follow_redirects=False)  # 307 to /orders
                    client.get("/not-a-route")  # unmatched
                    server.wait_more_scrapes(3, timeout=60)
            yield server.url
    finally:
        stop(proc)


def test_every_generated_prometheus_panel_shows_data(adopted: Adopted, scraped: str):
    runner = DirectRunner(prometheus=scraped)
    window = Window.last(timedelta(minutes=3), step_seconds=2, rate_interval="10s")
    empty = {}
    for path in sorted((adopted.deploy / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for result in check_dashboard(dashboard, runner, window, frozenset({"prometheus"})):
            if result.status != OK:
                empty[f"{path.stem}: {result.panel}"] = f"{result.status} {result.detail}"
    assert set(empty) == {f"fastapi-metrics: {p}" for p in ALLOWED_NO_DATA}, empty
