"""Our rules under MetricsQL (vmalert on VictoriaMetrics) decide as they do under PromQL (Prometheus).

One Prometheus (the generator's remote_write variant) scrapes a stand-in for the app's series and evaluates
the generated rule files itself; it remote-writes the raw series (not its rule results) to VictoriaMetrics,
where vmalert evaluates the same files. Three phases, the same alerts pending or firing on both sides at the
end of each: idle (flat counters, ratios of nothing), a 5xx burst on a series born mid-window, audit faults.

Where the two languages differ on our expressions (docs/scale-out.md, "Rules on a remote store"):

- ``increase()`` does not extrapolate, and counts a series born inside the window from 0 (a first value of
  3 is 3 requests); Prometheus' answer for such a series is 0 until it grows. Our alerts read increase()
  only (a) on unlabelled audit counters the library exports as 0 from the start, where no series is born
  late, and (b) as low-traffic guards (``>= 20``, ``>= 100`` requests), where counting a new series' first
  requests is the more exact answer; the ratios themselves use rate() on both sides.
- A 0/0 ratio is NaN in Prometheus and no sample at all in VictoriaMetrics: a recording of a ratio over no
  traffic is absent there instead of NaN. No alert can fire on either (``NaN > x`` is false).
- vmalert adds ``alertgroup`` to alert labels; our routing and inhibition use ``alertname``, ``job``,
  ``severity`` only.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dashboards.config import Config
from dashboards.stack.prometheus import scrape
from tests.support import prometheus as prom
from tests.support import victoria
from tests.support.app_process import AppProcess
from tests.support.binaries import free_port, require

pytestmark = pytest.mark.realserver

ROOT = Path(__file__).resolve().parents[2]
CFG = Config()
JOB = CFG.app_job
RULES = {f"rules/{p.name}": p.read_text() for p in sorted((ROOT / "prometheus" / "rules").glob("*.yml"))}
OK_200 = 'http_requests_total{method="GET",endpoint="/api/authors",status_code="200"}'
ERR_500 = 'http_requests_total{method="GET",endpoint="/api/authors",status_code="500"}'
CLUSTER = "ci"
IGNORED_LABELS = frozenset({"alertgroup", "cluster"})
"""vmalert labels every alert with its group; Prometheus adds its external labels (``cluster``) to every alert
it sends, vmalert's alerts carry ``cluster`` only where the expression keeps the stored series' labels."""


@dataclass
class Engines:
    exporter: victoria.StandInExporter
    prometheus: victoria.PrometheusReplica
    vm: victoria.VictoriaMetricsServer
    vmalert: victoria.VMAlert

    def both_delivered(self) -> float:
        """A time whose samples are in both stores; returns it."""
        at = time.time()
        self.prometheus.wait_delivered(at + 0.5)
        self.vm.force_flush()
        return at


def _render(own: str, *, target: str, write_url: str, nowhere: str) -> dict[str, Any]:
    p = dataclasses.replace(
        CFG.prometheus, scrape_interval="1s", evaluation_interval="1s", app_scrape_interval="1s",
        keycloak_scrape_interval="1s", app_target=target, keycloak_target=nowhere, self_target=own,
        alertmanager_target=nowhere, alloy_target=nowhere, remote_write_url=write_url, cluster=CLUSTER,
    )
    config = scrape.remote_write_config(dataclasses.replace(CFG, prometheus=p))
    # This Prometheus also evaluates the rules itself, for comparison: its results stay local, so that
    # VictoriaMetrics holds only vmalert's.
    config["remote_write"][0]["write_relabel_configs"] = [
        {"source_labels": ["__name__"], "regex": ".+:.+|ALERTS|ALERTS_FOR_STATE", "action": "drop"}]
    return config


def _healthy() -> dict[str, float]:
    now = time.time()
    return {
        OK_200: 100, "audit_write_failures_total": 0, "audit_events_dropped_total": 0, "audit_queue_size": 0,
        "audit_last_write_timestamp_seconds": now, "audit_chain_broken": 0,
        "audit_chain_last_verification_timestamp_seconds": now, "audit_spool_foreign_rows": 0,
        'http_request_duration_seconds_bucket{method="GET",endpoint="/api/authors",le="0.25"}': 100,
        'http_request_duration_seconds_bucket{method="GET",endpoint="/api/authors",le="+Inf"}': 100,
        'http_request_duration_seconds_count{method="GET",endpoint="/api/authors"}': 100,
        'http_request_duration_seconds_sum{method="GET",endpoint="/api/authors"}': 5,
    }


@pytest.fixture(scope="module")
def engines() -> Iterator[Engines]:
    require("Prometheus", prom.binary(), "apt-get install prometheus")
    require("VictoriaMetrics", victoria.binary(), "apt-get install victoria-metrics")
    require("vmalert", victoria.vmalert_binary(), "apt-get install victoria-metrics")
    nowhere = f"127.0.0.1:{free_port()}"
    with victoria.StandInExporter() as exporter, victoria.VictoriaMetricsServer() as vm, \
            victoria.FakeAlertmanager() as am:
        exporter.put(_healthy())
        local = victoria.PrometheusReplica(
            "a", lambda own: _render(own, target=exporter.address, write_url=vm.write_url, nowhere=nowhere),
            files=RULES)
        with local, victoria.VMAlert([str(ROOT / "prometheus" / "rules" / "*.yml")], datasource_url=vm.url,
                                     notifier_url=am.url) as vmalert:
            local.wait_for(f'up{{job="{JOB}"}} == 1', timeout=60, what="the first scrape")
            vm.wait_for(f'up{{job="{JOB}"}} == 1', timeout=60, what="the first sample in VictoriaMetrics")
            yield Engines(exporter, local, vm, vmalert)


def _decisions(alerts: list[dict[str, Any]]) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {(a["state"], tuple(sorted((k, v) for k, v in a["labels"].items() if k not in IGNORED_LABELS)))
            for a in alerts}


def _names(decisions: set[tuple[str, tuple[tuple[str, str], ...]]]) -> set[tuple[str, str]]:
    return {(dict(labels)["alertname"], state) for state, labels in decisions}


def _agree(engines: Engines, expected: set[tuple[str, str]], timeout: float = 60.0) -> set[Any]:
    """Wait until both engines hold exactly the same alerts (state and labels), ``expected`` among them."""
    deadline = time.monotonic() + timeout
    while True:
        promql = _decisions(engines.prometheus.alerts())
        metricsql = _decisions(engines.vmalert.alerts())
        if promql == metricsql and expected <= _names(promql):
            return promql
        if time.monotonic() > deadline:
            raise AssertionError(f"the engines disagree or miss {sorted(expected - _names(promql))}:\n"
                                 f"  Prometheus only: {sorted(promql - metricsql)}\n"
                                 f"  vmalert only:    {sorted(metricsql - promql)}")
        engines.vm.force_flush()  # vmalert's own queries see new series at once
        time.sleep(0.5)


DOWN = {("TargetDown", "pending")}
"""Keycloak, Alertmanager and Alloy do not run here: their targets are down on both sides (for: 5m)."""


def test_idle_both_engines_hold_the_same_alerts_and_ratios_of_nothing_are_nan_or_absent(engines):
    decided = _agree(engines, DOWN)
    assert {dict(labels)["job"] for _, labels in decided} == {"keycloak", "alertmanager", "alloy"}
    # 0/0: Prometheus records NaN, VictoriaMetrics records nothing; neither can alert on it
    engines.vm.wait_for(f'job:http_requests:rate5m{{job="{JOB}"}} == 0', what="vmalert's recordings")
    ratio = f'job:http_requests_errors:ratio_rate5m{{job="{JOB}"}}'
    recorded = engines.prometheus.wait_for(ratio, what="Prometheus' own recording")
    assert [r["value"][1] for r in recorded] == ["NaN"]
    assert engines.vm.query(ratio) == []


def test_increase_counts_a_series_born_mid_window_only_under_metricsql(engines):
    """The documented difference, measured: a 5xx series that appears at 3 and stays there."""
    engines.exporter.put({ERR_500: 3})
    engines.prometheus.wait_for(f"count_over_time({ERR_500[:-1]},job=\"{JOB}\"}}[1m]) >= 3", what="3 samples")
    at = engines.both_delivered()
    expr = f'increase({ERR_500[:-1]},job="{JOB}"}}[1m])'
    assert [prom.value(r) for r in engines.vm.query(expr, at)] == [3.0]
    assert [prom.value(r) for r in engines.prometheus.query(expr, at)] == [0.0]
    # rate() does not count the born value on either side: the ratios our alerts compare agree
    rate = f'rate({ERR_500[:-1]},job="{JOB}"}}[1m])'
    assert [prom.value(r) for r in engines.vm.query(rate, at)] == [0.0]


def test_a_5xx_burst_raises_the_same_alerts_on_both_engines(engines):
    stop = threading.Event()

    def burst() -> None:  # 10 OK and 10 failed requests a second
        n = 0
        while not stop.wait(0.5):
            n += 5
            engines.exporter.put({OK_200: 100 + n, ERR_500: 3 + n})

    thread = threading.Thread(target=burst, daemon=True)
    thread.start()
    try:
        decided = _agree(engines, DOWN | {("AppHighErrorRatio", "pending"), ("AppAvailabilityBudgetBurn", "pending")})
    finally:
        stop.set()
        thread.join()
    burns = {dict(labels)["long_window"] for state, labels in decided if dict(labels)["alertname"]
             == "AppAvailabilityBudgetBurn"}
    assert burns == {"1h", "6h", "1d", "3d"}  # every burn-rate window, guards (>= 100 requests) passed on both


def test_the_error_ratio_alert_survives_vmalerts_external_labels(engines):
    """vmalert's ``-external.label`` labels recording results too (Prometheus' external labels never touch
    them). AppHighErrorRatio joins a recorded ratio with a raw ``sum by (job)``: it joins ``on (job)``, so one
    extra label on the recorded side still matches; joined by all labels, as it once was, it never fires."""
    expr = _rule_expr("AppHighErrorRatio")
    recorded = f'job:http_requests_errors:ratio_rate5m{{job="{JOB}"}}'
    assert recorded in expr and "and on (job)" in expr
    relabelled = expr.replace(recorded, f'label_set({recorded}, "cluster", "{CLUSTER}")')
    engines.vm.wait_for(expr, what="AppHighErrorRatio's condition on VictoriaMetrics")  # the burst just ended
    assert engines.vm.query(relabelled) != []
    assert engines.vm.query(relabelled.replace("and on (job)", "and")) == []


def _rule_expr(alert: str) -> str:
    return next(rule["expr"] for text in RULES.values() for group in yaml.safe_load(text)["groups"]
                for rule in group["rules"] if rule.get("alert") == alert)


def test_audit_faults_fire_the_same_alerts_on_both_engines(engines):
    """The promtool cases' faults: rows dropped (an increase() > 0 alert) and a broken chain."""
    engines.exporter.set(audit_events_dropped_total=2, audit_chain_broken=1)
    _agree(engines, {("AuditEventsDropped", "firing"), ("AuditChainBroken", "firing")})


def test_the_counters_our_increase_alerts_read_exist_from_the_start(tmp_path):
    """Why the born-mid-window difference cannot touch the audit alerts: the real service exports their
    counters as 0 before the first event, so no such series is ever born late."""
    read_by_increase = set()
    for text in RULES.values():
        for group in yaml.safe_load(text)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule and "increase(audit_" in rule["expr"]:
                    read_by_increase.add(rule["expr"].split("increase(", 1)[1].split("{", 1)[0])
    assert read_by_increase == {"audit_write_failures_total", "audit_events_dropped_total"}
    with AppProcess(workdir=tmp_path) as app:
        first = httpx.get(f"{app.base_url}/metrics", timeout=10).text.splitlines()
    assert {f"{name} 0.0" for name in read_by_increase} <= set(first)
