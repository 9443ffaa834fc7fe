"""The remote_write variant knows HA: a replica label per replica, dedup left to the store or done on the way
out, and no generated query that could tell the replicas (or the clusters) apart.

The live proof (two replicas, VictoriaMetrics, every panel) is ``tests/e2e/test_scale_out.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import promql_parser as pp
import pytest
import yaml

from dashboards.config import Config, ConfigError, DsType, load_config
from dashboards.grafana import artifacts as grafana
from dashboards.stack.prometheus import artifacts, scrape
from dashboards.validate.panels import targets
from dashboards.validate.variables import PROM_LABEL_VALUES, substitute

CFG = Config()
ROOT = Path(__file__).resolve().parents[2]
HA_LABELS = frozenset({"cluster", CFG.prometheus.replica_label})


def _with(**prometheus: object) -> Config:
    return dataclasses.replace(CFG, prometheus=dataclasses.replace(CFG.prometheus, **prometheus))


def test_each_replica_names_itself_from_its_environment():
    labels = scrape.remote_write_config(CFG)["global"]["external_labels"]
    assert labels == {"cluster": "observability-bundle", "replica": "${PROMETHEUS_REPLICA}"}
    committed = yaml.safe_load((ROOT / "prometheus" / "prometheus-remote-write.yml").read_text())
    assert committed["global"]["external_labels"] == labels
    # the single-node file has no external labels at all: nothing to deduplicate
    assert "external_labels" not in scrape.prometheus_config(CFG)["global"]


def test_alerts_of_both_replicas_are_identical_so_alertmanager_sends_one():
    alerting = scrape.remote_write_config(CFG)["alerting"]
    assert alerting["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]
    assert alerting["alertmanagers"] == scrape.prometheus_config(CFG)["alerting"]["alertmanagers"]
    single = scrape.remote_write_config(_with(replica_label=""))["alerting"]
    assert single == scrape.prometheus_config(CFG)["alerting"]


def test_by_default_the_replica_label_travels_for_the_store_to_deduplicate():
    (target,) = scrape.remote_write_config(CFG)["remote_write"]
    assert "write_relabel_configs" not in target  # Mimir's HA tracker needs to see it


def test_dropping_the_replica_label_on_the_way_out_is_one_switch():
    (target,) = scrape.remote_write_config(_with(drop_replica_label=True))["remote_write"]
    assert target["write_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]
    assert list(target)[:3] == ["url", "name", "write_relabel_configs"]


def test_no_replica_label_means_no_label_and_nothing_to_drop():
    data = scrape.remote_write_config(_with(replica_label="", drop_replica_label=True))
    assert data["global"]["external_labels"] == {"cluster": "observability-bundle"}
    assert "write_relabel_configs" not in data["remote_write"][0]


def test_a_renamed_replica_label_is_the_one_dropped():
    data = scrape.remote_write_config(_with(replica_label="__replica__", replica="b", drop_replica_label=True))
    assert data["global"]["external_labels"] == {"cluster": "observability-bundle", "__replica__": "b"}
    assert data["remote_write"][0]["write_relabel_configs"] == [{"action": "labeldrop", "regex": "__replica__"}]
    assert data["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "__replica__"}]


@pytest.mark.parametrize(
    ("yaml_text", "problem"),
    [
        ("replica_label: cluster", "prometheus.replica_label: 'cluster' is taken"),
        ("replica_label: instance", "prometheus.replica_label: 'instance' is taken"),
        ("replica_label: replica-id", "prometheus.replica_label: 'replica-id' is not a Prometheus label name"),
        ("replica: $PROMETHEUS_REPLICA", "prometheus.replica: '$PROMETHEUS_REPLICA' is neither"),
        ("replica: 'a b'", "prometheus.replica: 'a b' is neither"),
        ("drop_replica_label: 'yes'", "prometheus.drop_replica_label: expected bool, got str"),
    ],
)
def test_the_loader_refuses_replica_settings_that_would_break_dedup(tmp_path: Path, yaml_text: str, problem: str):
    path = tmp_path / "site.yml"
    path.write_text(f"prometheus:\n  {yaml_text}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert any(problem in p for p in err.value.problems), err.value.problems


@pytest.mark.parametrize("value", ["${HOSTNAME}", "prometheus-0", "b"])
def test_the_loader_takes_a_variable_or_a_literal_replica(tmp_path: Path, value: str):
    path = tmp_path / "site.yml"
    path.write_text(f"prometheus:\n  replica: '{value}'\n  drop_replica_label: true\n")
    cfg = load_config(path)
    assert scrape.external_labels(cfg)["replica"] == value
    assert artifacts.check_config(cfg) == []


# --- no generated query may tell replicas or clusters apart ---------------------------------------------------
def _labels_used(node: object) -> Iterator[str]:
    """Every label a PromQL expression filters, groups or matches on."""
    if isinstance(node, pp.MatrixSelector):
        node = node.vector_selector
    if isinstance(node, pp.VectorSelector):
        yield from (m.name for m in node.matchers.matchers)
    elif isinstance(node, pp.AggregateExpr):
        if node.modifier is not None:
            yield from node.modifier.labels
        yield from _labels_used(node.expr)
        if isinstance(node.param, pp.Expr):
            yield from _labels_used(node.param)
    elif isinstance(node, pp.BinaryExpr):
        modifier = node.modifier
        if modifier is not None and modifier.matching is not None:
            yield from modifier.matching.labels
        if modifier is not None:
            yield from modifier.group_labels or []
        yield from _labels_used(node.lhs)
        yield from _labels_used(node.rhs)
    elif isinstance(node, pp.Call):
        for arg in node.args:
            if isinstance(arg, pp.StringLiteral):  # label_replace/label_join name labels as strings
                yield arg.val
            else:
                yield from _labels_used(arg)
    elif isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        yield from _labels_used(node.expr)


def _used(expr: str) -> set[str]:
    match = PROM_LABEL_VALUES.match(expr)
    used = set(_labels_used(pp.parse(substitute(match.group(1) if match else expr))))
    return used | ({match.group(2)} if match else set())


def _generated_promql() -> list[tuple[str, str]]:
    queries = [(t.label, t.expr) for d in grafana.dashboards(CFG).values() for t in targets(d)
               if t.ds_type == DsType.PROMETHEUS]
    for stem in artifacts.stems(CFG):
        for group in yaml.safe_load(artifacts.rules_yml(CFG, stem))["groups"]:
            queries += [(f"{stem}: {r.get('record') or r.get('alert')}", r["expr"]) for r in group["rules"]]
    return queries


def test_no_generated_query_groups_or_filters_by_replica_or_cluster():
    queries = _generated_promql()
    assert len(queries) > 100  # every panel, variable, recording and alert rule
    offenders = {name: sorted(_used(expr) & HA_LABELS) for name, expr in queries if _used(expr) & HA_LABELS}
    assert offenders == {}


def test_the_label_walk_sees_every_place_a_label_can_hide():
    """The check above is only as good as the walk: each way of naming ``replica`` is caught."""
    for expr in ('up{replica="a"}', "sum by (replica) (up)", "sum without (cluster) (rate(up[5m]))",
                 "up / on (replica) up", 'label_replace(up, "x", "$1", "replica", "(.*)")',
                 "up * on (job) group_left (cluster) up", "max(max_over_time(up{cluster!=''}[5m:1m]))"):
        assert _used(expr) & HA_LABELS, expr
    assert _used("label_values(up{job=~\"$job\"}, replica)") == {"job", "replica"}
    assert not _used('sum by (job, instance) (rate(http_requests_total{job="x"}[5m]))') & HA_LABELS
