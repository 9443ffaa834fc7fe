"""The prometheus-client range ``pyproject.toml`` declares is the range tested: the exposition tests run
on its lowest and its highest release, each installed into a throwaway directory ahead of this venv's."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.binaries import require

ROOT = Path(__file__).resolve().parents[1]
LOWEST, HIGHEST = "0.20.0", "0.26.0"
DECLARED = "prometheus-client>=0.20,<0.27"
EXPOSITION_TESTS = ("tests/test_exposition.py", "tests/test_http_metrics.py", "tests/test_audit_queue_metrics.py",
                    "tests/test_multiprocess_files.py")


def test_the_declared_range_is_the_tested_one():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert [d for d in dependencies if d.startswith("prometheus-client")] == [DECLARED], (
        "a new prometheus-client range: change LOWEST, HIGHEST and DECLARED here together")


@pytest.mark.parametrize("version", [LOWEST, HIGHEST])
def test_the_exposition_tests_pass_on_both_ends_of_the_range(version, tmp_path):
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "--target", str(site), f"prometheus-client=={version}"], capture_output=True, text=True)
    require(f"prometheus-client {version} from the package index", installed.returncode == 0, installed.stderr[-500:])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    which = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m, prometheus_client as p; "
                               "print(m.version('prometheus-client'), p.__file__)"],
        env=env, capture_output=True, text=True, check=True).stdout.split()
    assert which[0] == version and which[1].startswith(str(site)), which
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *EXPOSITION_TESTS],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
