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
