"""Structural checks of an Alloy document: what a reviewer of a log pipeline must never miss.

- every component reference (``loki.write.default.receiver``) names a component
  defined in the document and an export that component type really has;
- no component is defined twice, no component type is unknown to this checker;
- no high-cardinality log field becomes a Loki stream label (relabel rules,
  ``stage.labels``, ``stage.static_labels``, ``labels``/``external_labels``), and no
  ``labelmap`` copies unbounded label sets;
- inside ``loki.process`` every label, structured-metadata or timestamp source was
  extracted by an earlier stage, and (given the log contract) every ``stage.json``
  expression reads a field the application really writes.

Problems are strings naming the component and what is wrong; empty means fine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from ..stack.alloy.syntax import Attribute, Block, Call, Document, Expr, Ref

EXPORTS: Final[dict[str, frozenset[str]]] = {
    "discovery.docker": frozenset({"targets"}),
    "discovery.relabel": frozenset({"output", "rules"}),
    "local.file_match": frozenset({"targets"}),
    "loki.source.docker": frozenset(),
    "loki.source.file": frozenset(),
    "loki.process": frozenset({"receiver"}),
    "loki.relabel": frozenset({"receiver", "rules"}),
    "loki.write": frozenset({"receiver"}),
    "prometheus.exporter.self": frozenset({"targets"}),
    "prometheus.scrape": frozenset(),
    "prometheus.remote_write": frozenset({"receiver"}),
}
"""Component types this checker knows, with their exported fields (Alloy reference docs)."""

SETTINGS_BLOCKS: Final = frozenset({"logging", "livedebugging", "tracing", "http"})
"""Unlabelled top-level configuration blocks, which are not components."""

HIGH_CARDINALITY: Final = frozenset({
    "request_id", "user_id", "username", "endpoint", "path", "status_code", "method", "client_ip",
    "duration_ms", "message", "timestamp", "req_id", "connection_id", "exception", "line",
})
"""Log fields with one value per request, user or line: a stream label on any of them makes one stream each."""

RELABEL_TYPES: Final = frozenset({"discovery.relabel", "loki.relabel"})
_SETS_TARGET = frozenset({"replace", "lowercase", "uppercase", "hashmod"})
_NAMED_GROUP = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")


def _walk_exprs(value: Expr, where: str) -> Iterator[tuple[str, Ref]]:
    if isinstance(value, Ref):
        yield where, value
    elif isinstance(value, Call):
        for arg in value.args:
            yield from _walk_exprs(arg, where)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_exprs(item, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_exprs(item, f"{where}.{key}")


def _refs(blk: Block, where: str) -> Iterator[tuple[str, Ref]]:
    for stmt in blk.body:
        if isinstance(stmt, Attribute):
            yield from _walk_exprs(stmt.value, f"{where} {stmt.name}")
        else:
            yield from _refs(stmt, f"{where} {stmt.name}")


def components(doc: Document) -> dict[str, Block]:
    return {b.id: b for b in doc.blocks() if b.label is not None}


def check_references(doc: Document) -> list[str]:
    problems: list[str] = []
    defined: dict[str, str] = {}
    for blk in doc.blocks():
        if blk.label is None:
            if blk.name not in SETTINGS_BLOCKS:
                problems.append(f"{blk.name}: unlabelled top-level block is neither a component nor a setting")
            continue
        if blk.name not in EXPORTS:
            problems.append(f"{blk.id}: unknown component type {blk.name!r}")
        if blk.id in defined:
            problems.append(f"{blk.id}: defined twice")
        defined[blk.id] = blk.name
    for blk in doc.blocks():
        for where, ref in _refs(blk, blk.id):
            problems += _resolve(ref, where, defined)
    return problems


def _resolve(ref: Ref, where: str, defined: dict[str, str]) -> list[str]:
    component, _, export = ref.path.rpartition(".")
    kind = defined.get(component)
    if kind is None:
        return [f"{where}: {ref.path!r} references a component that is not defined ({component or ref.path!r})"]
    exports = EXPORTS.get(kind, frozenset())
    if export not in exports:
        known = ", ".join(sorted(exports)) or "nothing"
        return [f"{where}: {ref.path!r}: {kind} exports {known}, not {export!r}"]
    return []


def _mapping(value: Expr) -> dict[str, Expr]:
    return value if isinstance(value, dict) else {}


def _keys(value: Expr) -> list[str]:
    return list(_mapping(value))


def _stages(blk: Block) -> Iterator[Block]:
    """``stage.*`` blocks in order, descending into ``stage.match`` bodies."""
    for child in blk.blocks():
        if child.name.startswith("stage."):
            yield child
            if child.name == "stage.match":
                yield from _stages(child)


def stream_labels(doc: Document) -> dict[str, list[str]]:
    """Every label the document can put on a Loki stream -> where it is set."""
    found: dict[str, list[str]] = {}

    def add(name: str, where: str) -> None:
        if not name.startswith("__"):
            found.setdefault(name, []).append(where)

    for blk in doc.blocks():
        if blk.name in RELABEL_TYPES:
            for rule in blk.blocks("rule"):
                attrs = rule.attrs()
                action = str(attrs.get("action", "replace")).lower()
                target = attrs.get("target_label")
                if action in _SETS_TARGET and isinstance(target, str):
                    add(target, f"{blk.id} rule")
        if blk.name.startswith("loki.source."):
            for name in _keys(blk.attrs().get("labels")):
                add(name, f"{blk.id} labels")
        if blk.name == "loki.write":
            for name in _keys(blk.attrs().get("external_labels")):
                add(name, f"{blk.id} external_labels")
        if blk.name == "loki.process":
            for stage in _stages(blk):
                if stage.name in ("stage.labels", "stage.static_labels"):
                    for name in _keys(stage.attrs().get("values")):
                        add(name, f"{blk.id} {stage.name}")
    return found


def check_labels(doc: Document) -> list[str]:
    problems: list[str] = []
    for name, places in sorted(stream_labels(doc).items()):
        if name in HIGH_CARDINALITY:
            problems += [
                f"{where}: {name!r} is promoted to a stream label (one stream per value); "
                "keep it in the line or in stage.structured_metadata"
                for where in places
            ]
    for blk in doc.blocks():
        if blk.name in RELABEL_TYPES:
            for rule in blk.blocks("rule"):
                if str(rule.attrs().get("action", "")).lower() == "labelmap":
                    problems.append(f"{blk.id} rule: labelmap copies an unbounded set of labels onto streams")
    return problems


def _json_sources(expressions: Expr) -> dict[str, str]:
    """extracted name -> the log field its JMESPath expression starts from."""
    out = {}
    for name, expression in _mapping(expressions).items():
        source = expression if isinstance(expression, str) and expression else name
        out[name] = re.split(r"[.\[|]", source.strip('"'), maxsplit=1)[0]
    return out


def check_extraction(doc: Document, log_fields: frozenset[str] | None = None) -> list[str]:
    problems: list[str] = []
    for blk in doc.blocks():
        if blk.name != "loki.process":
            continue
        extracted: set[str] = set()
        for stage in _stages(blk):
            attrs = stage.attrs()
            where = f"{blk.id} {stage.name}"
            if stage.name == "stage.json":
                sources = _json_sources(attrs.get("expressions"))
                if log_fields is not None:
                    problems += [f"{where}: {name!r} reads {field!r}, which the application never logs"
                                 for name, field in sources.items() if field not in log_fields]
                extracted |= set(sources)
            elif stage.name == "stage.regex":
                extracted |= set(_NAMED_GROUP.findall(str(attrs.get("expression", ""))))
            elif stage.name in ("stage.logfmt", "stage.template"):
                extracted |= set(_keys(attrs.get("mapping"))) | ({str(attrs["source"])} if "source" in attrs else set())
            elif stage.name in ("stage.labels", "stage.structured_metadata"):
                for name, source in _mapping(attrs.get("values")).items():
                    field = source if isinstance(source, str) and source else name
                    if field not in extracted:
                        problems.append(f"{where}: {name!r} reads {field!r}, which no earlier stage extracts")
            elif stage.name == "stage.timestamp":
                source = attrs.get("source")
                if source not in extracted:
                    problems.append(f"{where}: source {source!r} is not extracted by an earlier stage")
    return problems


def check(doc: Document, log_fields: frozenset[str] | None = None) -> list[str]:
    """All problems of ``doc``; ``log_fields`` (the app's log contract) enables the json-field check."""
    return check_references(doc) + check_labels(doc) + check_extraction(doc, log_fields)
