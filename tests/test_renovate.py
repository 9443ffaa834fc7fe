"""renovate.json tracks every pin at its source and never the generated docker-compose.yml."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import yaml

from dashboards.config import Images
from dashboards.stack import compose

ROOT = Path(__file__).resolve().parents[1]
CONFIG = json.loads((ROOT / "renovate.json").read_text())
WORKFLOW = ROOT / ".github/workflows/renovate-check.yml"


def _image_manager() -> dict:
    (manager,) = [m for m in CONFIG["customManagers"] if m["customType"] == "regex"]
    return manager


def _python_regex(js: str) -> re.Pattern[str]:
    return re.compile(js.replace("(?<", "(?P<"))


def test_the_generated_compose_file_is_ignored_and_the_config_module_is_read():
    assert compose.PATH in CONFIG["ignorePaths"]
    manager = _image_manager()
    (pattern,) = manager["managerFilePatterns"]
    assert re.search(pattern.strip("/"), "dashboards/config/model.py")
    assert (manager["datasourceTemplate"], manager["versioningTemplate"]) == ("docker", "docker")


def test_the_regex_finds_every_upstream_image_pin_and_nothing_else():
    text = (ROOT / "dashboards/config/model.py").read_text()
    (match_string,) = _image_manager()["matchStrings"]
    found = {(m["depName"], m["currentValue"]) for m in _python_regex(match_string).finditer(text)}
    pins = {f.name: getattr(Images(), f.name) for f in dataclasses.fields(Images)}
    upstream = {image.split("@")[0].rpartition(":")[::2] for name, image in pins.items() if name != "app"}
    assert found == upstream  # the reference service's own image is not an upstream release


def test_a_digest_pinned_image_is_read_too():
    """Pinning to digests is optional (README "Versions"): the regex already reads `tag@sha256:...`."""
    (match_string,) = _image_manager()["matchStrings"]
    digest = "sha256:" + "a" * 64
    text = f'    loki: str = "grafana/loki:3.7.6@{digest}"\n    """Loki 3.7.6, released 2026-08-05."""\n'
    match = _python_regex(match_string).search(text)
    assert match and (match["currentValue"], match["currentDigest"]) == ("3.7.6", digest)


def test_python_npm_and_the_traps_are_covered():
    assert {"custom.regex", "pep621", "npm"} <= set(CONFIG["enabledManagers"])
    rules = CONFIG["packageRules"]

    def rule_for(name: str) -> dict:
        return next(r for r in rules if name in r.get("matchPackageNames", []) + r.get("matchDepNames", [])
                    and "allowedVersions" in r)

    sdk = re.compile(rule_for("grafana-foundation-sdk")["allowedVersions"].strip("/"))
    assert sdk.match("0.0.21") and sdk.match("v0.0.22") and not sdk.match("1769699998!10.1.0")
    assert rule_for("@grafana/lezer-logql")["allowedVersions"] == "<0.4.0"
    assert rule_for("@lezer/lr")["allowedVersions"] == "1.4.10"
    assert rule_for("postgres")["allowedVersions"] == "<19"


def test_update_branches_are_rebuilt_then_checked():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True]["push"]["branches"] == ["renovate/**"]  # YAML 1.1 reads the `on` key as True
    (job,) = workflow["jobs"].values()
    runs = [step.get("run", "") for step in job["steps"]]
    build = next(i for i, run in enumerate(runs) if run.strip() == "python scripts/build_dashboards.py")
    check = next(i for i, run in enumerate(runs) if run.strip() == "python scripts/build_dashboards.py --check")
    assert build < check
    assert any("git push" in run for run in runs[build:check])
    # the rebuild commit must not make Renovate consider its branch edited by someone else (it would stop rebasing)
    assert any(run.count("renovate-check@users.noreply.github.com") for run in runs)
    assert "renovate-check@users.noreply.github.com" in CONFIG["gitIgnoredAuthors"]
