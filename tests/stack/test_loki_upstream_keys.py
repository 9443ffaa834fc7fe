"""Every key of our Loki configs is one Loki's own config structs accept, at the pinned Loki version.

Loki decodes its config with yaml.v2's ``UnmarshalStrict``: a key it does not know stops it at start, and a
misspelt one (``s3_force_path_style`` for ``s3forcepathstyle``) would only show when the container starts.
Neither Loki nor an object store it could use runs on this machine (Loki is in none of the package
registries; S3 emulators are, but without a Loki to point at them they would test nothing of ours), so
``loki/loki-s3.yml`` (and ``loki/loki.yml``) are checked statically: against the struct tags of
grafana/loki at the tag of the pinned image, read from the upstream source and pinned in
``tests/stack/golden/loki-config-keys.json`` with the file and struct of every section
(regenerate: ``python -m tests.support.go_structs <loki checkout> <tag>``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.config import Config
from dashboards.stack import loki_config
from tests.support import go_structs

ROOT = Path(__file__).resolve().parents[2]
PIN = json.loads((ROOT / "tests" / "stack" / "golden" / "loki-config-keys.json").read_text())
SECTIONS: Mapping[str, Any] = PIN["sections"]
CFG = Config()


def unknown_keys(data: Mapping[str, Any], path: str = "") -> Iterator[str]:
    """Each key (``path.key``) of ``data`` its pinned section does not accept; a mapping with no pinned
    section at all is reported as such."""
    section = SECTIONS.get(path)
    if section is None:
        yield f"{path or '<root>'}: no pinned upstream struct (add it to go_structs.LOKI_SECTIONS)"
        return
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key not in section["keys"]:
            yield f"{where}: not a key of {section['struct']} ({section['file']} at {PIN['tag']})"
        elif isinstance(value, dict):
            yield from unknown_keys(value, where)
        elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
            for item in value:
                yield from unknown_keys(item, f"{where}[]")


def test_the_pin_is_the_pinned_images_version():
    image, _, tag = CFG.stack.images.loki.partition(":")
    assert image == "grafana/loki"
    assert PIN["tag"] == f"v{tag}", "the Loki image moved: re-pin the config structs of its tag"
    assert len(PIN["commit"]) == 40 and PIN["repository"] == "https://github.com/grafana/loki"


@pytest.mark.parametrize("path", [loki_config.S3_PATH, loki_config.FILESYSTEM_PATH])
def test_every_key_of_the_committed_config_is_one_loki_accepts(path: str):
    data = yaml.safe_load((ROOT / path).read_text())
    assert list(unknown_keys(data)) == []


def test_every_section_we_emit_is_pinned_and_every_pinned_section_is_emitted():
    def mappings(data: Mapping[str, Any], path: str = "") -> Iterator[str]:
        yield path
        for key, value in data.items():
            where = f"{path}.{key}" if path else key
            if isinstance(value, dict):
                yield from mappings(value, where)
            elif isinstance(value, list) and any(isinstance(i, dict) for i in value):
                for item in value:
                    yield from mappings(item, f"{where}[]")

    emitted = {p for backend in loki_config.BACKENDS for p in mappings(loki_config.config(CFG, backend))}
    assert emitted == set(SECTIONS) == set(go_structs.LOKI_SECTIONS)
    assert {k: (v["file"], v["struct"]) for k, v in SECTIONS.items()} == go_structs.LOKI_SECTIONS


def test_the_s3_variants_object_storage_keys_are_loki_s3_config_fields():
    s3 = yaml.safe_load((ROOT / loki_config.S3_PATH).read_text())["common"]["storage"]["s3"]
    assert set(s3) <= set(SECTIONS["common.storage.s3"]["keys"])
    assert {"bucketnames", "s3forcepathstyle"} <= set(s3)  # untagged Go fields: yaml.v2 lower-cases the name


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("common", "storage", "s3", "s3_force_path_style"), "common.storage.s3.s3_force_path_style: not a key of "
                                                             "S3Config"),
        (("limits_config", "retention"), "limits_config.retention: not a key of Limits"),
        (("schema_config", "configs", 0, "index", "perod"), "schema_config.configs[].index.perod: not a key"),
        (("memberlist", "join"), "memberlist.join: not a key of KVConfig"),
    ],
)
def test_a_misspelt_key_is_named_with_its_struct(change: tuple[Any, ...], problem: str):
    data = loki_config.config(CFG, "s3")
    node: Any = data
    for step in change[:-1]:
        node = node[step]
    node[change[-1]] = True
    found = list(unknown_keys(data))
    assert len(found) == 1 and found[0].startswith(problem), found


# --- the reader of Go structs ----------------------------------------------------------------------------------
GO = '''
package example

import (
	"time"

	dstls "github.com/grafana/dskit/crypto/tls"
)

type Config struct { // nolint:revive
	Endpoint    string        `yaml:"endpoint" doc:"description=See https://example.com/a//b."`
	BucketNames string
	Timeout     time.Duration `yaml:"timeout,omitempty"`
	Hidden      bool          `yaml:"-"`
	internal    int
	Nested      struct {
		Inner string `yaml:"inner"`
	} `yaml:"nested"`
	Base        `yaml:",inline"`
	dstls.ClientConfig `yaml:",inline"`
}

type Base struct {
	Prefix string `yaml:"prefix"`
}
'''
TLS = '''
type ClientConfig struct {
	CAPath string `yaml:"tls_ca_path"`
}
'''


def test_the_struct_reader_follows_yaml_v2s_rules():
    def lookup(go_type: str, source: str, directory: str) -> tuple[str, str]:
        assert go_type == "dstls.ClientConfig"
        assert go_structs.imports(source)["dstls"] == "github.com/grafana/dskit/crypto/tls"
        return TLS, "vendor/github.com/grafana/dskit/crypto/tls"

    assert go_structs.keys(GO, "Config", lookup) == [
        "bucketnames", "endpoint", "nested", "prefix", "timeout", "tls_ca_path"]
    assert go_structs.keys(GO, "Base") == ["prefix"]
    with pytest.raises(KeyError):
        go_structs.keys(GO, "Missing")
