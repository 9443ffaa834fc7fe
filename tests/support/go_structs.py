"""The YAML keys a Go config struct accepts, read from its source the way ``gopkg.in/yaml.v2`` reads it.

Loki (``pkg/util/cfg``) decodes its config file with ``yaml.UnmarshalStrict``: an unknown key stops it at
start. So the keys our generator emits are pinned to the struct tags of the pinned Loki version
(``tests/stack/golden/loki-config-keys.json``, checked by ``tests/stack/test_loki_upstream_keys.py``).

yaml.v2's rules, as applied here: the key is the ``yaml:"name"`` tag, or the field name lower-cased when the
tag gives none; ``yaml:"-"`` and unexported fields are skipped; ``,inline`` merges the embedded struct's
keys. Regenerate the pin from a Loki checkout (``git`` needed, no network)::

    python -m tests.support.go_structs /path/to/loki v3.5.1 > tests/stack/golden/loki-config-keys.json
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_TAG = re.compile(r"`([^`]*)`")
_YAML = re.compile(r'yaml:"([^"]*)"')
_IDENT = re.compile(r"^[A-Za-z_]\w*$")


@dataclass(frozen=True, slots=True)
class Field:
    key: str
    go_type: str
    inline: bool = False


def struct_fields(source: str, name: str) -> list[Field]:
    """The fields of ``type <name> struct { ... }`` in ``source`` with their YAML keys (inline ones unresolved)."""
    match = re.search(rf"^type {re.escape(name)} struct \{{[ \t]*(?://.*)?$", source, re.M)
    if match is None:
        raise KeyError(f"no 'type {name} struct' in this source")
    fields: list[Field] = []
    depth = 1
    for raw in source[match.end():].splitlines()[1:]:
        tag_match = _TAG.search(raw)
        tag = tag_match.group(1) if tag_match else ""
        code = raw[: tag_match.start()] if tag_match else raw.split("//", 1)[0]
        opened, closed = code.count("{"), code.count("}")
        if depth == 1 and code.strip() and not code.strip().startswith("}"):
            field = _field(code.strip(), tag)
            if field is not None:
                fields.append(field)
        depth += opened - closed
        if depth <= 0:
            return fields
    raise ValueError(f"struct {name} does not end")


def _field(code: str, tag: str) -> Field | None:
    yaml_tag = _YAML.search(tag)
    key, _, options = (yaml_tag.group(1) if yaml_tag else "").partition(",")
    parts = code.split(None, 1)
    embedded = len(parts) == 1
    go_type = parts[0] if embedded else parts[1].strip()
    names = [] if embedded else [n.strip() for n in parts[0].split(",")]
    if key == "-":
        return None
    if embedded:
        type_name = go_type.lstrip("*").rsplit(".", 1)[-1]
        if "inline" in options.split(","):
            return Field("", go_type.lstrip("*"), inline=True)
        return Field(key or type_name.lower(), go_type)
    if len(names) != 1 or not _IDENT.match(names[0]) or not names[0][0].isupper():
        return None  # unexported (yaml.v2 skips them); Loki's config structs declare one field per line
    return Field(key or names[0].lower(), go_type, inline="inline" in options.split(","))


Lookup = Callable[[str, str, str], tuple[str, str]]
"""(type as written, e.g. ``dstls.ClientConfig``; the source that names it; that source's directory) -> the
source of the file that declares the type, and its directory."""


def keys(source: str, name: str, lookup: Lookup | None = None, directory: str = "") -> list[str]:
    """The keys of struct ``name`` in ``source``; inline embedded structs are merged in, found in ``source``
    itself or through ``lookup`` (another file of the package, or an imported package)."""
    out: list[str] = []
    for field in struct_fields(source, name):
        if not field.inline:
            out.append(field.key)
            continue
        type_name = field.go_type.rsplit(".", 1)[-1]
        if "." not in field.go_type and re.search(rf"^type {type_name} struct", source, re.M):
            inner, inner_dir = source, directory
        elif lookup is not None:
            inner, inner_dir = lookup(field.go_type, source, directory)
        else:
            raise KeyError(f"{name} inlines {field.go_type}, which is not in its file")
        out += keys(inner, type_name, lookup, inner_dir)
    return sorted(set(out))


def imports(source: str) -> dict[str, str]:
    """Package name -> import path of a Go file (the last path element when not aliased, minus /vN)."""
    block = re.search(r"^import \((.*?)^\)", source, re.M | re.S)
    lines = block.group(1).splitlines() if block else re.findall(r"^import (.*)$", source, re.M)
    out = {}
    for line in lines:
        m = re.match(r'\s*(?:(\w+)\s+)?"([^"]+)"', line)
        if m:
            path = m.group(2)
            parts = [x for x in path.split("/") if not re.fullmatch(r"v\d+", x)]
            out[m.group(1) or parts[-1]] = path
    return out


# --- the Loki pin ------------------------------------------------------------------------------------------
LOKI_SECTIONS: Final[dict[str, tuple[str, str]]] = {
    "": ("pkg/loki/loki.go", "Config"),
    "server": ("vendor/github.com/grafana/dskit/server/server.go", "Config"),
    "common": ("pkg/loki/common/common.go", "Config"),
    "common.storage": ("pkg/loki/common/common.go", "Storage"),
    "common.storage.s3": ("pkg/storage/chunk/client/aws/s3_storage_client.go", "S3Config"),
    "common.storage.filesystem": ("pkg/loki/common/common.go", "FilesystemConfig"),
    "common.ring": ("pkg/util/ring/ring_config.go", "RingConfig"),
    "common.ring.kvstore": ("vendor/github.com/grafana/dskit/kv/client.go", "Config"),
    "memberlist": ("vendor/github.com/grafana/dskit/kv/memberlist/memberlist_client.go", "KVConfig"),
    "schema_config": ("pkg/storage/config/schema_config.go", "SchemaConfig"),
    "schema_config.configs[]": ("pkg/storage/config/schema_config.go", "PeriodConfig"),
    "schema_config.configs[].index": ("pkg/storage/config/schema_config.go", "IndexPeriodicTableConfig"),
    "storage_config": ("pkg/storage/factory.go", "Config"),
    "storage_config.tsdb_shipper": ("pkg/storage/stores/shipper/indexshipper/shipper.go", "Config"),
    "compactor": ("pkg/compactor/compactor.go", "Config"),
    "limits_config": ("pkg/validation/limits.go", "Limits"),
    "analytics": ("pkg/analytics/reporter.go", "Config"),
}
"""Config path (``[]``: each item of a list) -> (upstream file, struct): every mapping our Loki configs emit."""


def loki_pin(checkout: Path, tag: str) -> dict[str, object]:
    def show(path: str) -> str:
        return subprocess.run(["git", "-C", str(checkout), "show", f"{tag}:{path}"], capture_output=True,
                              text=True, check=True).stdout

    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", f"{tag}^{{commit}}"], capture_output=True,
                            text=True, check=True).stdout.strip()
    def declaring(directory: str, type_name: str) -> tuple[str, str]:
        found = subprocess.run(["git", "-C", str(checkout), "grep", "-l", f"^type {type_name} struct", tag, "--",
                                f"{directory}/*.go"], capture_output=True, text=True, check=True)
        file = found.stdout.splitlines()[0].split(":", 1)[1]
        return show(file), directory

    def lookup(go_type: str, source: str, directory: str) -> tuple[str, str]:
        if "." not in go_type:
            return declaring(directory, go_type)
        package, type_name = go_type.split(".", 1)
        path = imports(source)[package]
        local = path.removeprefix("github.com/grafana/loki/v3/")
        return declaring(local if local != path else f"vendor/{path}", type_name)

    sections = {}
    for path, (file, struct) in LOKI_SECTIONS.items():
        sections[path] = {"file": file, "struct": struct,
                          "keys": keys(show(file), struct, lookup, file.rsplit("/", 1)[0])}
    return {"repository": "https://github.com/grafana/loki", "tag": tag, "commit": commit,
            "decoder": "gopkg.in/yaml.v2 UnmarshalStrict (pkg/util/cfg/files.go)", "sections": sections}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m tests.support.go_structs <loki checkout> <tag>")
    print(json.dumps(loki_pin(Path(sys.argv[1]), sys.argv[2]), indent=1, sort_keys=True))
