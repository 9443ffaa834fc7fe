"""A typed model of Alloy's configuration syntax and its one deterministic renderer.

Statements are blocks (``name "label" { ... }``) and attributes (``name = expr``).
Expressions are Python values: ``str``, ``int``, ``float``, ``bool``, ``None``
(``null``), ``list`` (array), ``dict`` (object, insertion order kept), plus
``Ref`` (a dotted identifier such as a component export,
``loki.write.default.receiver``) and ``Call`` (``sys.env("X")``).

The output follows ``alloy fmt``: tab indentation, ``=`` aligned over runs of
single-line attributes, multi-line objects and arrays with trailing commas.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TypeAlias

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
INLINE_ARRAY_MAX = 80
"""Arrays of scalars are written on one line up to this many characters."""


class SyntaxModelError(ValueError):
    """A model that cannot be written as Alloy syntax (bad identifier, NaN, unknown value type)."""


@dataclass(frozen=True, slots=True)
class Ref:
    """A dotted identifier: a component export (``discovery.docker.x.targets``) or a variable."""

    path: str

    def __post_init__(self) -> None:
        if not all(IDENT.fullmatch(part) for part in self.path.split(".")):
            raise SyntaxModelError(f"not a dotted identifier: {self.path!r}")


@dataclass(frozen=True, slots=True)
class Call:
    """A standard-library function call such as ``sys.env("LOKI_URL")``."""

    function: str
    args: tuple[Expr, ...] = ()

    def __post_init__(self) -> None:
        Ref(self.function)  # same identifier rules


Expr: TypeAlias = "str | int | float | bool | Ref | Call | list[Expr] | dict[str, Expr] | None"


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    value: Expr

    def __post_init__(self) -> None:
        if not IDENT.fullmatch(self.name):
            raise SyntaxModelError(f"attribute name is not an identifier: {self.name!r}")


@dataclass(frozen=True, slots=True)
class Block:
    """``name "label" { body }``; ``label`` is None for unlabelled blocks (``rule { }``, ``stage.json { }``)."""

    name: str
    label: str | None = None
    body: tuple[Statement, ...] = ()

    def __post_init__(self) -> None:
        Ref(self.name)
        if self.label is not None and not IDENT.fullmatch(self.label):
            raise SyntaxModelError(f"block label is not an identifier: {self.label!r}")

    @property
    def id(self) -> str:
        """``loki.write.default`` for a labelled block, the bare name otherwise."""
        return f"{self.name}.{self.label}" if self.label is not None else self.name

    def attrs(self) -> dict[str, Expr]:
        return {s.name: s.value for s in self.body if isinstance(s, Attribute)}

    def blocks(self, name: str | None = None) -> list[Block]:
        return [s for s in self.body if isinstance(s, Block) and (name is None or s.name == name)]


Statement: TypeAlias = "Attribute | Block"


@dataclass(frozen=True, slots=True)
class Document:
    body: tuple[Statement, ...]
    header: tuple[str, ...] = field(default=())
    """Comment lines written first (``// ...``); not part of the model's meaning."""

    def blocks(self) -> list[Block]:
        return [s for s in self.body if isinstance(s, Block)]


def block(name: str, label: str | None = None, /, *body: Statement | None, **attrs: Expr) -> Block:
    """Builder: keyword attributes first (in call order), then the positional child statements."""
    statements: list[Statement] = [Attribute(k, v) for k, v in attrs.items()]
    statements += [s for s in body if s is not None]
    return Block(name, label, tuple(statements))


# -- rendering ---------------------------------------------------------------------------------

def quote(text: str) -> str:
    """A double-quoted Alloy string literal (Go escapes)."""
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _key(name: str) -> str:
    return name if IDENT.fullmatch(name) else quote(name)


def _scalar(value: Expr) -> str | None:
    """The one-line form of a value that never spans lines, else None."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SyntaxModelError(f"number is not finite: {value!r}")
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Ref):
        return value.path
    if isinstance(value, Call):
        args = [render_expr(a, 0) for a in value.args]
        if any("\n" in a for a in args):
            raise SyntaxModelError(f"multi-line argument to {value.function}()")
        return f"{value.function}({', '.join(args)})"
    if isinstance(value, list) and not value:
        return "[]"
    if isinstance(value, dict) and not value:
        return "{}"
    if isinstance(value, list | dict):
        return None
    raise SyntaxModelError(f"not an Alloy value: {type(value).__name__}")


def render_expr(value: Expr, depth: int) -> str:
    """``value`` as written at indentation ``depth`` (its closing bracket lines up with that depth)."""
    one_line = _scalar(value)
    if one_line is not None:
        return one_line
    inner = "\t" * (depth + 1)
    if isinstance(value, list):
        items = [render_expr(v, depth + 1) for v in value]
        inline = "[" + ", ".join(items) + "]"
        if all(_scalar(v) is not None for v in value) and len(inline) <= INLINE_ARRAY_MAX:
            return inline
        return "[\n" + "".join(f"{inner}{item},\n" for item in items) + "\t" * depth + "]"
    assert isinstance(value, dict)
    for key in value:
        if not isinstance(key, str):
            raise SyntaxModelError(f"object key is not a string: {key!r}")
    lines = _aligned([(_key(k), render_expr(v, depth + 1)) for k, v in value.items()], inner, ",")
    return "{\n" + "".join(lines) + "\t" * depth + "}"


def _aligned(pairs: list[tuple[str, str]], indent: str, suffix: str = "") -> list[str]:
    """``key = value`` lines, ``=`` aligned over runs of single-line values (as ``alloy fmt`` does)."""
    lines: list[str] = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(k) for k, _ in run), default=0)
        lines.extend(f"{indent}{k.ljust(width)} = {v}{suffix}\n" for k, v in run)
        run.clear()

    for key, text in pairs:
        if "\n" in text:
            flush()
            lines.append(f"{indent}{key} = {text}{suffix}\n")
        else:
            run.append((key, text))
    flush()
    return lines


def _render_body(body: tuple[Statement, ...], depth: int) -> list[str]:
    indent = "\t" * depth
    out: list[str] = []
    pending: list[tuple[str, str]] = []
    previous: str | None = None

    def flush() -> None:
        if pending:
            out.extend(_aligned(pending, indent))
            pending.clear()

    for stmt in body:
        if isinstance(stmt, Attribute):
            if previous == "block":
                out.append("\n")
            pending.append((stmt.name, render_expr(stmt.value, depth)))
            previous = "attr"
        else:
            flush()
            if previous is not None:
                out.append("\n")
            out.extend(_render_block(stmt, depth))
            previous = "block"
    flush()
    return out


def _render_block(blk: Block, depth: int) -> list[str]:
    indent = "\t" * depth
    head = blk.name if blk.label is None else f"{blk.name} {quote(blk.label)}"
    if not blk.body:
        return [f"{indent}{head} {{ }}\n"]
    return [f"{indent}{head} {{\n", *_render_body(blk.body, depth + 1), f"{indent}}}\n"]


def render(doc: Document) -> str:
    header = "".join(f"// {line}\n" if line else "//\n" for line in doc.header)
    body = "".join(_render_body(doc.body, 0))
    return header + ("\n" if header and body else "") + body
