"""Every key we generate exists in the release we pin, read from that release's own sources.

No Loki or Alloy binary runs here, and Debian's promtool (2.42) and amtool (0.25) are older than the pinned
Prometheus and Alertmanager (they still check what they can, in test_prometheus_*.py and test_alertmanager.py).
So each key a generator can emit is pinned, below, to the struct field that reads it at the upstream tag: the
file and line are where `git show <tag>:<file>` has the field's `yaml:"..."` (or `alloy:"..."`) tag. Keycloak's
repository cannot be fetched at a tag: its options and metric families name the file or guide that defines them.

- A key the generators start emitting fails here until someone finds it at the pinned tag and records it.
- A pin on a new major or minor line (Renovate, renovate.json) fails here until the configs are checked against
  that release and its ``*_CHECKED`` version is moved. Patch releases of a checked line pass: they fix bugs
  and keep the config structs.

What no struct can say (images without a shell, renamed defaults) is checked beside the keys, with its source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.catalogs import keycloak as catalog
from dashboards.config import Alerting, Config, Images, Loki, Stack
from dashboards.stack import compose
from dashboards.stack import loki_config as loki
from dashboards.stack.alloy import artifacts as alloy
from dashboards.stack.alloy.syntax import Attribute, Block, Call, Document, Expr, Ref
from dashboards.stack.prometheus import scrape
from dashboards.stack.prometheus.alertmanager import alertmanager_config
from dashboards.validate.alloy_parse import parse as parse_alloy
from tests.support.keycloak_exporter import SLO_BOUNDS

ROOT = Path(__file__).resolve().parents[2]


OPAQUE = frozenset({"external_labels", "labels", "annotations"})
"""Mappings whose keys are data (label names), not configuration: their own key is checked, not what is inside."""


def key_paths(data: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of every mapping key; list items add ``[]`` (``schema_config.configs[].store``)."""
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            if key not in OPAQUE:
                yield from key_paths(value, path)
    elif isinstance(data, list):
        for item in data:
            yield from key_paths(item, f"{prefix}[]")


def tag_of(image: str) -> str:
    """``grafana/loki:3.7.6`` -> ``3.7.6``, also when pinned to a digest (``...:3.7.6@sha256:...``)."""
    return image.split("@", 1)[0].rpartition(":")[2]


def release_line(image: str) -> str:
    """``grafana/loki:3.7.6`` -> ``3.7``; ``prom/prometheus:v3.14.0`` -> ``3.14``."""
    tag = tag_of(image).removeprefix("v")
    match = re.match(r"(\d+)\.(\d+)", tag)
    assert match, image
    return ".".join(match.groups())


def line_of(version: str) -> str:
    return ".".join(version.removeprefix("v").split(".")[:2])


# --- Loki ---------------------------------------------------------------------------------------------------------
LOKI_CHECKED = "v3.7.6"
"""grafana/loki tag the keys below were read at."""

