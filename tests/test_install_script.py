"""What a user without root sees when a binary is missing: what the README's Prerequisites section promises."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install_system_deps.sh"


def _as_non_root_without_binaries(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """bash with a PATH holding nothing but an ``id`` that says uid 1000: no node, npm, servers or apt."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")
    (bin_dir / "id").chmod(0o755)
    bash = shutil.which("bash")
    assert bash
    return subprocess.run([bash, str(SCRIPT), *args], capture_output=True, text=True, timeout=30,
                          env={"PATH": str(bin_dir)})


def test_the_build_stops_naming_node_and_npm(tmp_path):
    done = _as_non_root_without_binaries(tmp_path, "node")
    assert done.returncode == 1
    assert "Node.js >= 18 with npm" in done.stderr
    assert "sudo apt-get install nodejs npm" in done.stderr


def test_the_tests_go_on_naming_what_will_skip(tmp_path):
    done = _as_non_root_without_binaries(tmp_path)
    assert done.returncode == 0
    line = done.stderr.strip()
    assert line.startswith("missing system packages (tests needing them will skip): ")
    assert set(line.split(": ", 1)[1].split()) == {
        "prometheus", "prometheus-alertmanager", "victoria-metrics", "postgresql", "postgresql-client",
        "docker-compose"}  # node and npm are not optional: the build's own step stops without them
