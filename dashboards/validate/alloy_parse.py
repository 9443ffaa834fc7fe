"""Reads Alloy syntax back into the ``syntax`` model, so checks run on the text that is deployed.

It covers the language the renderer writes and a little more (comments, raw
strings, ``/* */``): blocks, attributes, literals, arrays, objects, dotted
references and function calls. Operators and indexing are refused with the
line and column, as is a missing comma before a newline inside brackets,
which Alloy refuses too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..stack.alloy.syntax import Attribute, Block, Call, Document, Expr, Ref, Statement

_TOKEN = re.compile(
    r"""
    (?P<newline>\n)
  | (?P<space>[ \t\r]+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}\[\](),=.])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


class AlloyParseError(ValueError):
    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(f"line {line}, column {col}: {message}")
        self.line, self.col = line, col


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    line: int
    col: int


def _unquote(text: str, line: int, col: int) -> str:
    out: list[str] = []
    i, body = 0, text[1:-1]
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "x":
            out.append(chr(int(body[i + 2:i + 4], 16)))
            i += 4
        elif nxt == "u":
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif nxt == "U":
            out.append(chr(int(body[i + 2:i + 10], 16)))
            i += 10
        else:
            raise AlloyParseError(f"unknown escape \\{nxt}", line, col + i + 1)
    return "".join(out)


def _tokens(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise AlloyParseError(f"unexpected character {text[pos]!r}", line, pos - line_start + 1)
        kind = m.lastgroup or ""
        value = m.group()
        col = pos - line_start + 1
        if kind == "newline":
            toks.append(_Tok("newline", value, line, col))
        elif kind == "comment" and "\n" in value:
            toks.append(_Tok("newline", "\n", line, col))
        elif kind not in ("space", "comment"):
            toks.append(_Tok(kind, value, line, col))
        newlines = value.count("\n")
        if newlines:
            line += newlines
            line_start = pos + value.rfind("\n") + 1
        pos = m.end()
    toks.append(_Tok("eof", "", line, pos - line_start + 1))
    return toks


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, skip_newlines: bool = False) -> _Tok:
        j = self.i
        while skip_newlines and self.toks[j].kind == "newline":
            j += 1
        return self.toks[j]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def skip_newlines(self) -> None:
        while self.peek().kind == "newline":
            self.i += 1

    def expect(self, text: str) -> _Tok:
        tok = self.next()
        if tok.text != text or tok.kind not in ("punct",):
            raise AlloyParseError(f"expected {text!r}, found {tok.text or tok.kind!r}", tok.line, tok.col)
        return tok

    def error(self, tok: _Tok, message: str) -> AlloyParseError:
        return AlloyParseError(message, tok.line, tok.col)

    # body := (statement NEWLINE)*
    def body(self, closing: str | None) -> tuple[Statement, ...]:
        statements: list[Statement] = []
        while True:
            self.skip_newlines()
            tok = self.peek()
            if closing is None and tok.kind == "eof":
                return tuple(statements)
            if closing is not None and tok.text == closing and tok.kind == "punct":
                return tuple(statements)
            statements.append(self.statement())
            end = self.peek()
            if end.kind not in ("newline", "eof") and not (closing and end.text == closing):
                raise self.error(end, f"expected a newline after the statement, found {end.text!r}")

    def dotted(self) -> str:
        first = self.next()
        if first.kind != "ident":
            raise self.error(first, f"expected an identifier, found {first.text or first.kind!r}")
        parts = [first.text]
        while self.peek().text == "." and self.peek().kind == "punct":
            self.next()
            tok = self.next()
            if tok.kind != "ident":
                raise self.error(tok, "expected an identifier after '.'")
            parts.append(tok.text)
        return ".".join(parts)

    def statement(self) -> Statement:
        start = self.peek()
        name = self.dotted()
        tok = self.peek()
        if tok.text == "=" and tok.kind == "punct":
            if "." in name:
                raise self.error(start, f"attribute name {name!r} must be a single identifier")
            self.next()
            return Attribute(name, self.expr())
        label = None
        if tok.kind in ("string", "raw"):
            self.next()
            label = _unquote(tok.text, tok.line, tok.col) if tok.kind == "string" else tok.text[1:-1]
            tok = self.peek()
        if tok.text != "{":
            raise self.error(tok, f"expected '=' or a block after {name!r}")
        self.next()
        body = self.body("}")
        self.expect("}")
        return Block(name, label, body)

    def expr(self) -> Expr:
        tok = self.peek()
        if tok.kind == "string":
            self.next()
            return _unquote(tok.text, tok.line, tok.col)
        if tok.kind == "raw":
            self.next()
            return tok.text[1:-1]
        if tok.kind == "number":
            self.next()
            return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
        if tok.kind == "ident":
            if tok.text in ("true", "false", "null"):
                self.next()
                return {"true": True, "false": False, "null": None}[tok.text]
            path = self.dotted()
            if self.peek().text == "(" and self.peek().kind == "punct":
                self.next()
                args = self.sequence(")")
                return Call(path, tuple(args))
            nxt = self.peek()
            if nxt.kind == "punct" and nxt.text == "[":
                raise self.error(nxt, "indexing is not supported by this model")
            return Ref(path)
        if tok.text == "[":
            self.next()
            return self.sequence("]")
        if tok.text == "{":
            self.next()
            return self.object()
        raise self.error(tok, f"expected a value, found {tok.text or tok.kind!r}")

    def sequence(self, closing: str) -> list[Expr]:
        items: list[Expr] = []
        while True:
            self.skip_newlines()
            if self.peek().text == closing:
                self.next()
                return items
            items.append(self.expr())
            tok = self.peek()
            if tok.kind == "newline":
                raise self.error(tok, "missing ',' before newline")
            if tok.text == ",":
                self.next()
            elif tok.text != closing:
                raise self.error(tok, f"expected ',' or {closing!r}, found {tok.text or tok.kind!r}")

    def object(self) -> dict[str, Expr]:
        items: dict[str, Expr] = {}
        while True:
            self.skip_newlines()
            tok = self.next()
            if tok.text == "}" and tok.kind == "punct":
                return items
            if tok.kind == "ident":
                key = tok.text
            elif tok.kind == "string":
                key = _unquote(tok.text, tok.line, tok.col)
            else:
                raise self.error(tok, f"expected an object key, found {tok.text or tok.kind!r}")
            if key in items:
                raise self.error(tok, f"duplicate object key {key!r}")
            self.expect("=")
            items[key] = self.expr()
            nxt = self.peek()
            if nxt.kind == "newline":
                raise self.error(nxt, "missing ',' before newline")
            if nxt.text == ",":
                self.next()
            elif nxt.text != "}":
                raise self.error(nxt, f"expected ',' or '}}', found {nxt.text or nxt.kind!r}")


def parse(text: str) -> Document:
    """The document ``text`` describes; raises ``AlloyParseError`` naming line and column."""
    parser = _Parser(text)
    return Document(parser.body(None))