LOKI_KEYS = {
    "auth_enabled": "pkg/loki/loki.go:86",
    "server": "pkg/loki/loki.go:90",
    "server.http_listen_port": "vendor/github.com/grafana/dskit/server/server.go:94",
    "server.grpc_listen_port": "vendor/github.com/grafana/dskit/server/server.go:98",
    "server.log_format": "vendor/github.com/grafana/dskit/server/server.go:146",
    "server.log_level": "vendor/github.com/grafana/dskit/server/server.go:147",
    "common": "pkg/loki/loki.go:136",
    "common.path_prefix": "pkg/loki/common/common.go:27",
    "common.storage": "pkg/loki/common/common.go:28",
    "common.replication_factor": "pkg/loki/common/common.go:30",
    "common.ring": "pkg/loki/common/common.go:31",
    "common.instance_addr": "pkg/loki/common/common.go:45",
    "common.ring.kvstore": "pkg/util/ring/ring_config.go:27",
    "common.ring.kvstore.store": "vendor/github.com/grafana/dskit/kv/client.go:57",
    "common.storage.s3": "pkg/loki/common/common.go:81",
    "common.storage.filesystem": "pkg/loki/common/common.go:87",
    "common.storage.filesystem.chunks_directory": "pkg/loki/common/common.go:110",
    "common.storage.filesystem.rules_directory": "pkg/loki/common/common.go:111",
    "common.storage.s3.bucketnames": "pkg/storage/chunk/client/aws/s3_storage_client.go:74",
    "common.storage.s3.endpoint": "pkg/storage/chunk/client/aws/s3_storage_client.go:75",
    "common.storage.s3.region": "pkg/storage/chunk/client/aws/s3_storage_client.go:76",
    "common.storage.s3.access_key_id": "pkg/storage/chunk/client/aws/s3_storage_client.go:77",
    "common.storage.s3.secret_access_key": "pkg/storage/chunk/client/aws/s3_storage_client.go:78",
    "common.storage.s3.insecure": "pkg/storage/chunk/client/aws/s3_storage_client.go:80",
    # S3ForcePathStyle has no yaml tag (s3_storage_client.go:72): yaml.v2 lower-cases the field name, and the
    # reference documents it so (docs/sources/shared/configuration.md:6058 `[s3forcepathstyle: <boolean>]`).
    "common.storage.s3.s3forcepathstyle": "pkg/storage/chunk/client/aws/s3_storage_client.go:72",
    "memberlist": "pkg/loki/loki.go:116",
    "memberlist.join_members": "vendor/github.com/grafana/dskit/kv/memberlist/memberlist_client.go:158",
    "schema_config": "pkg/loki/loki.go:109",
    "schema_config.configs": "pkg/storage/config/schema_config.go:276",
    "schema_config.configs[].from": "pkg/storage/config/schema_config.go:139",
    "schema_config.configs[].store": "pkg/storage/config/schema_config.go:141",
    "schema_config.configs[].object_store": "pkg/storage/config/schema_config.go:143",
    "schema_config.configs[].schema": "pkg/storage/config/schema_config.go:144",
    "schema_config.configs[].index": "pkg/storage/config/schema_config.go:145",
    "schema_config.configs[].index.prefix": "pkg/storage/config/schema_config.go:598",
    "schema_config.configs[].index.period": "pkg/storage/config/schema_config.go:599",
    "storage_config": "pkg/loki/loki.go:107",
    "storage_config.tsdb_shipper": "pkg/storage/factory.go:304",
    "storage_config.tsdb_shipper.active_index_directory": "pkg/storage/stores/shipper/indexshipper/shipper.go:64",
    "storage_config.tsdb_shipper.cache_location": "pkg/storage/stores/shipper/indexshipper/shipper.go:65",
    "compactor": "pkg/loki/loki.go:110",
    "compactor.working_directory": "pkg/compactor/config.go:21",
    "compactor.compaction_interval": "pkg/compactor/config.go:22",
    "compactor.retention_enabled": "pkg/compactor/config.go:24",
    "compactor.retention_delete_delay": "pkg/compactor/config.go:25",
    "compactor.retention_delete_worker_count": "pkg/compactor/config.go:26",
    "compactor.delete_request_store": "pkg/compactor/config.go:29",
    "limits_config": "pkg/loki/loki.go:113",
    "limits_config.ingestion_rate_mb": "pkg/validation/limits.go:95",
    "limits_config.ingestion_burst_size_mb": "pkg/validation/limits.go:96",
    "limits_config.max_label_names_per_series": "pkg/validation/limits.go:99",
    "limits_config.reject_old_samples": "pkg/validation/limits.go:100",
    "limits_config.reject_old_samples_max_age": "pkg/validation/limits.go:101",
    "limits_config.per_stream_rate_limit": "pkg/validation/limits.go:124",
    "limits_config.per_stream_rate_limit_burst": "pkg/validation/limits.go:125",
    "limits_config.max_query_lookback": "pkg/validation/limits.go:130",
    "limits_config.volume_enabled": "pkg/validation/limits.go:161",
    "limits_config.retention_period": "pkg/validation/limits.go:215",
    "limits_config.allow_structured_metadata": "pkg/validation/limits.go:251",
    "analytics": "pkg/loki/loki.go:127",
    "analytics.reporting_enabled": "pkg/analytics/reporter.go:52",
}
"""Every key loki.yml and loki-s3.yml can carry -> its field at LOKI_CHECKED. None of them is listed in
tools/deprecated-config-checker/{deprecated,deleted}-config.yaml at that tag; schema v13 is still the
"current recommended" one (schema_config.go:144)."""


def _loki_variants() -> Iterator[dict[str, Any]]:
    for storage in loki.BACKENDS:
        cfg = Config(stack=Stack(loki=Loki(storage=storage)))
        yield loki.config(cfg, storage)


def test_every_loki_key_is_a_field_of_the_pinned_release():
    emitted = {path for data in _loki_variants() for path in key_paths(data)}
    assert emitted == set(LOKI_KEYS), (
        f"not checked at {LOKI_CHECKED}: {sorted(emitted - set(LOKI_KEYS))}; "
        f"no longer emitted: {sorted(set(LOKI_KEYS) - emitted)}")


