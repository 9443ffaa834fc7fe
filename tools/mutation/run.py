"""Runs mutmut and the constants table over the listed modules and prints the score per module.

    python -m tools.mutation                       # every module
    python -m tools.mutation --module "rate limiter" --module redaction
    python -m tools.mutation --changed-since origin/main   # the modules a change touches

Exit status 1 when a module scores under the floor, when a run is incomplete, or when an entry of
``equivalent.toml`` no longer names its mutant.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tools.mutation import report
from tools.mutation.constants import CONSTANTS, Constant
from tools.mutation.modules import TARGETS, Target, by_label, touched_by

ROOT = Path(__file__).resolve().parents[2]
MUTANTS = ROOT / "mutants"
EQUIVALENT = Path(__file__).with_name("equivalent.toml")
CONSTANT_TIMEOUT = 300.0
_SCRATCH_SKIP = shutil.ignore_patterns(".git", ".venv", "mutants", "__pycache__", "var", "*.pyc", ".ruff_cache")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    targets = _select(args)
    if not targets:
        print(f"mutation: no listed module changed since {args.changed_since}; nothing to run")
        return 0
    if args.fresh and MUTANTS.exists():
        shutil.rmtree(MUTANTS)
    print("mutation: " + ", ".join(t.label for t in targets), flush=True)
    rc = run_mutmut(targets, args.max_children)
    if rc != 0:
        print(f"mutation: mutmut exited with {rc}; its output is in {MUTANTS / 'run.log'}", file=sys.stderr)
        return 1
    constants = run_constants(targets, args.max_children)
    equivalents = load_equivalents()
    scores, stale = score(targets, equivalents, constants)
    print()
    print(report.table(scores))
    listing = report.survivor_listing(scores)
    if listing:
        print("\nsurvivors (a test should fail on each, or equivalent.toml says why none can):")
        print(listing)
    failed = [s.label for s in scores if not s.passes]
    if stale:
        print("\nequivalent.toml entries that no longer hold:\n  " + "\n  ".join(stale))
    if failed:
        print(f"\nunder the {report.FLOOR:.0f} % floor or incomplete: {', '.join(failed)}")
    return 1 if failed or stale else 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.mutation", description=__doc__.split("\n\n")[0])
    p.add_argument("--module", action="append", default=[], help="a module's label (repeatable); default all")
    p.add_argument("--changed-since", metavar="REF", help="only the modules whose source or tests changed since REF")
    p.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    p.add_argument("--fresh", action="store_true", help="discard mutmut's cache (mutants/) first")
    return p


def _select(args: argparse.Namespace) -> list[Target]:
    targets = [by_label(label) for label in args.module] if args.module else list(TARGETS)
    if args.changed_since:
        changed = subprocess.run(
            ["git", "diff", "--name-only", f"{args.changed_since}...HEAD"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout.split()
        touched = touched_by(set(changed))
        targets = [t for t in targets if t in touched]
    return targets


def run_mutmut(targets: Iterable[Target], max_children: int) -> int:
    """``mutmut run`` over the targets' mutants; its (spinner-heavy) output goes to mutants/run.log."""
    MUTANTS.mkdir(exist_ok=True)
    with (MUTANTS / "run.log").open("w") as log:
        return subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *(t.glob for t in targets)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False,
        ).returncode


def exit_codes(target: Target) -> dict[str, int | None]:
    meta = MUTANTS / f"{target.path}.meta"
    if not meta.exists():
        return {}
    return dict(json.loads(meta.read_text())["exit_code_by_key"])


def mutant_diff(target: Target, name: str) -> str:
    """The diff of one mutant, as ``mutmut show`` prints it. mutmut reads paths relative to the working
    directory, which is the project root whenever this runs."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        return get_diff_for_mutant(name, path=target.path)
    finally:
        os.chdir(cwd)


def load_equivalents() -> dict[str, dict[str, str]]:
    return tomllib.loads(EQUIVALENT.read_text())


def run_constants(targets: Iterable[Target], max_children: int) -> dict[str, list[tuple[Constant, str]]]:
    """Each constant mutant of the targets applied to a scratch copy, and the target's tests run."""
    labels = {t.label: t for t in targets}
    todo = [c for c in CONSTANTS if c.target in labels]
    results: dict[str, list[tuple[Constant, str]]] = {label: [] for label in labels}
    if not todo:
        return results
    workers = max(1, min(max_children, len(todo)))
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        copies = [Path(tmp) / f"copy{i}" for i in range(workers)]
        for copy in copies:
            shutil.copytree(ROOT, copy, ignore=_SCRATCH_SKIP, symlinks=True)
        chunks = [todo[i::workers] for i in range(workers)]

        def work(i: int) -> list[tuple[Constant, str]]:
            return [(c, run_constant(copies[i], c, labels[c.target].tests)) for c in chunks[i]]

        with ThreadPoolExecutor(workers) as pool:
            for done in pool.map(work, range(workers)):
                for constant, outcome in done:
                    results[constant.target].append((constant, outcome))
    return results


def run_constant(copy: Path, constant: Constant, tests: Sequence[str]) -> str:
    """``killed``, ``timeout`` or ``survived`` for one constant mutant applied inside ``copy``."""
    path = copy / constant.path
    original = path.read_text()
    if original.count(constant.find) != 1:
        raise SystemExit(f"mutation: {constant.name}: the text must occur exactly once in {constant.path}")
    path.write_text(original.replace(constant.find, constant.replace))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        rc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=copy, env=env, capture_output=True, timeout=CONSTANT_TIMEOUT, check=False,
        ).returncode
    except subprocess.TimeoutExpired:
        return "timeout"
    finally:
        path.write_text(original)
    # 1: a test failed; 2: collection failed (the mutated module no longer imports) - both detect it.
    if rc in (1, 2):
        return "killed"
    if rc == 0:
        return "survived"
    raise SystemExit(f"mutation: {constant.name}: pytest exited with {rc} on the unmutated selection's tests")


def score(
    targets: Iterable[Target],
    equivalents: dict[str, dict[str, str]],
    constants: dict[str, list[tuple[Constant, str]]],
) -> tuple[list[report.ModuleScore], list[str]]:
    scores = []
    lines_now: dict[str, str | None] = {}
    killed_equivalents: list[str] = []
    selected_prefixes = []
    for target in targets:
        s = report.ModuleScore(target.label)
        selected_prefixes.append(target.dotted + ".")
        for name, code in sorted(exit_codes(target).items()):
            outcome = report.verdict(code)
            if name in equivalents:
                lines_now[name] = report.mutated_line(mutant_diff(target, name))
                if outcome in ("killed", "timeout"):
                    killed_equivalents.append(f"{name}: a test detects it, so it is not equivalent: drop the entry")
                s.add(name, "equivalent")
            elif outcome == "survived":
                s.add(name, outcome, mutant_diff(target, name))
            else:
                s.add(name, outcome)
        for constant, outcome in constants.get(target.label, []):
            s.add(f"constant {constant.name}", outcome, f"-{constant.find}\n+{constant.replace}")
        scores.append(s)
    checked = {n: e for n, e in equivalents.items() if n.startswith(tuple(selected_prefixes))}
    return scores, report.stale_equivalents(checked, lines_now) + killed_equivalents
