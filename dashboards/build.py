"""Renders, validates, writes and checks every registered artifact; ``scripts/build_dashboards.py`` is a thin CLI.

Validation runs before anything is written: a query with an unknown metric,
label or log field fails the build with dashboard, panel and problem.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, load_config
from .registry import REGISTRY, Registry
from .validate.logql import LogQLToolError

GENERATORS: tuple[str, ...] = (
    ".grafana.artifacts",
    ".stack.loki_config",
    ".stack.alloy.artifacts",
    ".stack.keycloak_realm",
    ".stack.postgres_init",
    ".stack.compose",
    ".stack.prometheus.artifacts",
    ".docs.artifacts",
)
"""Modules that register artifacts (relative to this package); add a generator here, the CLI stays as it is."""


class ValidationFailed(Exception):
    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(f"{len(problems)} problem(s): " + "; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class Outcome:
    written: list[str]
    unchanged: list[str]
    stale: list[str]
    missing: list[str]


def load_generators(modules: Sequence[str] = GENERATORS) -> Registry:
    for name in modules:
        importlib.import_module(name, __package__)
    return REGISTRY


def render_all(cfg_path: Path | None = None, *, registry: Registry | None = None) -> dict[str, bytes]:
    """Validated artifacts, relative path -> bytes. Raises :class:`ValidationFailed`."""
    cfg = load_config(cfg_path)
    reg = registry or load_generators()
    problems = [p for check in reg.validators.values() for p in check(cfg)]
    if problems:
        raise ValidationFailed(problems)
    return {str(a.path): a.render(cfg) for a in sorted(reg.artifacts.values(), key=lambda a: str(a.path))
            if a.wanted(cfg)}


def write(files: dict[str, bytes], out: Path) -> Outcome:
    written, unchanged = [], []
    for rel, data in files.items():
        path = out / rel
        if path.is_file() and path.read_bytes() == data:
            unchanged.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(rel)
    return Outcome(written, unchanged, [], [])


def check(files: dict[str, bytes], out: Path) -> Outcome:
    stale, missing, unchanged = [], [], []
    for rel, data in files.items():
        path = out / rel
        if not path.is_file():
            missing.append(rel)
        elif path.read_bytes() != data:
            stale.append(rel)
        else:
            unchanged.append(rel)
    return Outcome([], unchanged, stale, missing)


def main(argv: Sequence[str] | None = None, *, default_out: Path | None = None) -> int:
    """``fastapi-lookout-stack`` writes under the working directory by default; the repository's
    ``scripts/build_dashboards.py`` passes the checkout's root."""
    parser = argparse.ArgumentParser(prog="fastapi-lookout-stack",
                                     description="Generate and validate dashboards, rules and the stack's configs.")
    parser.add_argument("--out", type=Path, default=default_out or Path.cwd(),
                        help="output root (default: %(default)s)")
    parser.add_argument("--config", type=Path, help="YAML file overriding dashboards.config.Config defaults")
    parser.add_argument("--check", action="store_true", help="only compare: exit 1 naming stale or missing files")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        files = render_all(args.config)
    except ConfigError as exc:
        print(f"config error ({len(exc.problems)} problem(s)), nothing written:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except LogQLToolError as exc:
        print(f"cannot validate LogQL: {exc}", file=sys.stderr)
        return 2
    except ValidationFailed as exc:
        print(f"validation failed, nothing written ({len(exc.problems)} problem(s)):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    if args.check:
        outcome = check(files, args.out)
        for rel in outcome.stale:
            print(f"stale: {rel}", file=sys.stderr)
        for rel in outcome.missing:
            print(f"missing: {rel}", file=sys.stderr)
        if outcome.stale or outcome.missing:
            print("generated artifacts differ from the code: run scripts/build_dashboards.py", file=sys.stderr)
            return 1
        print(f"{len(outcome.unchanged)} artifacts up to date (validated in {elapsed:.2f} s)")
        return 0
    outcome = write(files, args.out)
    for rel in outcome.written:
        print(f"wrote {rel}")
    print(f"{len(files)} artifacts validated, {len(outcome.written)} written, {len(outcome.unchanged)} unchanged "
          f"in {time.perf_counter() - started:.2f} s -> {args.out}")
    return 0
