"""The Alloy language model: rendering is deterministic, matches golden files and parses back to the model."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from dashboards.stack.alloy.syntax import Attribute, Block, Call, Document, Ref, SyntaxModelError, block, quote, render
from dashboards.validate.alloy_parse import AlloyParseError, parse

GOLDEN = Path(__file__).parent / "golden"


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.read_text() == text, f"{name} differs from the renderer's output; UPDATE_GOLDEN=1 rewrites it"


def every_feature() -> Document:
    return Document(
        header=("A document using every construct the model has.",),
        body=(
            Attribute("top_level", 1),
            block("logging", None, level="debug", format="json"),
            block(
                "loki.write", "default",
                block("endpoint", None, url=Call("sys.env", ("LOKI_URL",)), headers={"X-Scope-OrgID": "tenant-1"}),
                block("wal", None),
                external_labels={},
                max_streams=0,
            ),
            block(
                "loki.process", "all_values",
                block("stage.static_labels", None, values={"cluster": "eu-1"}),
                forward_to=[Ref("loki.write.default.receiver")],
                text="quote \" backslash \\ newline \n tab \t bell \x07 unicode é",
                number=-42,
                ratio=0.25,
                flags=[True, False, None],
                nested={"list": [1, 2, 3], "map": {"a b": "c", "ok_key": Ref("local.file_match.x.targets")}},
                long_list=[f"item-{i:02d}-with-some-length" for i in range(5)],
                mixed=[{"a": 1}, "b"],
            ),
        ),
    )


def test_every_construct_renders_as_the_golden_file():
    _golden("alloy_syntax.alloy", render(every_feature()))


def test_rendering_is_deterministic_and_ends_with_one_newline():
    first, second = render(every_feature()), render(every_feature())
    assert first == second
    assert first.endswith("}\n") and not first.endswith("\n\n")
    assert "\r" not in first


def test_rendered_text_parses_back_to_the_same_model():
    doc = every_feature()
    assert parse(render(doc)).body == doc.body


def test_equals_signs_are_aligned_over_runs_of_attributes():
    text = render(Document((block("a", "b", x=1, longer_name=2),)))
    assert "\tx           = 1\n\tlonger_name = 2\n" in text


def test_strings_use_go_escapes():
    assert quote('a"b\\c\nd\te') == r'"a\"b\\c\nd\te"'
    assert quote("\x01") == r'"\x01"'
    assert parse('a = "\\u00e9\\x41"').body == (Attribute("a", "éA"),)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Ref("loki.write.default-x"),
        lambda: Attribute("not valid", 1),
        lambda: Block("loki.write", "has space"),
        lambda: render(Document((Attribute("x", float("nan")),))),
        lambda: render(Document((Attribute("x", object()),))),  # type: ignore[arg-type]
    ],
)
def test_values_alloy_cannot_express_are_refused(bad):
    with pytest.raises(SyntaxModelError):
        bad()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('a = [\n  1,\n  2\n]\n', "missing ',' before newline"),
        ('a = {\n  b = 1\n}\n', "missing ',' before newline"),
        ("a = 1 b = 2\n", "expected a newline after the statement"),
        ("loki.write.default = 1\n", "must be a single identifier"),
        ("a = x[0]\n", "indexing is not supported"),
        ("a = 1 + 2\n", "unexpected character '+'"),
        ('blk "l" {\n', "expected an identifier"),
        ('a = {b = 1, b = 2}\n', "duplicate object key"),
    ],
)
def test_parser_refuses_what_alloy_refuses_naming_the_line(text, message):
    with pytest.raises(AlloyParseError, match=re.escape(message)) as raised:
        parse(text)
    assert raised.value.line >= 1


def test_comments_and_raw_strings_are_read():
    doc = parse('// a comment\nblk "x" { /* inline */\n  re = `\\d+` // trailing\n}\n')
    assert doc.body == (Block("blk", "x", (Attribute("re", "\\d+"),)),)
