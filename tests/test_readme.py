"""The README must tell the truth about the code."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_configuration_table_matches_the_settings_class():
    text = README.read_text()
    table = re.search(r"<!-- settings-table -->\n(.*?)\n<!-- /settings-table -->", text, re.S)
    assert table, "settings table markers missing"
    assert table.group(1) == markdown_table(), "README configuration table is stale: regenerate it"


def test_readme_opens_with_the_build_and_test_commands():
    lines = [ln for ln in README.read_text().splitlines() if ln.strip()]
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert block[0].startswith("make build") and block[1].startswith("make test")


# --- the newcomer's part ------------------------------------------------------------------------------------------
NEWCOMER_LINES = 210
"""The part before the reference sections stays short enough to read in one go (issue: at most ~200 lines)."""


def test_the_part_before_the_reference_sections_is_short():
    lines = README.read_text().splitlines()
    assert "The rest is reference." in lines
    assert lines.index("The rest is reference.") < NEWCOMER_LINES


def test_the_base_dependency_list_is_the_distributions():
    import tomllib

    listed = re.search(r"<!-- base-deps -->(.*?)<!-- /base-deps -->", README.read_text(), re.S)
    assert listed, "base-deps markers missing"
    pyproject = tomllib.loads((README.parent / "pyproject.toml").read_text())
    names = {re.split(r"[<>=\[ ]", dep)[0] for dep in pyproject["project"]["dependencies"]}
    assert set(re.findall(r"`([^`]+)`", listed.group(1))) == names


def example(name: str) -> str:
    """The python block after ``<!-- readme-example: name -->``: what users copy, so it is what the tests run."""
    block = re.search(rf"<!-- readme-example: {name} -->\n```python\n(.*?)\n```", README.read_text(), re.S)
    assert block, f"README example {name!r} missing"
    return block.group(1)


def test_the_import_line_users_copy_is_the_one_the_examples_use():
    assert "from fastapi_lookout import instrument" in example("instrument")
    assert "from fastapi_lookout import instrument" in example("audit")
