"""Template variables: datasource, query, custom and textbox, emitted as current Grafana writes them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import attr
from grafanalib import core

from ..config import Config, DsType
from .house import DATASOURCE_VARIABLES, Datasource, provisioned_uid

ALL_VALUES = ".+"
"""``allValue`` of instance (grafana/dashboard-linter's template rules): any instance of the selected jobs."""
_REGEX_META = re.compile(r"[.^$*+?()\[\]{}|\\]")
_JOB_MATCHER = re.compile(r'^\s*job\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


def job_all_value(selector: str) -> str:
    """The ``allValue`` of the job variable: the jobs the config's selector admits, not ``.+``.

    grafana/dashboard-linter asks for ``.+``, which in a Prometheus shared by several services selects every
    job exporting the same names (another FastAPI service, another Keycloak) and mixes them into the panels.
    ``job="shop"`` gives ``shop``, ``job=~"shop-.*"`` its regex; any other selector falls back to ``.+``.
    Grafana pastes the value inside a PromQL double-quoted string, where a regex's backslash is doubled:
    ``job="shop.eu"`` gives ``shop\\\\.eu``.
    """
    match = _JOB_MATCHER.match(selector)
    if match is None:
        return ALL_VALUES
    return _REGEX_META.sub(r"\\\\\g<0>", match.group(2)) if match.group(1) == "=" else match.group(2)


@attr.s
class Variable(core.Template):
    """A template variable with a datasource reference and Grafana's standard All."""

    ds: Datasource | None = attr.ib(default=None)

    def to_json_data(self) -> dict[str, Any]:
        if self.type in ("textbox", "datasource"):
            current = {"text": self.default or "", "value": self.default or ""}
        elif self.includeAll:
            current = {"text": ["All"], "value": ["$__all"]} if self.multi else {"text": "All", "value": "$__all"}
        else:
            current = {}
        out: dict[str, Any] = {
            "current": current,
            "hide": self.hide,
            "label": self.label,
            "name": self.name,
            "options": self.options,
            "query": self.query,
            "type": self.type,
        }
        if self.type == "datasource":
            out |= {"refresh": 1, "regex": ""}
        if self.type == "query":
            out |= {"datasource": self.ds.ref() if self.ds else None, "definition": self.query,
                    "refresh": 2, "regex": self.regex or "", "sort": 1}
        if self.type in ("query", "custom"):
            out |= {"includeAll": self.includeAll, "multi": self.multi}
            if self.allValue is not None:
                out["allValue"] = self.allValue
        return out


def query_variable(name: str, label: str, ds: Datasource, query: str, *, multi: bool = True,
                   include_all: bool = True, all_value: str | None = None) -> Variable:
    """Refreshed on time-range change so options match what the panels can show."""
    return Variable(name=name, label=label, query=query, ds=ds, multi=multi, includeAll=include_all,
                    allValue=all_value)


def job_and_instance(ds: Datasource, job_query: str, instance_query: str, selector: str) -> list[Variable]:
    """Any of the jobs the config's ``selector`` admits, any of their instances (multi-select with All)."""
    return [
        query_variable("job", "Job", ds, job_query, all_value=job_all_value(selector)),
        query_variable("instance", "Instance", ds, instance_query, all_value=ALL_VALUES),
    ]


def datasources(cfg: Config, kinds: Sequence[DsType]) -> list[Variable]:
    """One datasource variable per type, defaulting to the provisioned uid: pick another datasource of the
    type in an existing Grafana and every panel and query variable follows."""
    return [Variable(name=DATASOURCE_VARIABLES[kind][0], label=DATASOURCE_VARIABLES[kind][1], query=str(kind),
                     type="datasource", default=provisioned_uid(cfg, kind)) for kind in kinds]


def textbox(name: str, label: str, default: str = "") -> Variable:
    return Variable(name=name, label=label, query=default, default=default, type="textbox")


def custom_variable(name: str, label: str, values: Sequence[str], *, all_value: str | None = None) -> Variable:
    options = [{"selected": False, "text": v, "value": v} for v in values]
    return Variable(name=name, label=label, query=",".join(values), type="custom", multi=True, includeAll=True,
                    allValue=all_value, options=options)
