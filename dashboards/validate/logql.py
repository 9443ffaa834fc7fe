"""LogQL checks: Loki's own grammar (node, ``logql_check.mjs``) for syntax, Python for the contract.

The node script parses the whole batch in one process and reports, per query,
the stream-selector labels, the label-filter names (and whether a parser such
as ``| json`` came before them), grouping labels, ``line_format`` fields and
``unwrap`` fields. Here those names are checked against the labels Alloy sets
and the fields the app logs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..catalogs.logs import LOKI_SPECIAL_LABELS, STREAM_LABELS
from . import templates
from .variables import substitute

SCRIPT = Path(__file__).resolve().with_name("logql_check.mjs")
GRAMMAR_PACKAGE = "@grafana/lezer-logql"
NODE_MODULES_ENV = "FASTAPI_LOOKOUT_NODE_MODULES"
# Pinned in package.json to 0.3.0 (2026-01-12), the newest release that runs on the Node this project installs:
# Debian 12's nodejs is 18.20 (CI machines may carry 20). 0.4.0..0.4.2 (2026-07..09) declare engines node >= 24 and
# npm >= 11.12.1, and peer @lezer/lr at exactly 1.4.10; their grammar only adds approx_topk / label-aggregation
# nodes our queries do not use. renovate.json holds it below 0.4 until the toolchain's Node is 24+.
INSTALL_HINT = ("npm install @grafana/lezer-logql@0.3.0 @lezer/lr@1.4.10 (or `npm ci` in a checkout), or set "
                f"{NODE_MODULES_ENV} to a node_modules directory holding them")


def grammar_dir() -> Path | None:
    """Where the grammar is installed: ``$FASTAPI_LOOKOUT_NODE_MODULES``, else the nearest ``node_modules``
    from the working directory up, else the checkout this package runs from."""
    candidates: list[Path] = []
    if os.environ.get(NODE_MODULES_ENV):
        candidates.append(Path(os.environ[NODE_MODULES_ENV]))
    cwd = Path.cwd().resolve()
    candidates += [d / "node_modules" for d in (cwd, *cwd.parents)]
    candidates += [d / "node_modules" for d in Path(__file__).resolve().parents]
    for node_modules in candidates:
        grammar = node_modules / GRAMMAR_PACKAGE
        if (grammar / "index.es.js").is_file():
            return grammar
    return None


class LogQLToolError(RuntimeError):
    """The checker itself could not run (no node, no ``npm ci``): not a query problem."""


@dataclass(frozen=True, slots=True)
class Parsed:
    ok: bool
    error: str | None
    position: int | None
    stream_labels: tuple[str, ...]
    label_filters: tuple[tuple[str, bool], ...]
    """(name, after a parser stage)"""
    grouping: tuple[str, ...]
    line_format_fields: tuple[str, ...]
    unwrap: tuple[str, ...]
    parsers: tuple[str, ...]
    templates: tuple[str, ...] = ()
    """``line_format`` templates, as Loki receives them."""
    json_stages: tuple[tuple[str, ...] | None, ...] = ()
    """The fields each ``| json`` stage extracts; None for a bare ``| json`` (every field)."""
    stream_matchers: tuple[tuple[str, str, str], ...] = ()
    """(label, operator, value) of the stream selector."""
    metric: bool = False


def available() -> bool:
    return shutil.which("node") is not None and grammar_dir() is not None


def parse_batch(queries: Sequence[str], *, node: str | None = None) -> list[Parsed]:
    """Parse every query in one node process; Grafana variables are replaced by sentinels first."""
    if not queries:
        return []
    node = node or shutil.which("node")
    if node is None:
        raise LogQLToolError("node is not installed (needed for the LogQL grammar check)")
    grammar = grammar_dir()
    if grammar is None:
        raise LogQLToolError(f"Loki's LogQL grammar ({GRAMMAR_PACKAGE}) is not installed: {INSTALL_HINT}")
    proc = subprocess.run(
        [node, str(SCRIPT), str(grammar)], input=json.dumps([substitute(q) for q in queries]), capture_output=True,
        text=True, timeout=60, check=False,
    )
    if proc.returncode != 0:
        raise LogQLToolError(f"LogQL checker failed ({proc.returncode}): {proc.stderr.strip()}")
    return [
        Parsed(
            ok=r["ok"],
            error=(r["error"] or {}).get("message"),
            position=(r["error"] or {}).get("position"),
            stream_labels=tuple(r["streamLabels"]),
            label_filters=tuple((f["name"], f["afterParser"]) for f in r["labelFilters"]),
            grouping=tuple(r["grouping"]),
            line_format_fields=tuple(r["lineFormatFields"]),
            unwrap=tuple(r["unwrap"]),
            parsers=tuple(r["parsers"]),
            templates=tuple(r["templates"]),
            json_stages=tuple(None if s is None else tuple(s) for s in r["jsonStages"]),
            stream_matchers=tuple((m["name"], m["op"], m["value"]) for m in r["streamMatchers"]),
            metric=r["metric"],
        )
        for r in json.loads(proc.stdout)
    ]


def check(
    parsed: Parsed, known_fields: Iterable[str], stream_labels: Iterable[str] = STREAM_LABELS
) -> list[str]:
    """Problems with one parsed query: syntax, stream labels outside Alloy's set, unknown fields."""
    if not parsed.ok:
        return [f"LogQL does not parse: {parsed.error}"]
    streams = frozenset(stream_labels)
    fields = frozenset(known_fields)
    problems = [
        f"stream selector uses label {label!r}, which Alloy does not set (allowed: {', '.join(sorted(streams))});"
        " filter it after | json instead"
        for label in parsed.stream_labels
        if label not in streams
    ]
    for name, after_parser in parsed.label_filters:
        if name in LOKI_SPECIAL_LABELS or name in streams:
            continue
        if not after_parser:
            problems.append(f"label filter on {name!r} before any parser: only stream labels exist there")
        elif name not in fields:
            problems.append(f"field {name!r} in a | json filter is not a field the app logs")
    extracted = fields if parsed.parsers else frozenset()
    problems += [f"grouping label {name!r} is neither a stream label nor a logged field"
                 for name in parsed.grouping if name not in streams | extracted | LOKI_SPECIAL_LABELS]
    problems += [f"line_format uses {name!r}, which is not a logged field"
                 for name in parsed.line_format_fields if name not in fields | streams]
    problems += [f"unwrap of {name!r}, which is not a logged field" for name in parsed.unwrap if name not in fields]
    return problems + _semantics(parsed, fields)


def _semantics(parsed: Parsed, fields: frozenset[str]) -> list[str]:
    """Beyond the grammar: what Loki would compute, and what Go's template engine would refuse."""
    problems = []
    if parsed.metric and None in parsed.json_stages:
        problems.append("a metric query parses every field of every line with a bare | json: name the fields it "
                        "needs (| json a, b)")
    for stage in parsed.json_stages:
        problems += [f"| json extracts {name!r}, which is not a logged field" for name in stage or ()
                     if name not in fields]
    named = [set(stage) for stage in parsed.json_stages if stage is not None]
    if named and None not in parsed.json_stages:
        extracted = set().union(*named)
        problems += [f"filter on {name!r}, which no | json stage extracts" for name, after in parsed.label_filters
                     if after and name in fields and name not in extracted]
    for template in parsed.templates:
        try:
            templates.fields(template)
        except templates.TemplateError as exc:
            problems.append(f"line_format {exc}")
    return problems
