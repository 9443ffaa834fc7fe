"""The typed rule model: recording rules, alerts, their promtool cases, and how each is written out.

An alert is defined once with its cases (input series, expected alerts); the
rule file and its ``promtool test rules`` file are both rendered from that
definition, so a rule cannot ship without the cases that prove it fires and
stays silent. Expected annotations are rendered here from the same templates
Prometheus renders, which is why annotation templates may only use
``{{ $labels.<name> }}`` and ``{{ $value }}`` (optionally piped through one
``humanize*`` function whose output the case states).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

SEVERITIES: Final = ("critical", "warning")
"""critical pages (Alertmanager's pager receiver); warning opens a ticket."""
TEST_INTERVAL: Final = "1m"
"""Scrape interval of every promtool input series and the tests' evaluation interval."""

_PLACEHOLDER = re.compile(r"\{\{\s*(?:\$labels\.(?P<label>[A-Za-z_]\w*)|\$value(?:\s*\|\s*(?P<fn>\w+))?)\s*\}\}")
_BARE_NAME = re.compile(r"^[A-Za-z_:][\w:]*$")
_ANY_TEMPLATE = re.compile(r"\{\{.*?\}\}")
_DURATION_UNITS: Final = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
VALUE_FUNCTIONS: Final = frozenset({"humanize", "humanizePercentage", "humanizeDuration"})


# --- durations ------------------------------------------------------------------
def parse_duration(text: str) -> timedelta:
    """A Prometheus duration in d/h/m/s units (``1d2h``, ``4m40s``); ``ValueError`` otherwise."""
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration in d/h/m/s units (e.g. 5m, 1h30m)")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest Prometheus duration for whole seconds: 90 min -> ``1h30m``, 0 -> ``0s``."""
    total = delta.total_seconds()
    if total < 0 or total != int(total):
        raise ValueError(f"{delta} is not a non-negative whole number of seconds")
    rest, out = int(total), ""
    for unit, size in _DURATION_UNITS:
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out or "0s"


# --- rules ----------------------------------------------------------------------
@dataclass(frozen=True)
class Recording:
    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            out["labels"] = dict(self.labels)
        return out


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: str
    summary: str
    description: str
    for_: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Static labels besides ``severity`` (they tell apart rules sharing one alert name)."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    """Extra annotations; ``runbook``/``runbook_url`` are added by :func:`with_runbooks`, never by hand: the
    runbook is its observable's (``dashboards.observables``)."""

    def all_labels(self) -> dict[str, str]:
        return {"severity": self.severity, **self.labels}

    def all_annotations(self) -> dict[str, str]:
        return {"summary": self.summary, "description": self.description, **self.annotations}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_:
            out["for"] = self.for_
        out["labels"] = self.all_labels()
        out["annotations"] = self.all_annotations()
        return out


Rule = Recording | Alert


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Rule, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rules": [r.to_dict() for r in self.rules]}


# --- promtool cases ---------------------------------------------------------------
@dataclass(frozen=True)
class Series:
    """One promtool input series: a selector and values in expanding notation (``0+10x60``)."""

    series: str
    values: str


def series(name: str, labels: Mapping[str, str], values: str) -> Series:
    body = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return Series(f"{name}{{{body}}}", values)


@dataclass(frozen=True)
class Fired:
    """One alert expected to be firing: every label but ``alertname``, and what ``$value`` renders as."""

    labels: Mapping[str, str]
    value: str = ""


@dataclass(frozen=True)
class Case:
    """At ``eval_time`` the alert ``alert`` is firing exactly as ``fired`` says (nothing, when empty)."""

    alert: str
    name: str
    series: tuple[Series, ...]
    eval_time: str
    fired: tuple[Fired, ...] = ()

    @property
    def fires(self) -> bool:
        return bool(self.fired)


@dataclass(frozen=True)
class ExprCase:
    """A ``promql_expr_test``: ``expr`` evaluates to exactly ``samples`` (labels -> value; a bare series
    name as ``expr`` keeps its ``__name__``, which the rendered test adds)."""

    name: str
    series: tuple[Series, ...]
    expr: str
    eval_time: str
    samples: Mapping[str, float]


@dataclass(frozen=True)
class RuleFile:
    stem: str
    """``prometheus/rules/<stem>.yml`` and ``prometheus/tests/<stem>.yml``."""
    groups: tuple[Group, ...]
    cases: tuple[Case, ...] = ()
    expr_cases: tuple[ExprCase, ...] = ()

    def alerts(self) -> list[Alert]:
        return [r for g in self.groups for r in g.rules if isinstance(r, Alert)]

    def recordings(self) -> list[Recording]:
        return [r for g in self.groups for r in g.rules if isinstance(r, Recording)]

    def rules_dict(self) -> dict[str, Any]:
        return {"groups": [g.to_dict() for g in self.groups]}


# --- cross-cutting passes -----------------------------------------------------------
def runbook_anchor(alert: str) -> str:
    return alert.lower()


@dataclass(frozen=True)
class RunbookRef:
    """Where an alert's runbook lives, and its first lines (carried by the alert, useful offline)."""

    url: str
    first_lines: str


def with_runbooks(files: Iterable[RuleFile], runbooks: Mapping[str, RunbookRef]) -> tuple[RuleFile, ...]:
    """Every alert gets ``runbook_url`` and a ``runbook`` annotation (kubernetes-mixin's one pass over all rules);
    an alert without a runbook is left without, for the rule check to name."""

    def link(rule: Rule) -> Rule:
        ref = runbooks.get(rule.name) if isinstance(rule, Alert) else None
        if ref is None:
            return rule
        annotations = {**rule.annotations, "runbook": ref.first_lines, "runbook_url": ref.url}
        return dataclasses.replace(rule, annotations=annotations)

    return tuple(
        dataclasses.replace(f, groups=tuple(dataclasses.replace(g, rules=tuple(link(r) for r in g.rules))
                                            for g in f.groups))
        for f in files
    )


# --- promtool test files --------------------------------------------------------------
def template_problems(text: str) -> list[str]:
    """Template actions the expected-annotation renderer cannot reproduce."""
    problems = []
    for action in _ANY_TEMPLATE.findall(text):
        match = _PLACEHOLDER.fullmatch(action)
        if match is None:
            problems.append(f"template {action!r} is not {{{{ $labels.<name> }}}} or {{{{ $value [| fn] }}}}")
        elif match.group("fn") and match.group("fn") not in VALUE_FUNCTIONS:
            problems.append(f"template {action!r}: only {', '.join(sorted(VALUE_FUNCTIONS))} may format $value")
    return problems


def render_template(text: str, labels: Mapping[str, str], value: str) -> str:
    """What Prometheus renders for ``text``, given the alert's labels and the case's rendered value."""

    def sub(match: re.Match[str]) -> str:
        if match.group("label"):
            return labels.get(match.group("label"), "<no value>")
        if not value:
            raise ValueError(f"template {match.group(0)!r} needs the case to state the rendered value")
        return value

    return _PLACEHOLDER.sub(sub, text)


def rule_for(alerts: Sequence[Alert], name: str, labels: Mapping[str, str]) -> Alert:
    """The rule named ``name`` whose static labels the expected alert carries (several rules may match when
    they only differ by expression, e.g. one TargetDown per job: then their annotations must agree)."""
    matches = [a for a in alerts if a.name == name and a.all_labels().items() <= labels.items()]
    if len({tuple(sorted(a.all_annotations().items())) for a in matches}) != 1:
        raise ValueError(f"expected alert {name} {dict(labels)} matches {len(matches)} rules, not 1")
    return matches[0]


def tests_dict(rule_file: RuleFile, rule_paths: Sequence[str]) -> dict[str, Any]:
    """``promtool test rules`` input for one rule file's cases (every rule file is loaded: rules may
    read recordings of another file)."""
    alerts = rule_file.alerts()
    tests: list[dict[str, Any]] = []
    for case in rule_file.cases:
        exp = []
        for fired in case.fired:
            rule = rule_for(alerts, case.alert, fired.labels)
            exp.append({
                "exp_labels": dict(fired.labels),
                "exp_annotations": {k: render_template(v, fired.labels, fired.value)
                                    for k, v in rule.all_annotations().items()},
            })
        tests.append({
            "name": f"{case.alert}: {case.name}",
            "interval": TEST_INTERVAL,
            "input_series": [{"series": s.series, "values": s.values} for s in case.series],
            "alert_rule_test": [{"eval_time": case.eval_time, "alertname": case.alert, "exp_alerts": exp}],
        })
    for expr_case in rule_file.expr_cases:
        tests.append({
            "name": expr_case.name,
            "interval": TEST_INTERVAL,
            "input_series": [{"series": s.series, "values": s.values} for s in expr_case.series],
            "promql_expr_test": [{
                "expr": expr_case.expr,
                "eval_time": expr_case.eval_time,
                "exp_samples": [{"labels": f"{expr_case.expr}{k}" if _BARE_NAME.match(expr_case.expr) else k,
                                 "value": v} for k, v in expr_case.samples.items()],
            }],
        })
    return {"rule_files": list(rule_paths), "evaluation_interval": TEST_INTERVAL, "tests": tests}
