"""Verdicts, scores and the printed table of ``make mutation``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

FLOOR = 90.0
"""The least mutation score (%) each listed module may have."""

# mutmut 3's exit codes per mutant (mutmut/stats.py): the test run's exit code, or its own markers.
KILLED_CODES = frozenset({1, 3, -9, -11})
TIMEOUT_CODES = frozenset({36, 24, -24, 152, 255})
SURVIVED_CODES = frozenset({0, 5, 33})  # passed, or no test reached the mutant


def verdict(exit_code: int | None) -> str:
    """``killed``, ``timeout``, ``survived`` or ``not run`` for one mutant's recorded exit code."""
    if exit_code in KILLED_CODES:
        return "killed"
    if exit_code in TIMEOUT_CODES:
        return "timeout"
    if exit_code in SURVIVED_CODES:
        return "survived"
    return "not run"


@dataclass
class Survivor:
    name: str
    diff: str


@dataclass
class ModuleScore:
    label: str
    mutants: int = 0
    killed: int = 0
    timeout: int = 0
    equivalent: int = 0
    not_run: int = 0
    survivors: list[Survivor] = field(default_factory=list)

    def add(self, name: str, outcome: str, diff: str = "") -> None:
        """Count one mutant; ``outcome`` is a :func:`verdict` or ``equivalent``."""
        self.mutants += 1
        if outcome == "killed":
            self.killed += 1
        elif outcome == "timeout":
            self.timeout += 1
        elif outcome == "equivalent":
            self.equivalent += 1
        elif outcome == "survived":
            self.survivors.append(Survivor(name, diff))
        else:
            self.not_run += 1

    @property
    def score(self) -> float:
        """Detected (killed or timed out) per mutant that could be detected, in percent."""
        counted = self.mutants - self.equivalent - self.not_run
        if counted <= 0:
            return 100.0
        return 100.0 * (self.killed + self.timeout) / counted

    @property
    def passes(self) -> bool:
        return self.not_run == 0 and self.score >= FLOOR


def table(scores: Iterable[ModuleScore]) -> str:
    """A Markdown table, one row per module and a total."""
    rows = list(scores)
    lines = [
        "| module | mutants | killed | timeout | equivalent | survived | score |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    total = ModuleScore("all")
    for s in rows:
        lines.append(_row(s))
        total.mutants += s.mutants
        total.killed += s.killed
        total.timeout += s.timeout
        total.equivalent += s.equivalent
        total.not_run += s.not_run
        total.survivors += s.survivors
    if len(rows) > 1:
        lines.append(_row(total))
    return "\n".join(lines)


def _row(s: ModuleScore) -> str:
    note = f" ({s.not_run} not run)" if s.not_run else ""
    return (
        f"| {s.label} | {s.mutants} | {s.killed} | {s.timeout} | {s.equivalent} | {len(s.survivors)}{note} "
        f"| {s.score:.1f} % |"
    )


def survivor_listing(scores: Iterable[ModuleScore]) -> str:
    """Every survivor with the lines its mutation changed."""
    out: list[str] = []
    for s in scores:
        for survivor in s.survivors:
            changed = [
                line for line in survivor.diff.splitlines()
                if line[:1] in ("+", "-") and not line.startswith(("+++", "---"))
            ]
            out.append(f"  {s.label}: {survivor.name}")
            out.extend(f"      {line[0]} {line[1:].strip()}" for line in changed)
    return "\n".join(out)


def stale_equivalents(
    equivalents: Mapping[str, Mapping[str, str]], mutated_lines: Mapping[str, str | None]
) -> list[str]:
    """Entries of the equivalents file that no longer name the mutant they were written for.

    ``mutated_lines`` maps each listed name to the mutated line of the mutant of that name now, or None
    when there is no such mutant.
    """
    problems = []
    for name, entry in equivalents.items():
        if not entry.get("reason", "").strip():
            problems.append(f"{name}: no reason given")
        now = mutated_lines.get(name)
        if now is None:
            problems.append(f"{name}: no such mutant any more (the function changed: run again and re-check it)")
        elif now.strip() != entry.get("line", "").strip():
            problems.append(f"{name}: the mutant now reads {now.strip()!r}, the entry says {entry.get('line')!r}")
    return problems


def mutated_line(diff: str) -> str:
    """The first added line of a mutant's diff, stripped (what an equivalents entry records)."""
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            return line[1:].strip()
    return ""
