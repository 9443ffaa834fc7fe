"""Every key we generate exists in the release we pin, read from that release's own sources.

No Loki or Alloy binary runs here, and Debian's promtool (2.42) and amtool (0.25) are older than the pinned
Prometheus and Alertmanager (they still check what they can, in test_prometheus_*.py and test_alertmanager.py).
So each key a generator can emit is pinned, below, to the struct field that reads it at the upstream tag: the
file and line are where `git show <tag>:<file>` has the field's `yaml:"..."` (or `alloy:"..."`) tag.

- A key the generators start emitting fails here until someone finds it at the pinned tag and records it.
- A pin on a new major or minor line (Renovate, renovate.json) fails here until the configs are checked against
  that release and its ``*_CHECKED`` version is moved. Patch releases of a checked line pass: they fix bugs
  and keep the config structs.

What no struct can say (images without a shell, renamed defaults) is checked beside the keys, with its source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from dashboards.config import Config, Images, Loki, Stack
from dashboards.stack import compose
from dashboards.stack import loki_config as loki


def key_paths(data: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of every mapping key; list items add ``[]`` (``schema_config.configs[].store``)."""
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from key_paths(value, path)
    elif isinstance(data, list):
        for item in data:
            yield from key_paths(item, f"{prefix}[]")


def release_line(image: str) -> str:
    """``grafana/loki:3.7.6`` -> ``3.7``; ``prom/prometheus:v3.14.0`` -> ``3.14``."""
    tag = image.rpartition(":")[2].removeprefix("v")
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
])
def test_release_line_reads_major_and_minor(image, line):
    assert release_line(image) == line
