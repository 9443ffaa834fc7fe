"""The pinned LogQL grammar runs on the Node this project installs (dashboards/validate/logql.py says why 0.3.0)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from dashboards.validate import logql
from tests.support.binaries import require

ROOT = Path(__file__).resolve().parents[2]


def _major(spec: str) -> int:
    match = re.search(r"(\d+)", spec)
    assert match, spec
    return int(match.group(1))


def test_package_json_pins_the_grammar_and_the_runtime_exactly():
    deps = json.loads((ROOT / "package.json").read_text())["dependencies"]
    assert deps == {"@grafana/lezer-logql": "0.3.0", "@lezer/lr": "1.4.10"}
    assert "@grafana/lezer-logql@0.3.0" in logql.INSTALL_HINT and "@lezer/lr@1.4.10" in logql.INSTALL_HINT


def test_the_installed_grammar_declares_no_engine_above_the_node_here():
    node = shutil.which("node")
    installed = ROOT / "node_modules" / "@grafana" / "lezer-logql" / "package.json"
    require("node", node, "apt-get install nodejs")
    require("the LogQL grammar", installed.exists(), "npm ci")
    running = _major(subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout)
    meta = json.loads(installed.read_text())
    assert meta["version"] == "0.3.0"
    required = (meta.get("engines") or {}).get("node")
    assert required is None or _major(required) <= running, (required, running)
    assert running >= 18  # Debian 12's nodejs (18.20); the 0.4 line needs 24
