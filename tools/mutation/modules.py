"""The modules under mutation testing, each with the fast, in-process tests that cover it.

``pyproject.toml``'s ``[tool.mutmut]`` lists the same paths and tests (``tests/test_mutation.py``
holds them equal): mutmut reads its configuration from there, this table is what the runner reports by.
A test listed here must not start a Python process of the project (the child would import the mutated
code without mutmut's bookkeeping) and should take seconds: every mutant reruns the tests that reach it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    label: str
    path: str
    tests: tuple[str, ...]

    @property
    def dotted(self) -> str:
        """The module's dotted name, the prefix of every mutmut mutant name in it."""
        return self.path.removesuffix(".py").replace("/", ".")

    @property
    def glob(self) -> str:
        """The ``mutmut run`` argument selecting this module's mutants."""
        return f"{self.dotted}.*"


TARGETS: tuple[Target, ...] = (
    Target("redaction", "fastapi_lookout/redaction.py", ("tests/test_redaction.py",)),
    Target(
        "audit chain", "fastapi_lookout/audit/chain.py",
        ("tests/test_audit_chain_walk.py", "tests/test_audit_chain_encoding.py"),
    ),
    Target("audit verifier", "fastapi_lookout/audit/verifier.py", ("tests/test_audit_verifier.py",)),
    Target("rate limiter", "app/ratelimit.py", ("tests/test_ratelimit_windows.py",)),
    Target("token verifier", "app/auth/tokens.py", ("tests/test_auth_token_edges.py", "tests/test_auth_tokens.py")),
    Target(
        "PromQL validator", "dashboards/validate/promql.py",
        ("tests/dashboards/test_promql_labels.py", "tests/dashboards/test_promql.py"),
    ),
    Target(
        "LogQL validator", "dashboards/validate/logql.py",
        ("tests/dashboards/test_logql_contract.py", "tests/dashboards/test_logql.py"),
    ),
    Target(
        "SQL validator", "dashboards/validate/sql.py",
        ("tests/dashboards/test_sql_grafana_expansion.py", "tests/dashboards/test_sql_expander.py"),
    ),
    Target(
        "config loader", "dashboards/config/load.py",
        ("tests/dashboards/test_config_load.py", "tests/dashboards/test_config.py"),
    ),
)


def all_tests() -> list[str]:
    """Every target's tests, each once, in table order: mutmut's test selection."""
    seen: dict[str, None] = {}
    for target in TARGETS:
        seen.update(dict.fromkeys(target.tests))
    return list(seen)


def by_label(label: str) -> Target:
    for target in TARGETS:
        if target.label.lower() == label.lower():
            return target
    known = ", ".join(t.label for t in TARGETS)
    raise KeyError(f"no module labelled {label!r} under mutation testing (known: {known})")


def touched_by(changed: set[str]) -> list[Target]:
    """The targets a change touches: its source or one of its tests. A change to the mutation tool or its
    configuration touches them all."""
    if any(path.startswith("tools/mutation/") or path == "pyproject.toml" for path in changed):
        return list(TARGETS)
    return [t for t in TARGETS if t.path in changed or changed.intersection(t.tests)]