def test_loki_pin_is_on_the_checked_line():
    assert release_line(Images().loki) == line_of(LOKI_CHECKED), (
        f"{Images().loki}: check loki/*.yml against its sources, then move LOKI_CHECKED")


def test_loki_healthcheck_needs_no_shell():
    """3.6+ images are `FROM gcr.io/distroless/static:nonroot` (cmd/loki/Dockerfile at LOKI_CHECKED): nothing but
    /usr/bin/loki, whose `-health` flag (cmd/loki/health.go) GETs /ready before any config is parsed."""
    check = compose.services(Config())["loki"]["healthcheck"]["test"]
    assert check[:3] == ["CMD", "/usr/bin/loki", "-health"]
    assert check[3] == f"-health.url=http://127.0.0.1:{loki.HTTP_PORT}/ready"


@pytest.mark.parametrize(("image", "line"), [
    ("grafana/loki:3.7.6", "3.7"), ("prom/prometheus:v3.14.0", "3.14"), ("quay.io/keycloak/keycloak:26.8.0", "26.8"),
    ("grafana/grafana:13.2.0@sha256:" + "0" * 64, "13.2"),
])
def test_release_line_reads_major_and_minor(image, line):
    assert release_line(image) == line


# --- Alloy --------------------------------------------------------------------------------------------------------
ALLOY_CHECKED = "v1.19.0"
"""grafana/alloy release the arguments below were read at: commit acc8ece18e "chore(main): Release 1.19.0"
(CHANGELOG "1.19.0 (2026-08-20)", tagged v1.19.0-rc.3 in the stored snapshot). 1.19.1 and 1.19.2 are patch
releases of that line."""

ALLOY_ARGUMENTS = {
    "logging.level": "internal/runtime/logging/options.go:15",
    "logging.format": "internal/runtime/logging/options.go:16",
    "discovery.docker.host": "internal/component/discovery/docker/docker.go:33",
    "discovery.docker.refresh_interval": "internal/component/discovery/docker/docker.go:36",
    "discovery.relabel.targets": "internal/component/discovery/relabel/relabel.go:31",
    "discovery.relabel/rule": "internal/component/discovery/relabel/relabel.go:34",
    "discovery.relabel/rule.source_labels": "internal/component/common/relabel/relabel.go:134",
    "discovery.relabel/rule.regex": "internal/component/common/relabel/relabel.go:136",
    "discovery.relabel/rule.target_label": "internal/component/common/relabel/relabel.go:138",
    "discovery.relabel/rule.action": "internal/component/common/relabel/relabel.go:140",
    "loki.source.docker.host": "internal/component/loki/source/docker/docker.go:58",
    "loki.source.docker.targets": "internal/component/loki/source/docker/docker.go:59",
    "loki.source.docker.forward_to": "internal/component/loki/source/docker/docker.go:60",
    "loki.source.docker.refresh_interval": "internal/component/loki/source/docker/docker.go:64",
    "loki.process.forward_to": "internal/component/loki/process/process.go:32",
    # `stage` is an enum block (process.go:33): its members are the fields of StageConfig in stages/pipeline.go
    "loki.process/stage.json": "internal/component/loki/process/stages/pipeline.go:25",
    "loki.process/stage.json.expressions": "internal/component/loki/process/stages/json.go:25",
    "loki.process/stage.labels": "internal/component/loki/process/stages/pipeline.go:28",
    "loki.process/stage.labels.values": "internal/component/loki/process/stages/labels.go:25",
    "loki.process/stage.structured_metadata": "internal/component/loki/process/stages/pipeline.go:42",
    "loki.process/stage.structured_metadata.values": "internal/component/loki/process/stages/structured_metadata.go:16",
    "loki.process/stage.timestamp": "internal/component/loki/process/stages/pipeline.go:48",
    "loki.process/stage.timestamp.source": "internal/component/loki/process/stages/timestamp.go:55",
    "loki.process/stage.timestamp.format": "internal/component/loki/process/stages/timestamp.go:56",
    "loki.write/endpoint": "internal/component/loki/write/write.go:36",
    "loki.write/endpoint.url": "internal/component/loki/write/types.go:20",
}
"""Every argument and block of alloy/config.alloy -> its `alloy:"..."` field at ALLOY_CHECKED. Block paths are
``component/block``; object keys (the JSON fields, label names) are values, not arguments."""

