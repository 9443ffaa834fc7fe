"""SQL of the ``audit-logs`` dashboard, over the app's ``user_actions`` table, and PromQL of its chain-status row.

Every SQL panel applies every variable, and variables reach SQL only through
Grafana's ``${var:sqlstring}`` formatting (each value single-quoted, quotes
doubled) inside ``IN (...)``: a username like ``x'); DROP TABLE ...`` stays a
string literal. Column names are checked against ``fastapi_lookout.audit.schema.user_actions``.

The chain status comes from Prometheus, not SQL: the verifier's result is a
metric of the app, and Grafana's reader may read ``user_actions`` and nothing
else (not the chain head or checkpoints). Those queries select the app's job
through the config's selector: this dashboard has no ``$job`` variable, and
the username/action/outcome variables do not apply to the chain as a whole.
"""

from __future__ import annotations

from fastapi_lookout import metrics as m
from fastapi_lookout.audit.schema import OUTCOMES, user_actions

from ..catalogs.app import series_name as s
from ..config import Config
from . import RATE, Scope, aggregate, increase

SUCCESS, ERROR, PERMISSION_DENIED = OUTCOMES  # fails loudly if the outcome set changes
ANONYMOUS = "(anonymous)"
"""How rows without a username (401s, anonymous calls) appear in the username variable and panels."""
VARIABLES = ("username", "action_type", "outcome")


def col(name: str) -> str:
    """A quoted column of ``user_actions``; an unknown name fails when the query is built."""
    if name not in user_actions.c:
        raise LookupError(f"user_actions has no column {name!r}")
    return f'"{name}"'


TABLE = user_actions.name
TS = col("timestamp")
USER = f"COALESCE({col('username')}, '{ANONYMOUS}')"


def where(cfg: Config, *extra: str) -> str:
    """Time range plus every dashboard variable; used by every panel."""
    clauses = (
        f"$__timeFilter({TS})",
        f"{USER} IN (${{username:sqlstring}})",
        f"{col('action_type')} IN (${{action_type:sqlstring}})",
        f"{col('outcome')} IN (${{outcome:sqlstring}})",
        *extra,
    )
    return "WHERE " + "\n  AND ".join(clauses)


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


# --- variables -------------------------------------------------------------------------
def username_values(cfg: Config) -> str:
    """Users active in the time range (unbounded over all time); never empty thanks to the anonymous entry."""
    return (f"SELECT DISTINCT {USER} AS username FROM {TABLE} WHERE $__timeFilter({TS})\n"
            f"UNION SELECT '{ANONYMOUS}'\nORDER BY 1")


def action_type_values(cfg: Config) -> str:
    """All action types ever recorded: a bounded set (one per route), so no time filter."""
    return f"SELECT DISTINCT {col('action_type')} FROM {TABLE} ORDER BY 1"


def outcome_values(cfg: Config) -> str:
    """The contract's outcomes, plus any other value found, so the list is never empty."""
    return (f"SELECT {col('outcome')} FROM {TABLE} UNION SELECT unnest(ARRAY[{_quoted(OUTCOMES)}]) ORDER BY 1")


# --- panels ------------------------------------------------------------------------------
def events_by_outcome(cfg: Config) -> str:
    return (f"SELECT $__timeGroupAlias({TS}, $__interval), {col('outcome')} AS metric, count(*) AS value\n"
            f"FROM {TABLE}\n{where(cfg)}\nGROUP BY 1, 2\nORDER BY 1")


def total_events(cfg: Config) -> str:
    return f'SELECT count(*) AS "events" FROM {TABLE}\n{where(cfg)}'


def outcome_count(cfg: Config, outcome: str) -> str:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    only = f"{col('outcome')} = '{outcome}'"
    return f'SELECT count(*) AS "{outcome}" FROM {TABLE}\n{where(cfg, only)}'


def distinct_users(cfg: Config) -> str:
    return f'SELECT count(DISTINCT {USER}) AS "users" FROM {TABLE}\n{where(cfg)}'


def actions_by_type(cfg: Config) -> str:
    return (f'SELECT {col("action_type")}, count(*) AS "actions" FROM {TABLE}\n{where(cfg)}\n'
            "GROUP BY 1\nORDER BY 2 DESC, 1\nLIMIT 20")


def top_users(cfg: Config) -> str:
    return (f'SELECT {USER} AS "username", count(*) AS "actions" FROM {TABLE}\n{where(cfg)}\n'
            "GROUP BY 1\nORDER BY 2 DESC, 1\nLIMIT 15")


_EVENT_COLUMNS = (f'{TS} AS "time", {USER} AS "username", {col("action_type")}, {col("resource")}, '
                  f'{col("outcome")}, {col("response_status")}, {col("duration_ms")}, {col("ip_address")}, '
                  f'{col("request_id")}, {col("error_message")}')


def recent_events(cfg: Config) -> str:
    return f"SELECT {_EVENT_COLUMNS}\nFROM {TABLE}\n{where(cfg)}\nORDER BY {TS} DESC\nLIMIT 100"


def failed_actions(cfg: Config) -> str:
    failed = f"{col('outcome')} IN ({_quoted((ERROR, PERMISSION_DENIED))})"
    return f"SELECT {_EVENT_COLUMNS}\nFROM {TABLE}\n{where(cfg, failed)}\nORDER BY {TS} DESC\nLIMIT 50"


def avg_duration_by_action(cfg: Config) -> str:
    return (f'SELECT {col("action_type")}, avg({col("duration_ms")}) AS "avg duration" FROM {TABLE}\n'
            f"{where(cfg)}\nGROUP BY 1\nORDER BY 2 DESC, 1\nLIMIT 20")


# --- chain status (PromQL) -------------------------------------------------------------------
def chain_scope(cfg: Config) -> Scope:
    """The audit dashboard has no ``$job`` variable: its chain panels select the app's job from the config
    (``fastapi-metrics`` passes its ``$job``/``$instance`` scope instead, and rules their own)."""
    return Scope((cfg.app_selector,), RATE)


def chain_written_seq(cfg: Config, scope: Scope | None = None) -> str:
    """Highest seq written: the chain head, as the writers and the verifier saw it."""
    return aggregate(scope or chain_scope(cfg), "max", s(m.AUDIT_CHAIN_HEAD_SEQ))


def chain_verified_seq(cfg: Config, scope: Scope | None = None) -> str:
    return aggregate(scope or chain_scope(cfg), "max", s(m.AUDIT_CHAIN_VERIFIED_SEQ))


def chain_unverified_rows(cfg: Config, scope: Scope | None = None) -> str:
    return f"{chain_written_seq(cfg, scope)} - {chain_verified_seq(cfg, scope)}"


def chain_broken(cfg: Config, scope: Scope | None = None) -> str:
    return aggregate(scope or chain_scope(cfg), "max", s(m.AUDIT_CHAIN_BROKEN))


def chain_last_verification_age(cfg: Config, scope: Scope | None = None) -> str:
    scope = scope or chain_scope(cfg)
    if scope.panel:
        return f"time() - {aggregate(scope, 'max', s(m.AUDIT_CHAIN_LAST_VERIFICATION))}"
    return f"time() - {s(m.AUDIT_CHAIN_LAST_VERIFICATION)}{scope.sel()}"


def chain_failed_verifications(cfg: Config, scope: Scope | None = None) -> str:
    """Runs that found tampering (broken) or could not read the database (error), per interval."""
    return increase(scope or chain_scope(cfg), s(m.AUDIT_CHAIN_VERIFICATIONS), 'result=~"broken|error"',
                    by=("result",))
