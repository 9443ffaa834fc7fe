"""Mutants of module-level constants, which mutmut 3 does not mutate: a regex alternative deleted, a
field dropped from a list, a limit moved by one. Each is applied to a scratch copy of the sources and
the target's tests are run; a mutant whose tests still pass survives like any other.

``find`` must occur exactly once in ``path`` (``tests/test_mutation.py`` checks it), so a rename cannot
silently turn an entry into a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Constant:
    target: str
    path: str
    find: str
    replace: str
    why: str

    @property
    def name(self) -> str:
        return f"{self.path}: {self.find!r} -> {self.replace!r}"


CONSTANTS: tuple[Constant, ...] = (
    # token verifier
    Constant("token verifier", "app/auth/tokens.py", "MAX_TOKEN_BYTES: Final = 8 * 1024", "MAX_TOKEN_BYTES: Final = 8 * 1024 + 1", "8 KiB token cap: 8193 characters refused"),
    Constant("token verifier", "app/auth/tokens.py", "LEEWAY_SECONDS: Final = 30", "LEEWAY_SECONDS: Final = 31", "30 s clock-skew leeway"),
    Constant("token verifier", "app/auth/tokens.py", 'ACCESS_TOKEN_TYPE: Final = "bearer"', 'ACCESS_TOKEN_TYPE: Final = "Bearer"', "typ compared lower-cased to the access-token type"),
    Constant("token verifier", "app/auth/tokens.py", '    "unknown_key",', '    "unknown-key",', "refusal reasons are the auth metric's statuses"),
    Constant("token verifier", "app/auth/tokens.py", '    "jwks_unavailable",', '    "jwks_down",', "the JWKS outage reason (the 503)"),
    # PromQL validator
    Constant("PromQL validator", "dashboards/validate/promql.py", 'ALWAYS_ALLOWED = frozenset({"job", "instance", "__name__"})', 'ALWAYS_ALLOWED = frozenset({"instance", "__name__"})', "job is a label of every series"),
    Constant("PromQL validator", "dashboards/validate/promql.py", 'frozenset({"rate", "increase", "irate"})', 'frozenset({"rate", "irate"})', "increase() reads a counter"),
    Constant("PromQL validator", "dashboards/validate/promql.py", 'RATE_INTERVAL = "$__rate_interval"', 'RATE_INTERVAL = "$__interval"', "ranges must be $__rate_interval"),
    Constant("PromQL validator", "dashboards/validate/promql.py", 'RANGE = "$__range"', 'RANGE = "$__range_s"', "instant queries may read [$__range]"),
    Constant("PromQL validator", "dashboards/validate/promql.py", '_STRING = re.compile(r\'"(?:[^"\\\\]|\\\\.)*"|', "_STRING = re.compile(r'", "brackets inside double-quoted strings are not ranges"),
    Constant("PromQL validator", "dashboards/validate/promql.py", '_RANGE = re.compile(r"\\[([^\\[\\]]*)\\]")', '_RANGE = re.compile(r"\\[(\\d+\\w)\\]")', "every bracketed range is checked"),
    Constant("PromQL validator", "dashboards/validate/promql.py", 'VALUE, RATE_ARG, ANY = "value", "rate-argument", "any"', 'VALUE, RATE_ARG, ANY = "value", "rate-argument", "value"', "variable queries may read counters directly"),
    # LogQL validator
    Constant("LogQL validator", "dashboards/validate/logql.py", 'GRAMMAR_PACKAGE = "@grafana/lezer-logql"', 'GRAMMAR_PACKAGE = "@grafana/lezer-promql"', "Loki's own grammar package"),
    Constant("LogQL validator", "dashboards/validate/logql.py", 'NODE_MODULES_ENV = "FASTAPI_LOOKOUT_NODE_MODULES"', 'NODE_MODULES_ENV = "LOOKOUT_NODE_MODULES"', "the documented override variable"),
    Constant("LogQL validator", "dashboards/validate/logql.py", 'with_name("logql_check.mjs")', 'with_name("logql_check.js")', "the node checker script"),
    # SQL validator
    Constant("SQL validator", "dashboards/validate/sql.py", 'MACRO = re.compile(r"\\$__(\\w+)\\(([^)]*)\\)")', 'MACRO = re.compile(r"\\$__(\\w+)\\((\\w*)\\)")', "macro arguments with commas and spaces"),
    Constant("SQL validator", "dashboards/validate/sql.py", "(ms|s|m|h|d|w|y)", "(s|m|h|d|w|y)", "millisecond intervals"),
    Constant("SQL validator", "dashboards/validate/sql.py", '"w": 604800', '"w": 600000', "a week in seconds"),
    Constant("SQL validator", "dashboards/validate/sql.py", '"y": 31536000', '"y": 31536001', "a year in seconds"),
    Constant("SQL validator", "dashboards/validate/sql.py", '"m": 60,', '"m": 61,', "a minute in seconds"),
    Constant("SQL validator", "dashboards/validate/sql.py", 'SAFE_FORMATS = frozenset({"sqlstring"})', 'SAFE_FORMATS = frozenset({"sqlstring", "raw"})', "only :sqlstring is injection-safe"),
)