ALLOY_EXPORTS = {
    "discovery.docker.targets": "internal/component/discovery/discovery.go:18",
    "discovery.relabel.output": "internal/component/discovery/relabel/relabel.go:39",
    "loki.process.receiver": "internal/component/loki/process/process.go:39",
    "loki.write.receiver": "internal/component/loki/write/write.go:74",
}
"""Component exports the document references (``loki.write.default.receiver``) -> their field."""

ALLOY_FLAGS = {
    "run": "internal/alloycli/cmd_run.go",
    "--server.http.listen-addr": "internal/alloycli/cmd_run.go:188",
    "--storage.path": "internal/alloycli/cmd_run.go:240",
}
"""Command-line flags docker-compose passes to the alloy service."""


def _alloy_arguments(body: tuple[Attribute | Block, ...], prefix: str) -> Iterator[str]:
    for statement in body:
        if isinstance(statement, Attribute):
            yield f"{prefix}.{statement.name}"
        elif isinstance(statement, Block):
            path = f"{prefix}/{statement.name}" if prefix else statement.name
            if prefix:
                yield path
            yield from _alloy_arguments(statement.body, path)


def _alloy_document() -> Document:
    """The deployed text, read back (the generator writes exactly this: build --check)."""
    return parse_alloy((ROOT / alloy.PATH).read_text())


def _refs(value: Expr) -> Iterator[Ref]:
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, Call):
        for arg in value.args:
            yield from _refs(arg)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _refs(item)


def test_every_alloy_argument_is_a_field_of_the_pinned_release():
    emitted = set(_alloy_arguments(_alloy_document().body, ""))
    assert emitted == set(ALLOY_ARGUMENTS), (
        f"not checked at {ALLOY_CHECKED}: {sorted(emitted - set(ALLOY_ARGUMENTS))}; "
        f"no longer emitted: {sorted(set(ALLOY_ARGUMENTS) - emitted)}")


def test_every_alloy_reference_is_an_export_of_the_pinned_release():
    doc = _alloy_document()
    kind = {blk.id: blk.name for blk in doc.blocks() if blk.label}
    used = set()
    for blk in doc.blocks():
        for statement in blk.body:
            for ref in _refs(statement.value) if isinstance(statement, Attribute) else ():
                component, _, export = ref.path.rpartition(".")
                used.add(f"{kind[component]}.{export}")
    assert used == set(ALLOY_EXPORTS)


def test_alloy_flags_exist_and_the_pin_is_on_the_checked_line():
    command = compose.services(Config())["alloy"]["command"]
    assert [arg.split("=", 1)[0] for arg in command if not arg.startswith("/")] == list(ALLOY_FLAGS)
    assert release_line(Images().alloy) == line_of(ALLOY_CHECKED), (
        f"{Images().alloy}: check alloy/config.alloy against its sources, then move ALLOY_CHECKED")


def test_alloy_healthcheck_uses_what_the_image_has():
    """The image is ubuntu:noble with bash and no curl/wget (Dockerfile at ALLOY_CHECKED), running as root (no USER),
    so it can read the Docker socket; /-/ready is served by internal/service/http/http.go:255."""
    check = compose.services(Config())["alloy"]["healthcheck"]["test"]
    assert check[:3] == ["CMD", "bash", "-c"] and "/-/ready" in check[3]


# --- Prometheus ---------------------------------------------------------------------------------------------------
PROMETHEUS_CHECKED = "v3.14.0"
"""prometheus/prometheus tag the keys below were read at. Debian's promtool 2.42 also checks the files
(test_prometheus_config.py, test_prometheus_rules.py); it cannot know keys added after 2.42, so none is emitted."""

