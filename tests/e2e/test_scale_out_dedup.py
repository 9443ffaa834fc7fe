"""Where the replica label goes decides whether an HA pair is counted once: two pairs of Prometheus replicas,
both rendered by the generator's remote_write variant, scrape one stand-in counter into one VictoriaMetrics
that does no relabeling of its own (``-dedup.minScrapeInterval`` only).

- pair ``sender`` has ``drop_replica_label``: ``write_relabel_configs`` remove the label, the two copies
  coincide and deduplicate: one series, the true value;
- pair ``none`` sends the label (the default, right for Mimir's HA tracker and Thanos' replica label) to a
  store told nothing about it: two series, every ``sum`` doubled. That is why docs/scale-out.md makes the
  store side part of the setup, and why ``test_scale_out.py`` drops the label in VictoriaMetrics.

The ``sender`` pair also evaluates the generated rules, as an HA pair does, and pages a stand-in
Alertmanager: the alerts of both replicas arrive with identical labels (``alert_relabel_configs``), which is
what lets Alertmanager send one notification.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dashboards.config import Config
from dashboards.stack.prometheus import scrape
from tests.support import prometheus as prom
from tests.support import victoria
from tests.support.binaries import free_port, require

pytestmark = pytest.mark.realserver

CFG = Config()
ROOT = Path(__file__).resolve().parents[2]
RULES = {f"rules/{p.name}": p.read_text() for p in sorted((ROOT / "prometheus" / "rules").glob("*.yml"))}
COUNTER = f'http_requests_total{{job="{CFG.app_job}"}}'
VALUE = 42


@dataclass
class Pairs:
    vm: victoria.VictoriaMetricsServer
    alertmanager: victoria.FakeAlertmanager


def _render(own: str, *, cluster: str, drop: bool, target: str, write_url: str, nowhere: str,
            alertmanager: str) -> dict[str, Any]:
    p = dataclasses.replace(
        CFG.prometheus, scrape_interval="1s", evaluation_interval="1s", app_scrape_interval="1s",
        keycloak_scrape_interval="1s", app_target=target, keycloak_target=nowhere, self_target=own,
        alertmanager_target=alertmanager, alloy_target=nowhere, remote_write_url=write_url, cluster=cluster,
        drop_replica_label=drop,
    )
    return scrape.remote_write_config(dataclasses.replace(CFG, prometheus=p))


@pytest.fixture(scope="module")
def pairs() -> Iterator[Pairs]:
    require("Prometheus", prom.binary(), "apt-get install prometheus")
    require("VictoriaMetrics", victoria.binary(), "apt-get install victoria-metrics")
    nowhere = f"127.0.0.1:{free_port()}"
    with victoria.StandInExporter() as exporter, victoria.VictoriaMetricsServer(drop_labels=()) as vm, \
            victoria.FakeAlertmanager() as am:
        exporter.put({'http_requests_total{method="GET",endpoint="/api/authors",status_code="200"}': VALUE})
        exporter.set(audit_chain_broken=1)  # the promtool case's fault: AuditChainBroken, no for:
        replicas = [
            victoria.PrometheusReplica(f"{cluster}-{name}", lambda own, cluster=cluster, drop=drop: _render(
                own, cluster=cluster, drop=drop, target=exporter.address, write_url=vm.write_url, nowhere=nowhere,
                alertmanager=am.address if cluster == "sender" else nowhere),
                files=RULES if cluster == "sender" else None)
            for cluster, drop in (("sender", True), ("none", False)) for name in "ab"
        ]
        victoria.start_all(replicas)
        try:
            until = time.time() + 1
            for replica in replicas:  # every replica's copy has arrived: the answers below are final
                replica.wait_delivered(until)
            # ... once VictoriaMetrics' lookup cache has let go of the series it had not seen yet
            vm.wait_for(f'count({COUNTER[:-1]},cluster="none"}}) == 2', what="both copies of pair none")
            vm.force_flush()
            yield Pairs(vm, am)
        finally:
            for replica in replicas:
                replica.stop()


def _by_cluster(vm: victoria.VictoriaMetricsServer, expr: str) -> dict[str, float]:
    return {r["metric"]["cluster"]: prom.value(r) for r in vm.query(expr)}


def test_dropping_the_replica_label_on_the_way_out_stores_one_copy(pairs):
    series = pairs.vm.query(f'{COUNTER[:-1]},cluster="sender"}}')
    assert len(series) == 1 and "replica" not in series[0]["metric"]
    assert _by_cluster(pairs.vm, f"sum by (cluster) ({COUNTER})")["sender"] == VALUE


def test_a_store_told_nothing_about_the_replica_label_counts_everything_twice(pairs):
    replicas = sorted(r["metric"]["replica"] for r in pairs.vm.query(f'{COUNTER[:-1]},cluster="none"}}'))
    assert replicas == ["none-a", "none-b"]
    assert _by_cluster(pairs.vm, f"sum by (cluster) ({COUNTER})")["none"] == 2 * VALUE


def test_dedup_keeps_one_sample_per_interval_only_for_identical_series(pairs):
    """``-dedup.minScrapeInterval`` merges the sender pair's two 1 s streams into one, and leaves the
    other pair's two label sets alone."""
    at = time.time() - 2  # every replica has delivered this far (wait_delivered above)
    density = _by_cluster(pairs.vm, f"max by (cluster) (count_over_time({COUNTER}[10s]))")
    assert density["sender"] <= 11  # one replica's worth of 1 s samples, not 20
    assert density["none"] <= 11  # each of the two series is one replica's
    assert prom.value(pairs.vm.query(f'count({COUNTER[:-1]},cluster="none"}})', at)[0]) == 2


def test_both_replicas_page_with_identical_alerts_so_alertmanager_sends_one(pairs):
    def from_both() -> list[dict[str, Any]]:
        with pairs.alertmanager.lock:
            got = [a for a in pairs.alertmanager.received if a["labels"].get("alertname") == "AuditChainBroken"]
        return got if len(got) >= 2 else []  # each replica sends its own copy

    received = victoria.poll(from_both, "AuditChainBroken from both replicas", timeout=60)
    labels = {tuple(sorted(a["labels"].items())) for a in received}
    assert len(labels) == 1, labels  # one alert to Alertmanager: it deduplicates identical label sets
    (only,) = labels
    assert dict(only)["cluster"] == "sender" and "replica" not in dict(only)
    sources = {a.get("generatorURL", "").split("/graph")[0] for a in received}
    assert len(sources) == 2  # and both replicas did send it
