"""The mutation tool's own contract: its tables agree with mutmut's configuration and the sources, and
its verdicts, scores and constant mutants are what they claim."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import pytest

from tools.mutation import report, run
from tools.mutation.constants import CONSTANTS, Constant
from tools.mutation.modules import TARGETS, Target, all_tests, by_label, touched_by

ROOT = Path(__file__).resolve().parents[1]


def _mutmut_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]


def test_mutmut_mutates_exactly_the_listed_modules_with_their_tests() -> None:
    config = _mutmut_config()
    assert config["only_mutate"] == [t.path for t in TARGETS]
    assert config["pytest_add_cli_args_test_selection"] == all_tests()
    for target in TARGETS:
        assert (ROOT / target.path).is_file(), target.path
        assert any(target.path.startswith(f"{src}/") for src in config["source_paths"]), target.path
        for test in target.tests:
            assert (ROOT / test).is_file(), test


def test_every_constant_mutant_applies_to_exactly_one_place_of_its_modules_source() -> None:
    labels = {t.label: t for t in TARGETS}
    for constant in CONSTANTS:
        assert constant.target in labels, constant.name
        assert constant.path == labels[constant.target].path, constant.name
        assert constant.find != constant.replace, constant.name
        assert constant.why.strip(), constant.name
        assert (ROOT / constant.path).read_text().count(constant.find) == 1, constant.name


def test_every_equivalent_mutant_belongs_to_a_listed_module_and_says_why() -> None:
    prefixes = tuple(t.dotted + "." for t in TARGETS)
    for name, entry in run.load_equivalents().items():
        assert name.startswith(prefixes), name
        assert entry["reason"].strip() and entry["line"].strip(), name


@pytest.mark.parametrize(
    ("code", "expected"),
    [(1, "killed"), (3, "killed"), (-9, "killed"), (36, "timeout"), (255, "timeout"), (0, "survived"),
     (5, "survived"), (33, "survived"), (None, "not run"), (2, "not run")],
)
def test_verdicts_follow_mutmuts_exit_codes(code, expected) -> None:
    assert report.verdict(code) == expected


def test_the_score_counts_timeouts_as_detected_and_leaves_equivalents_out() -> None:
    s = report.ModuleScore("m")
    for outcome in ["killed"] * 16 + ["timeout"] * 2 + ["equivalent"] * 5 + ["survived"] * 2:
        s.add("x", outcome)
    assert (s.mutants, s.killed, s.timeout, s.equivalent, len(s.survivors)) == (25, 16, 2, 5, 2)
    assert s.score == pytest.approx(90.0)
    assert s.passes
    s.add("y", "survived")
    assert s.score == pytest.approx(100 * 18 / 21)
    assert not s.passes


def test_a_module_with_an_unrun_mutant_does_not_pass() -> None:
    s = report.ModuleScore("m")
    s.add("a", "killed")
    s.add("b", "not run")
    assert s.score == 100.0
    assert not s.passes
    assert "(1 not run)" in report.table([s])


def test_the_table_has_a_row_per_module_and_a_total() -> None:
    a, b = report.ModuleScore("a"), report.ModuleScore("b")
    a.add("1", "killed")
    b.add("2", "survived", "--- f\n+++ f\n@@ -1 +1 @@\n\n-    return x < 1\n+    return x <= 1\n")
    text = report.table([a, b])
    assert "| a | 1 | 1 | 0 | 0 | 0 | 100.0 % |" in text
    assert "| b | 1 | 0 | 0 | 0 | 1 | 0.0 % |" in text
    assert "| all | 2 | 1 | 0 | 0 | 1 | 50.0 % |" in text
    listing = report.survivor_listing([a, b])
    assert "b: 2" in listing and "- return x < 1" in listing and "+ return x <= 1" in listing
    assert "+++" not in listing


def test_an_equivalents_entry_that_no_longer_names_its_mutant_is_reported() -> None:
    entries = {
        "m.x_f__mutmut_1": {"reason": "same", "line": "return a <= b"},
        "m.x_f__mutmut_2": {"reason": "same", "line": "return a"},
        "m.x_f__mutmut_3": {"reason": "", "line": "return b"},
        "m.x_f__mutmut_4": {"reason": "same", "line": "return c"},
    }
    now = {"m.x_f__mutmut_1": "return a <= b", "m.x_f__mutmut_2": "return None", "m.x_f__mutmut_3": "return b"}
    problems = report.stale_equivalents(entries, now)
    assert len(problems) == 3
    assert any("mutmut_2" in p and "return None" in p for p in problems)
    assert any("mutmut_3" in p and "no reason" in p for p in problems)
    assert any("mutmut_4" in p and "no such mutant" in p for p in problems)


def test_the_mutated_line_is_the_first_added_line_of_the_diff() -> None:
    diff = "--- a.py\n+++ a.py\n@@ -1,2 +1,2 @@\n def f():\n-    return 1\n+    return 2\n"
    assert report.mutated_line(diff) == "return 2"


def test_a_change_touches_the_modules_whose_source_or_tests_it_changes() -> None:
    limiter = by_label("rate limiter")
    assert touched_by({"app/ratelimit.py"}) == [limiter]
    assert touched_by({limiter.tests[0], "README.md"}) == [limiter]
    assert touched_by({"README.md"}) == []
    assert touched_by({"tools/mutation/report.py"}) == list(TARGETS)
    with pytest.raises(KeyError, match="known:"):
        by_label("nope")


def test_a_constant_mutant_is_killed_only_when_a_test_fails(tmp_path) -> None:
    (tmp_path / "limits.py").write_text("LIMIT = 8\n\ndef allowed(n):\n    return n <= LIMIT\n")
    (tmp_path / "test_limits.py").write_text(textwrap.dedent("""
        from limits import allowed

        def test_the_limit_is_allowed():
            assert allowed(8)
    """))
    lowered = Constant("t", "limits.py", "LIMIT = 8", "LIMIT = 7", "the limit")
    raised = Constant("t", "limits.py", "LIMIT = 8", "LIMIT = 9", "the limit")
    assert run.run_constant(tmp_path, lowered, ["test_limits.py"]) == "killed"
    assert run.run_constant(tmp_path, raised, ["test_limits.py"]) == "survived"
    assert (tmp_path / "limits.py").read_text().startswith("LIMIT = 8\n"), "the source is put back"


def test_target_names_match_mutmuts_mutant_names() -> None:
    target = Target("x", "app/auth/tokens.py", ())
    assert target.dotted == "app.auth.tokens"
    assert target.glob == "app.auth.tokens.*"