PROMETHEUS_KEYS = {
    "global": "config/config.go:293",
    "global.scrape_interval": "config/config.go:485",
    "global.evaluation_interval": "config/config.go:494",
    "global.external_labels": "config/config.go:502",
    "rule_files": "config/config.go:296",
    "alerting": "config/config.go:295",
    "alerting.alertmanagers": "config/config.go:1275",
    # the HA pair's remote-write variant drops its replica label from alerts, so Alertmanager sees one alert
    "alerting.alert_relabel_configs": "config/config.go:1274",
    "alerting.alert_relabel_configs[].action": "model/relabel/relabel.go:102",
    "alerting.alert_relabel_configs[].regex": "model/relabel/relabel.go:93",
    # static_configs is the one service discovery registered by default (discovery/registry.go:33,58)
    "alerting.alertmanagers[].static_configs": "discovery/registry.go:33",
    "alerting.alertmanagers[].static_configs[].targets": "discovery/targetgroup/targetgroup.go:42",
    "scrape_configs": "config/config.go:298",
    "scrape_configs[].job_name": "config/config.go:766",
    "scrape_configs[].scrape_interval": "config/config.go:776",
    "scrape_configs[].metrics_path": "config/config.go:798",
    "scrape_configs[].static_configs": "discovery/registry.go:33",
    "scrape_configs[].static_configs[].targets": "discovery/targetgroup/targetgroup.go:42",
    "remote_write": "config/config.go:302",
    "remote_write[].url": "config/config.go:1483",
    "remote_write[].name": "config/config.go:1487",
    "remote_write[].send_exemplars": "config/config.go:1488",
    "remote_write[].queue_config": "config/config.go:1498",
    "remote_write[].queue_config.capacity": "config/config.go:1613",
    "remote_write[].queue_config.max_shards": "config/config.go:1616",
    "remote_write[].queue_config.min_shards": "config/config.go:1619",
    "remote_write[].queue_config.max_samples_per_send": "config/config.go:1622",
    "remote_write[].queue_config.batch_send_deadline": "config/config.go:1625",
    "remote_write[].queue_config.min_backoff": "config/config.go:1628",
    "remote_write[].queue_config.max_backoff": "config/config.go:1629",
    "remote_write[].metadata_config": "config/config.go:1499",
    "remote_write[].metadata_config.send": "config/config.go:1663",
    "remote_write[].metadata_config.send_interval": "config/config.go:1665",
}
"""Every key of prometheus.yml and prometheus-remote-write.yml (label names under external_labels are values)."""

RULE_FILE_KEYS = {
    "groups": "model/rulefmt/rulefmt.go:93",
    "groups[].name": "model/rulefmt/rulefmt.go:160",
    "groups[].rules": "model/rulefmt/rulefmt.go:164",
    "groups[].rules[].record": "model/rulefmt/rulefmt.go:181",
    "groups[].rules[].alert": "model/rulefmt/rulefmt.go:182",
    "groups[].rules[].expr": "model/rulefmt/rulefmt.go:183",
    "groups[].rules[].for": "model/rulefmt/rulefmt.go:184",
    "groups[].rules[].labels": "model/rulefmt/rulefmt.go:186",
    "groups[].rules[].annotations": "model/rulefmt/rulefmt.go:187",
}
"""Every key of prometheus/rules/*.yml (label and annotation names are values)."""

PROMETHEUS_FLAGS = {
    "--config.file": "cmd/prometheus/main.go:415",
    "--storage.tsdb.path": "cmd/prometheus/main.go:490",
    # "[DEPRECATED] ... use the storage.tsdb.retention.time field in the config file instead" (since 3.8.0), still
    # read. The config field (config.go:1105 TSDBRetentionConfig) is unknown to promtool 2.42, which checks the file.
    "--storage.tsdb.retention.time": "cmd/prometheus/main.go:508",
    "--enable-feature": "cmd/prometheus/main.go:235",  # the exemplar-storage case
    "--web.enable-lifecycle": "cmd/prometheus/main.go:460",
}


def test_every_prometheus_key_is_a_field_of_the_pinned_release():
    cfg = Config()
    emitted = {*key_paths(scrape.prometheus_config(cfg)), *key_paths(scrape.remote_write_config(cfg))}
    assert emitted == set(PROMETHEUS_KEYS), (
        f"not checked at {PROMETHEUS_CHECKED}: {sorted(emitted - set(PROMETHEUS_KEYS))}; "
        f"no longer emitted: {sorted(set(PROMETHEUS_KEYS) - emitted)}")


def test_every_rule_file_key_is_a_field_of_the_pinned_release():
    emitted = {p for path in sorted((ROOT / "prometheus/rules").glob("*.yml"))
               for p in key_paths(yaml.safe_load(path.read_text()))}
    assert emitted == set(RULE_FILE_KEYS), sorted(emitted ^ set(RULE_FILE_KEYS))


def test_prometheus_flags_exist_and_the_pin_is_on_the_checked_line():
    command = compose.services(Config())["prometheus"]["command"]
    assert [arg.split("=", 1)[0] for arg in command] == list(PROMETHEUS_FLAGS)
    assert "--enable-feature=exemplar-storage" in command
    assert release_line(Images().prometheus) == line_of(PROMETHEUS_CHECKED), (
        f"{Images().prometheus}: check prometheus/*.yml and the rules against its sources, then move "
        "PROMETHEUS_CHECKED")


