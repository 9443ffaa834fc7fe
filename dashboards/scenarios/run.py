"""Replays a scenario into a real Prometheus and reads every panel and alert as Grafana and Prometheus would.

1. the scenario's history (the reference service and Keycloak) is written as OpenMetrics and backfilled with
   ``promtool tsdb create-blocks-from openmetrics``, ending two minutes ago: no wall-clock wait;
2. a Prometheus opens those blocks; the generated recording rules are backfilled over the same history with
   ``promtool tsdb create-blocks-from rules`` and Prometheus reopens with them;
3. every Prometheus panel of the generated dashboards is read on its default time range
   (``scenarios.grafana``), and every generated alert rule is evaluated at the scenario's times as Prometheus'
   rule manager would: firing once its expression held at every evaluation for its ``for`` duration.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from ..config import Config
from ..stack.prometheus.rules import parse_duration
from . import grafana
from .incidents import Scenario
from .keycloak import keycloak
from .service import reference_service
from .world import Job, World

SPAN: Final = 7 * 3600
"""Hours of history: the longest default range (the audit dashboard's 6 h) and the rules' windows before it."""
EVAL_INTERVAL: Final = 15


@dataclass
class Outcome:
    scenario: Scenario
    end: float
    panels: dict[tuple[str, str], grafana.Reading]
    alerts: dict[float, frozenset[str]]


def history(scenario: Scenario, cfg: Config, end: int) -> World:
    world = World(end, SPAN)
    p = cfg.prometheus
    app = Job(cfg.app_job, p.app_target, grafana.seconds(p.app_scrape_interval),
              down=tuple((-a * 60.0, -b * 60.0 if b else math.inf) for a, b in scenario.app_down))
    kc = Job(cfg.keycloak_job, p.keycloak_target, grafana.seconds(p.keycloak_scrape_interval),
             missed=tuple(-m * 60.0 for m in scenario.keycloak_missed))
    reference_service(world, app, scenario.service)
    keycloak(world, kc, scenario.keycloak)
    for job, target in ((p.self_job, p.self_target), (p.alertmanager_job, p.alertmanager_target),
                        (p.alloy_job, p.alloy_target)):
        world.up(Job(job, target, grafana.seconds(p.scrape_interval)))
    return world


def _free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def prometheus(data: Path, binary: str = "prometheus") -> Iterator[str]:
    port = _free_port()
    config = data.parent / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
                             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30d"],
                            stdout=subprocess.DEVNULL, stderr=(data.parent / "prometheus.log").open("wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data.parent / "prometheus.log").read_text()[-2000:])
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def _promtool(*args: str | Path) -> None:
    done = subprocess.run(["promtool", *map(str, args)], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode:
        raise RuntimeError(f"promtool {args[:3]}: {done.stderr[-2000:]}")


def rules(root: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted((root / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += group["rules"]
    return out


def firing(url: str, alert_rules: Sequence[Mapping[str, Any]], at: float) -> frozenset[str]:
    """Alerts firing at ``at``: each one's expression held for some label set at every evaluation of ``for``."""
    prom = grafana.Prometheus(url)
    out = set()
    for rule in alert_rules:
        hold = int(parse_duration(rule["for"]).total_seconds()) if rule.get("for") else 0
        start = at - hold
        steps = hold // EVAL_INTERVAL + 1
        found = prom.series(rule["expr"], start, at, EVAL_INTERVAL)
        if any(len(points) >= steps for _, points in found):
            out.add(rule["alert"])
    return frozenset(out)


def replay(scenario: Scenario, cfg: Config, artifacts: Path, dashboards: Mapping[str, Mapping[str, Any]],
           datasource_interval: str, work: Path | None = None) -> Outcome:
    """``artifacts``: the generated tree (its prometheus/rules); ``dashboards``: uid -> dashboard JSON."""
    end = int(time.time() // 60 * 60) - 120
    own = work or Path(tempfile.mkdtemp(prefix=f"scenario-{scenario.name}-"))
    try:
        data = own / "data"
        (own / "history.om").write_text(history(scenario, cfg, end).openmetrics())
        _promtool("tsdb", "create-blocks-from", "openmetrics", "-q", own / "history.om", data)
        all_rules = rules(artifacts)
        recording = [p for p in sorted((artifacts / "prometheus" / "rules").glob("*.yml"))
                     if any("record" in r for g in yaml.safe_load(p.read_text())["groups"] for r in g["rules"])]
        with prometheus(data) as url:
            _promtool("tsdb", "create-blocks-from", "rules", "-q", f"--url={url}", f"--start={end - 6 * 3600}",
                      f"--end={end}", f"--eval-interval={EVAL_INTERVAL}s", f"--output-dir={own / 'recorded'}",
                      *recording)
        for block in (own / "recorded").iterdir():
            shutil.move(str(block), data / block.name)
        with prometheus(data) as url:
            panels = {(uid, title): reading for uid, dashboard in dashboards.items()
                      for title, reading in grafana.read_dashboard(dashboard, url, end, datasource_interval).items()}
            alert_rules = [r for r in all_rules if "alert" in r]
            times = set(scenario.alerts) | {0.0}
            alerts = {m: firing(url, alert_rules, end - m * 60) for m in sorted(times)}
        return Outcome(scenario, end, panels, alerts)
    finally:
        if work is None:
            shutil.rmtree(own, ignore_errors=True)


def datasource_interval(artifacts: Path) -> str:
    provisioned = yaml.safe_load((artifacts / "grafana/provisioning/datasources/datasources.yml").read_text())
    prom = next(d for d in provisioned["datasources"] if d["type"] == "prometheus")
    return str(prom.get("jsonData", {}).get("timeInterval", "15s"))


def load_dashboards(artifacts: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((artifacts / "grafana/dashboards").glob("*.json"))}


def replay_all(cfg: Config, artifacts: Path, extra: Mapping[str, Mapping[str, Any]] | None = None,
               scenarios: Sequence[Scenario] | None = None) -> list[Outcome]:
    """Every scenario against the generated artifacts under ``artifacts`` (``extra``: more dashboards to read)."""
    from .incidents import SCENARIOS

    dashboards = {**load_dashboards(artifacts), **(extra or {})}
    interval = datasource_interval(artifacts)
    return [replay(s, cfg, artifacts, dashboards, interval) for s in (scenarios or SCENARIOS)]
