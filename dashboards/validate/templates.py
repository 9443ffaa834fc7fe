"""A strict parser of the Go-template subset our ``line_format`` stages use: text and ``{{ .field }}`` actions.

Loki renders ``line_format`` with Go's ``text/template``; no parser of it is published on PyPI or npm, so the
subset the generator writes is parsed strictly here instead: every ``{{`` closes with ``}}`` before the next
opens, an action is exactly one field reference (optionally with ``-`` trim markers), and nothing else (no
pipelines, functions, ranges or comments) is accepted. A template outside the subset is an error to fix, not
something to let through unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["TemplateError", "fields"]

_ACTION = re.compile(r"^-?\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*-?$")


@dataclass(frozen=True)
class TemplateError(ValueError):
    template: str
    position: int
    reason: str

    def __str__(self) -> str:
        return f"template {self.template!r}: {self.reason} at position {self.position}"


def fields(template: str) -> list[str]:
    """The fields a template reads, in order; ``TemplateError`` when it is not in the subset."""
    out, pos = [], 0
    while True:
        start = template.find("{{", pos)
        stray = template.find("}}", pos)
        if stray != -1 and (start == -1 or stray < start):
            raise TemplateError(template, stray, "'}}' without an opening '{{'")
        if start == -1:
            return out
        end = template.find("}}", start + 2)
        if end == -1:
            raise TemplateError(template, start, "'{{' is never closed")
        inner = template[start + 2:end]
        if "{{" in inner:
            raise TemplateError(template, start + 2 + inner.index("{{"), "'{{' inside an action")
        match = _ACTION.match(inner)
        if match is None:
            raise TemplateError(template, start, f"action {{{{{inner}}}}} is not a single field reference")
        out.append(match.group(1))
        pos = end + 2
