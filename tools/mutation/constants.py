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
    # redaction
    Constant("redaction", "fastapi_lookout/redaction.py", 'REDACTED: Final = "[REDACTED]"', 'REDACTED: Final = "***"', "the replacement marker"),
    Constant("redaction", "fastapi_lookout/redaction.py", 'r"authorization|token|', 'r"token|', "Authorization (Basic, Digest) header keys"),
    Constant("redaction", "fastapi_lookout/redaction.py", "authorization|token|passw|secret|cookie", "authorization|passw|secret|cookie", "*token keys"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|passw|secret|cookie|", "|secret|cookie|", "password/passwd keys"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|secret|cookie|", "|cookie|", "client_secret keys"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|cookie|", "|", "Cookie/Set-Cookie keys"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|cookie|api[-_]?key|", "|cookie|", "X-Api-Key/api_key keys"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|cookie|api[-_]?key|", "|cookie|apikey|", "api-key/api_key key spellings"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|credential|session|private", "|session|private", "credentials keys"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|session|private", "|private", "session/sessionid keys"),
    Constant("redaction", "fastapi_lookout/redaction.py", '|private[-_]?key",', '",', "private_key keys"),
    Constant("redaction", "fastapi_lookout/redaction.py", '|private[-_]?key",', '|private_key",', "private-key/privatekey key spellings"),
    Constant("redaction", "fastapi_lookout/redaction.py", "re.IGNORECASE,", "0,", "secret keys matched whatever their case"),
    Constant("redaction", "fastapi_lookout/redaction.py", 'r"(?i)\\bbearer', 'r"\\bbearer', "bearer tokens whatever the case"),
    Constant("redaction", "fastapi_lookout/redaction.py", 'r"(?i)\\bbearer', 'r"(?i)bearer', "bearer only as a word"),
    Constant("redaction", "fastapi_lookout/redaction.py", "\\bbearer\\s+[A-Za-z0-9._~+/=-]+|", "", "bearer tokens in free text"),
    Constant("redaction", "fastapi_lookout/redaction.py", "\\bbearer\\s+[A-Za-z0-9._~+/=-]+|", "\\bbearer\\s+[A-Za-z0-9._-]+|", "bearer token characters ~+/="),
    Constant("redaction", "fastapi_lookout/redaction.py", '|\\beyJ[A-Za-z0-9_-]{5,}\\.[A-Za-z0-9_-]{5,}\\.[A-Za-z0-9_-]*"', '"', "JWTs in free text"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|\\beyJ[A-Za-z0-9_-]{5,}", "|\\beyJ[A-Za-z0-9_-]{4,}", "JWT header length limit"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|\\beyJ[A-Za-z0-9_-]{5,}", "|\\beyJ[A-Za-z0-9_-]{6,}", "JWT header minimum shape"),
    Constant("redaction", "fastapi_lookout/redaction.py", '{5,}\\.[A-Za-z0-9_-]*"', '{4,}\\.[A-Za-z0-9_-]*"', "JWT payload length limit"),
    Constant("redaction", "fastapi_lookout/redaction.py", '{5,}\\.[A-Za-z0-9_-]*"', '{5,}\\.[A-Za-z0-9_-]+"', "JWT with an empty signature"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|\\beyJ", "|eyJ", "JWT only at a word start"),
    Constant("redaction", "fastapi_lookout/redaction.py", 'r"(?i)([?&;]', 'r"([?&;]', "secret query names whatever their case"),
    Constant("redaction", "fastapi_lookout/redaction.py", 'r"(?i)([?&;]', 'r"(?i)([?&]', "; as a query separator"),
    Constant("redaction", "fastapi_lookout/redaction.py", 'r"(?i)([?&;]', 'r"(?i)([?;]', "& as a query separator"),
    Constant("redaction", "fastapi_lookout/redaction.py", "(?:token|", "(?:", "token query parameters"),
    Constant("redaction", "fastapi_lookout/redaction.py", "(?:token|passw|", "(?:token|", "password query parameters"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|passw|secret|api", "|passw|api", "client_secret query parameters"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|secret|api[-_]?key|credential", "|secret|credential", "api_key query parameters"),
    Constant("redaction", "fastapi_lookout/redaction.py", "?key|credential|session|signature", "?key|session|signature", "credentials query parameters"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|session|signature|", "|signature|", "session query parameters"),
    Constant("redaction", "fastapi_lookout/redaction.py", '|signature|"', '|"', "signature query parameters (presigned URLs)"),
    Constant("redaction", "fastapi_lookout/redaction.py", 'r"private[-_]?key|authorization)', 'r"authorization)', "private_key query parameters"),
    Constant("redaction", "fastapi_lookout/redaction.py", "|authorization)", ")", "authorization query parameters"),
    Constant("redaction", "fastapi_lookout/redaction.py", '=)[^&;#\\s\\"\']*"', '=)[^&;\\s\\"\']*"', "a query value ends at #"),
    Constant("redaction", "fastapi_lookout/redaction.py", '=)[^&;#\\s\\"\']*"', '=)[^;#\\s\\"\']*"', "a query value ends at &"),
    Constant("redaction", "fastapi_lookout/redaction.py", '=)[^&;#\\s\\"\']*"', '=)[^&;#\\"\']*"', "a query value ends at whitespace"),
    Constant("redaction", "fastapi_lookout/redaction.py", '=)[^&;#\\s\\"\']*"', '=)[^&;#\\s]*"', "a query value ends at a quote"),
    Constant("redaction", "fastapi_lookout/redaction.py", '=)[^&;#\\s\\"\']*"', '=)[^&;#\\s\\"\']+"', "an empty query value"),
    Constant("redaction", "fastapi_lookout/redaction.py", "_MAX_DEPTH: Final = 8", "_MAX_DEPTH: Final = 7", "eight levels of nesting kept"),
    Constant("redaction", "fastapi_lookout/redaction.py", "_MAX_DEPTH: Final = 8", "_MAX_DEPTH: Final = 9", "nothing deeper than eight levels kept"),
    # config loader
    Constant("config loader", "dashboards/config/load.py", '_NAME = re.compile(r"^[A-Za-z0-9_][', '_NAME = re.compile(r"^[', "names start with a letter, digit or _"),
    Constant("config loader", "dashboards/config/load.py", '[A-Za-z0-9_.:-]*$")', '[A-Za-z0-9_.:-]*")', "names are whole-value matches"),
    Constant("config loader", "dashboards/config/load.py", '[A-Za-z0-9_.:-]*$")', '[A-Za-z0-9_.-]*$")', "names may hold ':'"),
    Constant("config loader", "dashboards/config/load.py", '[A-Za-z0-9_.:-]*$")', '[A-Za-z0-9_./:-]*$")', "names hold no '/'"),
    Constant("config loader", "dashboards/config/load.py", '_DURATION = re.compile(r"^(?:\\d+d)?', '_DURATION = re.compile(r"^', "durations in days"),
    Constant("config loader", "dashboards/config/load.py", '(?:\\d+s)?(?:\\d+ms)?$")', '(?:\\d+s)?$")', "durations in milliseconds"),
    Constant("config loader", "dashboards/config/load.py", '(?:\\d+s)?(?:\\d+ms)?$")', '(?:\\d+s)?(?:\\d+ms)?")', "durations are whole-value matches"),
    Constant("config loader", "dashboards/config/load.py", "(?:\\d+h)?(?:\\d+m)?", "(?:\\d+m)?(?:\\d+h)?", "duration units in order (1h30m, not 30m1h)"),
    Constant("config loader", "dashboards/config/load.py", '_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")', '_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")', "label names hold no '-'"),
    Constant("config loader", "dashboards/config/load.py", '_ENV_REFERENCE = re.compile(r"^\\$\\{[A-Za-z_][', '_ENV_REFERENCE = re.compile(r"^\\$\\{[', "a ${VARIABLE} name starts with a letter or _"),
    Constant("config loader", "dashboards/config/load.py", '[A-Za-z0-9_]*\\}$")', '[A-Za-z0-9_ ]*\\}$")', "a ${VARIABLE} name holds no space"),
    Constant("config loader", "dashboards/config/load.py", 'frozenset({"cluster", "job", "instance"})', 'frozenset({"job", "instance"})', "replica label must not be cluster"),
    Constant("config loader", "dashboards/config/load.py", 'frozenset({"cluster", "job", "instance"})', 'frozenset({"cluster", "instance"})', "replica label must not be job"),
    Constant("config loader", "dashboards/config/load.py", 'frozenset({"cluster", "job", "instance"})', 'frozenset({"cluster", "job"})', "replica label must not be instance"),
    Constant("config loader", "dashboards/config/load.py", '("example.org", "example.com", "example.net", "example-org")', '("example.com", "example.net", "example-org")', "example.org docs links refused"),
    Constant("config loader", "dashboards/config/load.py", '("example.org", "example.com", "example.net", "example-org")', '("example.org", "example.net", "example-org")', "example.com docs links refused"),
    Constant("config loader", "dashboards/config/load.py", '("example.org", "example.com", "example.net", "example-org")', '("example.org", "example.com", "example-org")', "example.net docs links refused"),
    Constant("config loader", "dashboards/config/load.py", '("example.org", "example.com", "example.net", "example-org")', '("example.org", "example.com", "example.net")', "example-org docs links refused"),
    Constant("config loader", "dashboards/config/load.py", '("datasources.*", _name),', "", "datasource uids are names"),
    Constant("config loader", "dashboards/config/load.py", 'r"[\\d.]+|[0-9a-fA-F:]+|localhost"', 'r"[\\d.]+|[0-9a-fA-F:]+|[\\w.]+"', "bind address is an IP"),
    Constant("config loader", "dashboards/config/load.py", '("stack.ports.*", _port),', "", "ports in 1..65535"),
    Constant("config loader", "dashboards/config/load.py", 'r"/[\\w./-]*"', 'r"/?[\\w./-]*"', "health path starts with /"),
    Constant("config loader", "dashboards/config/load.py", '("audit.host", _host_port),', "", "audit host is host:port"),
    Constant("config loader", "dashboards/config/load.py", '("endpoints.*", _url),', "", "endpoints are http(s) URLs"),
    Constant("config loader", "dashboards/config/load.py", '("prometheus.*_interval", _duration), ', "", "scrape intervals are durations"),
    Constant("config loader", "dashboards/config/load.py", '("prometheus.*_target", _host_port), ', "", "scrape targets are host:port"),
    Constant("config loader", "dashboards/config/load.py", '("prometheus.*_job", _name)', '("prometheus.*_jobs", _name)', "job names are names"),
    Constant("config loader", "dashboards/config/load.py", '("prometheus.remote_write_url", _url_or_empty), ', "", "remote_write URL may be empty"),
    Constant("config loader", "dashboards/config/load.py", '("prometheus.cluster", _name),', "", "cluster label is a name"),
    Constant("config loader", "dashboards/config/load.py", '("prometheus.replica_label", _replica_label), ', "", "replica label rule"),
    Constant("config loader", "dashboards/config/load.py", '("prometheus.replica", _replica_value),', "", "replica value rule"),
    Constant("config loader", "dashboards/config/load.py", '("alerting.group_*", _duration), ', "", "Alertmanager group timings are durations"),
    Constant("config loader", "dashboards/config/load.py", '("alerting.repeat_interval", _duration),', "", "repeat interval is a duration"),
    Constant("config loader", "dashboards/config/load.py", '("alerting.docs_base_url", _not_placeholder), ', "", "docs links not to placeholders"),
    Constant("config loader", "dashboards/config/load.py", '("alerting.pager_webhook_url", _url), ', "", "pager webhook is a URL"),
    Constant("config loader", "dashboards/config/load.py", '("alerting.*_ratio", _ratio), ', "", "alert ratios in (0, 1)"),
    Constant("config loader", "dashboards/config/load.py", '("alerting.keycloak_heap_*", _ratio), ', "", "heap thresholds in (0, 1)"),
    Constant("config loader", "dashboards/config/load.py", '("alerting.keycloak_gc_overhead", _ratio),', "", "GC overhead in (0, 1)"),
    Constant("config loader", "dashboards/config/load.py", '("alerting.*", _positive),', "", "alert thresholds greater than 0"),
    Constant("config loader", "dashboards/config/load.py", '("slo.latency_quantile", _ratio), ', "", "latency quantile in (0, 1)"),
    Constant("config loader", "dashboards/config/load.py", '("slo.availability", _ratio), ', "", "availability in (0, 1)"),
    Constant("config loader", "dashboards/config/load.py", '("slo.*", _positive),', "", "SLO numbers greater than 0"),
    Constant("config loader", "dashboards/config/load.py", '("stack.loki.retention_period", _duration), ', "", "Loki retention is a duration"),
    Constant("config loader", "dashboards/config/load.py", '("stack.loki.*_mb", _positive),', "", "Loki limits greater than 0"),
    Constant("config loader", "dashboards/config/load.py", '("stack.loki.max_label_names_per_series", _positive),', "", "label limit greater than 0"),
    Constant("config loader", "dashboards/config/load.py", '("panels.*", _non_negative),', "", "panel thresholds not negative"),
    # audit chain
    Constant("audit chain", "fastapi_lookout/audit/chain.py", 'ROW_VERSION: Final = "ua1"', 'ROW_VERSION: Final = "ua2"', "the row encoding's version is hashed"),
    Constant("audit chain", "fastapi_lookout/audit/chain.py", 'CHECKPOINT_VERSION: Final = "uc1"', 'CHECKPOINT_VERSION: Final = "uc2"', "the checkpoint encoding's version is signed"),
    Constant("audit chain", "fastapi_lookout/audit/chain.py", 'GENESIS: Final = "0" * 64', 'GENESIS: Final = "1" * 64', "prev_hash of seq 1"),
    Constant("audit chain", "fastapi_lookout/audit/chain.py", 'REORDER_WINDOW: Final = 64', 'REORDER_WINDOW: Final = 63', "the moved-or-edited search window"),
    Constant("audit chain", "fastapi_lookout/audit/chain.py", '    "error_message",\n', '', "every column is hashed"),
    Constant("audit chain", "fastapi_lookout/audit/chain.py", '    "user_id",\n    "username",', '    "username",\n    "user_id",', "the hashed field order"),
    # audit verifier
    Constant("audit verifier", "fastapi_lookout/audit/verifier.py", "PRUNE_LOCK_KEY: Final = 0x617564_7072", "PRUNE_LOCK_KEY: Final = 0x617564_7073", "one pruner at a time: every pruner takes the same advisory lock"),
    Constant("audit verifier", "fastapi_lookout/audit/verifier.py", "PRUNE_INTERVAL_SECONDS: Final = 3600.0", "PRUNE_INTERVAL_SECONDS: Final = 0.0", "the periodic task prunes hourly, not on every verification"),
    Constant("audit verifier", "fastapi_lookout/audit/verifier.py", "user_actions.c.prev_hash, user_actions.c.row_hash,", "user_actions.c.row_hash,", "the walk reads each row's chain columns"),
    Constant("audit verifier", "fastapi_lookout/audit/verifier.py", "*(user_actions.c[name] for name in FIELDS)", "*(user_actions.c[name] for name in FIELDS[:-1])", "the walk reads every hashed column"),
    Constant("audit verifier", "fastapi_lookout/audit/verifier.py", "ROW_COLUMNS: Final = (user_actions.c.id, ", "ROW_COLUMNS: Final = (", "findings name the row id"),
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