# --- Alertmanager -------------------------------------------------------------------------------------------------
ALERTMANAGER_CHECKED = "v0.34.0"
"""prometheus/alertmanager tag the keys below were read at. Debian's amtool is 0.25.0 (test_alertmanager.py runs
it on the default config); it predates `url_file` (0.26.0), so the webhook_url_dir variant is checked here only."""

ALERTMANAGER_KEYS = {
    "global": "config/config.go:285",
    "global.resolve_timeout": "config/config.go:833",
    "route": "config/config.go:286",
    "route.receiver": "config/config.go:888",
    "route.group_by": "config/config.go:890",
    "route.routes": "config/config.go:901",
    "route.routes[].receiver": "config/config.go:888",
    "route.routes[].matchers": "config/config.go:897",
    "route.group_wait": "config/config.go:903",
    "route.group_interval": "config/config.go:904",
    "route.repeat_interval": "config/config.go:905",
    "inhibit_rules": "config/config.go:287",
    "inhibit_rules[].source_matchers": "config/common/inhibitrule.go:37",
    "inhibit_rules[].target_matchers": "config/common/inhibitrule.go:45",
    "inhibit_rules[].equal": "config/common/inhibitrule.go:48",
    "receivers": "config/config.go:288",
    "receivers[].name": "config/config.go:975",
    "receivers[].webhook_configs": "config/config.go:984",
    "receivers[].webhook_configs[].url": "notify/webhook/config.go:39",
    "receivers[].webhook_configs[].url_file": "notify/webhook/config.go:40",
    # inlined NotifierConfig (notify/webhook/config.go:34); true is already the default (config.go:26-29 there)
    "receivers[].webhook_configs[].send_resolved": "config/common/notifierconfig.go:18",
}
"""Every key alertmanager.yml can carry, with and without ``alerting.webhook_url_dir``. 0.31 made the webhook
`url` a templatable secret URL (SecretTemplateURL): plain URLs are read as before."""

ALERTMANAGER_FLAGS = {"--config.file": "cmd/alertmanager/main.go:51", "--storage.path": "cmd/alertmanager/main.go:52"}


def test_every_alertmanager_key_is_a_field_of_the_pinned_release():
    with_urls, with_files = Config(), Config(alerting=Alerting(webhook_url_dir="/run/secrets/alertmanager"))
    emitted = {*key_paths(alertmanager_config(with_urls)), *key_paths(alertmanager_config(with_files))}
    assert emitted == set(ALERTMANAGER_KEYS), (
        f"not checked at {ALERTMANAGER_CHECKED}: {sorted(emitted - set(ALERTMANAGER_KEYS))}; "
        f"no longer emitted: {sorted(set(ALERTMANAGER_KEYS) - emitted)}")


def test_alertmanager_flags_exist_and_the_pin_is_on_the_checked_line():
    command = compose.services(Config())["alertmanager"]["command"]
    assert [arg.split("=", 1)[0] for arg in command] == list(ALERTMANAGER_FLAGS)
    assert release_line(Images().alertmanager) == line_of(ALERTMANAGER_CHECKED), (
        f"{Images().alertmanager}: check alertmanager.yml against its sources, then move ALERTMANAGER_CHECKED")


@pytest.mark.parametrize("service", ["prometheus", "alertmanager"])
def test_prometheus_images_healthcheck_with_busybox_wget(service):
    """prom/prometheus and prom/alertmanager are FROM quay.io/prometheus/busybox (Dockerfile at the checked tags);
    Prometheus' `-distroless` variant (3.10+) would have no wget: it is not what we pin."""
    image = getattr(Images(), service)
    assert "distroless" not in image
    assert compose.services(Config())[service]["healthcheck"]["test"][:2] == ["CMD", "wget"]


# --- PostgreSQL ---------------------------------------------------------------------------------------------------
POSTGRES_CHECKED = "18"
"""Major line of the postgres image the layout below was read for: docker-library/postgres 18/trixie/Dockerfile
(lines 189-192: `ENV PGDATA /var/lib/postgresql/18/docker`, `VOLUME /var/lib/postgresql`) and
18/trixie/docker-entrypoint.sh (lines 244-256 collect clusters at the old places, /var/lib/postgresql/data
counting when it is a mount, and docker_error_old_databases at line 141 refuses to initialise over them), in the
snapshot of 2026-02-26. So a 16.x volume mounted at either place stops the container instead of being ignored."""


