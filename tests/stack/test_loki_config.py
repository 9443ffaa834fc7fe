"""Loki configs: retention really deletes, schema v13/tsdb, structured metadata, limits; bad configs are named."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.config import Config, Loki, Stack
from dashboards.stack import loki_config as loki

ROOT = Path(__file__).resolve().parents[2]


def committed(path: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / path).read_text())


def test_committed_configs_pass_every_check():
    assert loki.check(committed(loki.FILESYSTEM_PATH)) == []
    assert loki.check(committed(loki.S3_PATH)) == []


def test_retention_is_really_on_with_a_non_zero_period():
    data = committed(loki.FILESYSTEM_PATH)
    assert data["compactor"]["retention_enabled"] is True
    assert data["compactor"]["delete_request_store"] == "filesystem"
    assert data["limits_config"]["retention_period"] == "720h"
    assert loki.duration_seconds(data["limits_config"]["retention_period"]) == 30 * 86400


def test_single_binary_uses_tsdb_v13_on_the_loki_volume_with_structured_metadata():
    data = committed(loki.FILESYSTEM_PATH)
    (schema,) = data["schema_config"]["configs"]
    assert (schema["store"], schema["schema"], schema["object_store"]) == ("tsdb", "v13", "filesystem")
    assert data["common"]["storage"]["filesystem"]["chunks_directory"].startswith("/loki/")
    assert data["limits_config"]["allow_structured_metadata"] is True
    limits = data["limits_config"]
    assert limits["ingestion_rate_mb"] > 0 and limits["ingestion_burst_size_mb"] >= limits["ingestion_rate_mb"]
    assert 5 <= limits["max_label_names_per_series"] <= 15


def test_s3_variant_reads_credentials_from_the_environment_only():
    text = (ROOT / loki.S3_PATH).read_text()
    data = yaml.safe_load(text)
    s3 = data["common"]["storage"]["s3"]
    assert s3["access_key_id"] == "${LOKI_S3_ACCESS_KEY_ID}"
    assert s3["secret_access_key"] == "${LOKI_S3_SECRET_ACCESS_KEY}"
    assert (s3["endpoint"], s3["bucketnames"]) == ("minio:9000", "loki")
    assert data["schema_config"]["configs"][0]["object_store"] == "s3"
    assert data["compactor"]["delete_request_store"] == "s3"
    assert data["common"]["ring"]["kvstore"]["store"] == "memberlist"
    assert "-config.expand-env=true" in text
    assert text.count("${") == 2  # expand-env touches nothing else


def test_config_values_reach_both_files():
    cfg = dataclasses.replace(Config(), stack=Stack(loki=Loki(retention_period="14d", s3_bucket="logs-eu",
                                                                  s3_endpoint="s3.eu-west-1.amazonaws.com",
                                                                  s3_insecure=False, storage="s3")))
    fs, s3 = loki.config(cfg, cfg.stack.loki.storage), loki.config(cfg, "s3")
    assert fs == s3  # storage: s3 makes loki.yml the object-storage variant
    assert s3["limits_config"]["retention_period"] == "14d"
    assert s3["common"]["storage"]["s3"]["bucketnames"] == "logs-eu"
    assert s3["common"]["storage"]["s3"]["insecure"] is False
    assert loki.check_loki(cfg) == []


def test_unknown_storage_backend_fails_the_build():
    cfg = dataclasses.replace(Config(), stack=Stack(loki=Loki(storage="gcs")))
    assert loki.check_loki(cfg) == ["stack.loki.storage is 'gcs'; expected one of filesystem, s3"]


def _broken(change: Any, backend: str = "filesystem") -> list[str]:
    data = copy.deepcopy(loki.config(Config(), backend))
    change(data)
    return loki.check(data)


def _drop_period(d: dict) -> None:
    del d["limits_config"]["retention_period"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # the design we replace: retention enabled, no period -> nothing is ever deleted
        (_drop_period, "limits_config.retention_period is None: without a non-zero period retention keeps "
                       "everything forever"),
        (lambda d: d["limits_config"].update(retention_period="0s"), "limits_config.retention_period is '0s'"),
        (lambda d: d["limits_config"].update(retention_period="12h"), "must be whole days (>= 24h)"),
        (lambda d: d["limits_config"].update(retention_period="a month"), "retention keeps everything forever"),
        (lambda d: d["compactor"].update(retention_enabled=False), "compactor.retention_enabled is not true"),
        (lambda d: d["compactor"].pop("delete_request_store"), "compactor.delete_request_store is None"),
        (lambda d: d["schema_config"]["configs"][0].update(schema="v12"), "active schema is 'v12', not 'v13'"),
        (lambda d: d["schema_config"]["configs"][0].update(store="boltdb-shipper"), "active schema store is"),
        (lambda d: d["schema_config"]["configs"][0]["index"].update(period="168h"), "index period must be 24h"),
        (lambda d: d["schema_config"].update(configs=[]), "schema_config.configs is empty"),
        (lambda d: d["limits_config"].update(allow_structured_metadata=False),
         "allow_structured_metadata is not true"),
        (lambda d: d["limits_config"].pop("ingestion_rate_mb"), "limits_config.ingestion_rate_mb is missing"),
        (lambda d: d["limits_config"].update(ingestion_burst_size_mb=1), "below ingestion_rate_mb"),
        (lambda d: d["limits_config"].update(max_label_names_per_series=30), "max_label_names_per_series is 30"),
        (lambda d: d["limits_config"].update(max_label_names_per_series=3), "max_label_names_per_series is 3"),
        (lambda d: d["compactor"].update(working_directory="/tmp/compactor"), "outside the /loki volume"),
        (lambda d: d["common"]["storage"].pop("filesystem"), "common.storage has no 'filesystem' section"),
    ],
)
def test_checker_names_each_broken_setting(change, expected):
    found = _broken(change)
    assert any(expected in p for p in found), found


def test_checker_refuses_literal_s3_secrets():
    found = _broken(lambda d: d["common"]["storage"]["s3"].update(secret_access_key="hunter2"), "s3")
    assert found == ["common.storage.s3.secret_access_key must be a ${ENV} reference (-config.expand-env=true), "
                     "never a literal secret"]


def test_the_old_designs_loki_config_is_refused():
    old = {
        "auth_enabled": False,
        "common": {"path_prefix": "/loki", "storage": {"filesystem": {"chunks_directory": "/loki/chunks"}}},
        "schema_config": {"configs": [{"from": "2020-10-24", "store": "boltdb-shipper", "object_store": "filesystem",
                                       "schema": "v11", "index": {"prefix": "index_", "period": "24h"}}]},
        "compactor": {"working_directory": "/loki/compactor", "retention_enabled": True},
        "limits_config": {},
    }
    found = loki.check(old)
    assert any("retention keeps everything forever" in p for p in found)
    assert any("delete_request_store" in p for p in found)
    assert any("'v11'" in p for p in found)


@pytest.mark.parametrize(("text", "seconds"), [("720h", 2592000), ("30d", 2592000), ("1w2d", 777600),
                                                ("90m", 5400), ("", None), ("5 days", None), (720, None)])
def test_durations_follow_prometheus_syntax(text, seconds):
    assert loki.duration_seconds(text) == seconds
