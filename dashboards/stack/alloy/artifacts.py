"""Registers ``alloy/config.alloy`` and the validator that parses the rendered text back and checks it."""

from __future__ import annotations

from ...catalogs.logs import LOG_FIELDS
from ...config import Config
from ...registry import REGISTRY
from ...validate import alloy as check
from ...validate import alloy_parse as parse
from . import pipeline, syntax

PATH = "alloy/config.alloy"


@REGISTRY.artifact("alloy-config", PATH)
def config_alloy(cfg: Config) -> bytes:
    return syntax.render(pipeline.pipeline(cfg)).encode()


def problems(text: str, model: syntax.Document | None = None) -> list[str]:
    """What is wrong with the Alloy text as deployed (parse, references, labels, extraction)."""
    try:
        doc = parse.parse(text)
    except parse.AlloyParseError as exc:
        return [f"{PATH}: does not parse: {exc}"]
    found = [f"{PATH}: {p}" for p in check.check(doc, LOG_FIELDS)]
    if model is not None and doc.body != model.body:
        found.append(f"{PATH}: the rendered text does not parse back to the model (renderer bug)")
    labels = set(check.stream_labels(doc))
    if labels != pipeline.STREAM_LABELS:
        found.append(f"{PATH}: sets stream labels {sorted(labels)}, but STREAM_LABELS (what LogQL may select on) "
                     f"is {sorted(pipeline.STREAM_LABELS)}")
    return found


@REGISTRY.validator("alloy-config")
def check_alloy(cfg: Config) -> list[str]:
    model = pipeline.pipeline(cfg)
    return problems(syntax.render(model), model)
