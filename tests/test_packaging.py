"""What ``pip install`` of this repository puts into site-packages: only non-generic names, every package."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
GENERIC = {"app", "dashboards", "tests", "scripts", "src", "benchmarks", "tools", "examples"}


def source_dir(package: str) -> Path:
    top, *rest = package.split(".")
    return REPO / SETUPTOOLS.get("package-dir", {}).get(top, top) / "/".join(rest)


def test_no_installed_top_level_name_is_one_a_users_project_already_has() -> None:
    tops = {p.split(".")[0] for p in SETUPTOOLS["packages"]}
    assert tops == {"fastapi_lookout", "fastapi_lookout_dashboards"}
    assert not tops & GENERIC


def test_every_package_directory_is_installed() -> None:
    """A subpackage added under fastapi_lookout/ or dashboards/ without its line here would install broken."""
    listed = {source_dir(p).resolve() for p in SETUPTOOLS["packages"]}
    on_disk = {init.parent.resolve() for root in ("fastapi_lookout", "dashboards")
               for init in (REPO / root).rglob("__init__.py")}
    assert on_disk == listed


def test_the_base_install_is_what_instrument_needs() -> None:
    names = sorted(dep.split(">")[0].split("[")[0].split("=")[0] for dep in PYPROJECT["project"]["dependencies"])
    assert names == ["fastapi", "orjson", "prometheus-client", "structlog"]


def test_console_scripts_point_at_installed_modules() -> None:
    for target in PYPROJECT["project"]["scripts"].values():
        module, _, function = target.partition(":")
        path = source_dir(module)
        assert path.with_suffix(".py").is_file(), target
        assert f"def {function}(" in path.with_suffix(".py").read_text()