def test_postgres_volume_is_where_the_18_image_keeps_its_cluster():
    pg = compose.services(Config())["postgres"]
    assert f"postgres-data:{compose.POSTGRES_VOLUME}" in pg["volumes"]
    assert compose.POSTGRES_VOLUME == "/var/lib/postgresql"
    assert not any(v.split(":")[1].startswith("/var/lib/postgresql/data") for v in pg["volumes"])
    assert pg["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert tag_of(Images().postgres).split(".")[0] == POSTGRES_CHECKED, (
        f"{Images().postgres}: check the image's PGDATA/VOLUME layout, then move POSTGRES_CHECKED")


# --- Keycloak -----------------------------------------------------------------------------------------------------
KEYCLOAK_CHECKED = "26.8.0"
"""Keycloak release the options and metric families below were checked for. keycloak/keycloak is too large to fetch
as a snapshot: the sources are its files as indexed (docs/guides/observability/*.adoc, quarkus/config-api/src/main/
java/org/keycloak/config/*Options.java) and the upgrading notes docs/documentation/upgrading/topics/changes/
changes-26_{3..8}_0.adoc, which rename no metric and no option we set."""

_CONFIG = "quarkus/config-api/src/main/java/org/keycloak/config/"
KEYCLOAK_OPTIONS = {
    "KC_BOOTSTRAP_ADMIN_USERNAME": _CONFIG + "BootstrapAdminOptions.java bootstrap-admin-username",
    "KC_BOOTSTRAP_ADMIN_PASSWORD": _CONFIG + "BootstrapAdminOptions.java bootstrap-admin-password",
    "KC_HOSTNAME": _CONFIG + "HostnameV2Options.java hostname",
    "KC_HOSTNAME_ADMIN": _CONFIG + "HostnameV2Options.java hostname-admin",
    "KC_HTTP_ENABLED": _CONFIG + "HttpOptions.java http-enabled",
    "KC_DB": _CONFIG + "DatabaseOptions.java db",
    "KC_DB_URL": _CONFIG + "DatabaseOptions.java db-url",
    "KC_DB_USERNAME": _CONFIG + "DatabaseOptions.java db-username",
    "KC_DB_PASSWORD": _CONFIG + "DatabaseOptions.java db-password",
    "KC_HEALTH_ENABLED": _CONFIG + "HealthOptions.java health-enabled",
    "KC_METRICS_ENABLED": _CONFIG + "MetricsOptions.java metrics-enabled (build time, default false)",
    # supported (no --features flag) since 26.2: docs/guides/observability/event-metrics.adoc
    "KC_EVENT_METRICS_USER_ENABLED": _CONFIG + "EventOptions.java event-metrics-user-enabled (build time)",
    "KC_EVENT_METRICS_USER_TAGS": _CONFIG + "EventOptions.java event-metrics-user-tags (realm, idp, clientId)",
    "KC_HTTP_METRICS_SLOS": _CONFIG + "HttpOptions.java http-metrics-slos (ms; adds the `le` buckets)",
}
"""Every KC_* variable compose sets -> the option it sets (env form: KC_ + upper case, dashes to underscores)."""

