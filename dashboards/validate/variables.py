"""Grafana variable references in query text: finding them and replacing them with sentinels."""

from __future__ import annotations

import re

# $name, ${name}, ${name:format}, [[name]] (legacy)
VARIABLE = re.compile(r"\$\{(\w+)(?::([^}]*))?\}|\$(\w+)|\[\[(\w+)(?::([^\]]*))?\]\]")
PROM_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)
"""A Prometheus variable query: ``label_values(<selector>, <label>)``."""
LOKI_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(\w+)\s*\)\s*$")
"""A Loki variable query: ``label_values(<stream label>)``."""
DURATIONS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__auto": "1m"}
NUMBERS = {"__interval_ms": "60000", "__range_s": "3600", "__range_ms": "3600000"}


def references(query: str) -> list[tuple[str, str | None]]:
    """(name, format) of every variable the query uses, in order."""
    out = []
    for m in VARIABLE.finditer(query):
        name = m.group(1) or m.group(3) or m.group(4)
        out.append((name, m.group(2) or m.group(5)))
    return out


def sentinel(name: str) -> str:
    return f"__grafana_var_{name}__"


def substitute(query: str) -> str:
    """Replace variables with values a parser accepts: durations, numbers, or a sentinel string."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3) or match.group(4)
        return DURATIONS.get(name) or NUMBERS.get(name) or sentinel(name)

    return VARIABLE.sub(repl, query)