_GUIDES = "docs/guides/observability/"
KEYCLOAK_FAMILIES = {
    "keycloak_user_events_total": _GUIDES + "metrics-for-troubleshooting-keycloak.adoc",
    "keycloak_credentials_password_hashing_validations_total": _GUIDES + "metrics-for-troubleshooting-keycloak.adoc",
    "http_server_requests_seconds": _GUIDES + "metrics-for-troubleshooting-http.adoc",
    "http_server_requests_seconds_max": _GUIDES + "metrics-for-troubleshooting-http.adoc (Micrometer timer max)",
    "http_server_active_requests": _GUIDES + "metrics-for-troubleshooting-http.adoc",
    "jvm_info_total": _GUIDES + "metrics-for-troubleshooting-jvm.adoc",
    "jvm_memory_used_bytes": _GUIDES + "metrics-for-troubleshooting-jvm.adoc",
    "jvm_memory_committed_bytes": _GUIDES + "metrics-for-troubleshooting-jvm.adoc",
    "jvm_gc_pause_seconds": _GUIDES + "metrics-for-troubleshooting-jvm.adoc",
    "jvm_gc_pause_seconds_max": _GUIDES + "metrics-for-troubleshooting-jvm.adoc",
    "jvm_gc_overhead": _GUIDES + "metrics-for-troubleshooting-jvm.adoc",
    "process_cpu_usage": _GUIDES + "metrics-for-troubleshooting-jvm.adoc",
    "system_cpu_usage": _GUIDES + "metrics-for-troubleshooting-jvm.adoc",
    "jvm_memory_usage_after_gc_percent": _GUIDES + "configuration-metrics.adoc (sample output)",
    "jvm_threads_peak_threads": _GUIDES + "configuration-metrics.adoc (sample output)",
    "process_start_time_seconds": _GUIDES + "configuration-metrics.adoc (sample output)",
    "system_load_average_1m": _GUIDES + "configuration-metrics.adoc (sample output)",
    "jvm_memory_max_bytes": "Micrometer JvmMemoryMetrics (Quarkus micrometer JVM binder)",
    "jvm_threads_live_threads": "Micrometer JvmThreadMetrics",
    "jvm_threads_daemon_threads": "Micrometer JvmThreadMetrics",
    "jvm_threads_states_threads": "Micrometer JvmThreadMetrics",
    "jvm_classes_loaded_classes": "Micrometer ClassLoaderMetrics",
    "process_uptime_seconds": "Micrometer UptimeMetrics",
    "process_files_open_files": "Micrometer FileDescriptorMetrics",
    "agroal_active_count": _GUIDES + "metrics-for-troubleshooting-database.adoc",
    "agroal_available_count": _GUIDES + "metrics-for-troubleshooting-database.adoc",
    "agroal_awaiting_count": _GUIDES + "metrics-for-troubleshooting-database.adoc",
    **{f"agroal_{name}": "Agroal pool metrics (quarkus-agroal, datasource tag)" for name in (
        "max_used_count", "acquire_count_total", "creation_count_total", "destroy_count_total",
        "flush_count_total", "invalid_count_total", "leak_detection_count_total", "reap_count_total",
        "blocking_time_average_milliseconds", "blocking_time_max_milliseconds",
        "blocking_time_total_milliseconds")},
    "vendor_statistics_approximate_entries": _GUIDES + "partials/ispn_metrics.adoc",
    "vendor_statistics_hit_times_seconds": _GUIDES + "partials/ispn_metrics.adoc",
    "vendor_statistics_miss_times_seconds": _GUIDES + "partials/ispn_metrics.adoc",
}
"""Every family of dashboards/catalogs/keycloak.py -> where Keycloak documents it, or the binder that registers it."""

KEYCLOAK_TAGS = {
    "keycloak_user_events_total": {"realm", "client_id", "idp", "event", "error"},
    "keycloak_credentials_password_hashing_validations_total": {"realm", "algorithm", "hashing_strength", "outcome"},
    "http_server_requests_seconds": {"method", "outcome", "status", "uri"},
    "vendor_statistics_approximate_entries": {"cache"},
}
"""Tags the guides list for a family ("Tags" blocks; ispn_metrics.adoc's global tag `cache`)."""


def test_every_keycloak_option_compose_sets_exists():
    env = compose.services(Config())["keycloak"]["environment"]
    assert set(env) == set(KEYCLOAK_OPTIONS)
    assert set(env["KC_EVENT_METRICS_USER_TAGS"].split(",")) <= {"realm", "idp", "clientId"}


def test_the_slo_buckets_keycloak_is_told_to_make_are_the_ones_its_stand_in_serves():
    slos = compose.services(Config())["keycloak"]["environment"]["KC_HTTP_METRICS_SLOS"]
    assert tuple(int(ms) / 1000 for ms in slos.split(",")) == SLO_BOUNDS


def test_every_keycloak_family_is_documented_with_its_tags():
    assert {f.name for f in catalog.FAMILIES} == set(KEYCLOAK_FAMILIES)
    for name, tags in KEYCLOAK_TAGS.items():
        assert tags <= set(catalog.BY_NAME[name].labels), name


def test_keycloak_pin_is_on_the_checked_line_and_may_finish_its_shutdown():
    assert release_line(Images().keycloak) == line_of(KEYCLOAK_CHECKED), (
        f"{Images().keycloak}: check its metrics and options (upgrading notes), then move KEYCLOAK_CHECKED")
    kc = compose.services(Config())["keycloak"]
    # 26.7: shutdown-delay 1 s and shutdown-timeout 10 s by default (keycloak#48341, #49177); compose's own default
    # grace period is 10 s, after which it kills
    assert int(kc["stop_grace_period"].removesuffix("s")) > 1 + 10
    assert kc["healthcheck"]["test"][:2] == ["CMD", "bash"]  # the UBI-based image has bash, no curl
