"""Dashboard JSON checked against Grafana's dashboard schema, as the Grafana foundation SDK types it.

The SDK (PyPI ``grafana-foundation-sdk``) is generated from Grafana's own schema (the CUE dashboard kind and the
panel and datasource plugins' schemas). Its wheel carries no JSON schema files (they live in the SDK repository
under jsonschema/), but it carries the typed models, and they are enough to validate:

- round trip: the decoder keeps only the fields the schema has, so a key that does not come back from
  ``from_json`` -> ``to_json`` is not in the schema (defaults the encoder adds are fine);
- types: every decoded value is checked against the model's annotation (scalars, enum members, literals, nested
  objects, lists), panel ``options`` and ``fieldConfig.defaults.custom`` through the panel plugin's own model, and
  queries through the datasource plugin's model.

``problems`` returns one line per finding, ``$.panels[3].options.legend.displayMode: ...``.
"""

from __future__ import annotations

import enum
import json
import types
import typing
import warnings
from typing import Any

from grafana_foundation_sdk.cog import plugins, variants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery

with warnings.catch_warnings():
    # the v1 model warns "Prefer using dashboardv2.Dashboard instead" when defined; provisioned dashboards and the
    # classic API are v1, which is what we validate
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.models.dashboard import Dashboard

plugins.register_default_plugins()

__all__ = ["Dashboard", "problems", "round_trip"]


def round_trip(data: dict[str, Any]) -> dict[str, Any]:
    """The dashboard as the SDK decodes and re-encodes it."""
    return json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))


def dropped(original: Any, back: Any, path: str = "$") -> list[tuple[str, Any]]:
    """Keys of ``original`` the round trip lost, with their values; list items are paired by position."""
    out: list[tuple[str, Any]] = []
    if isinstance(original, dict) and isinstance(back, dict):
        for key, value in original.items():
            if key not in back:
                out.append((f"{path}.{key}", value))
            else:
                out += dropped(value, back[key], f"{path}.{key}")
    elif isinstance(original, list) and isinstance(back, list):
        for i, (a, b) in enumerate(zip(original, back, strict=False)):
            out += dropped(a, b, f"{path}[{i}]")
    return out


def changed(original: Any, back: Any, path: str = "$") -> list[str]:
    """Values the round trip altered (a key it kept with another value or type)."""
    if isinstance(original, dict) and isinstance(back, dict):
        return [p for k in original if k in back for p in changed(original[k], back[k], f"{path}.{k}")]
    if isinstance(original, list) and isinstance(back, list):
        if len(original) != len(back):
            return [f"{path}: {len(original)} items came back as {len(back)}"]
        return [p for i, (a, b) in enumerate(zip(original, back, strict=True)) for p in changed(a, b, f"{path}[{i}]")]
    if original != back or type(original) is not type(back):
        return [f"{path}: {original!r} came back as {back!r}"]
    return []


def _check(value: Any, hint: Any, path: str, out: list[str]) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any or hint is object:
        # panel options and custom field config are typed `object` on Panel; the panel plugin's decoder gave them
        # their own model (timeseries.Options, ...), which is checked like any other
        if hasattr(value, "to_json"):
            _check_model(value, path, out)
        return
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return
        attempts = []
        for option in (a for a in args if a is not type(None)):
            found: list[str] = []
            _check(value, option, path, found)
            if not found:
                return
            attempts.append(found)
        out.extend(min(attempts, key=len))
        return
    if origin is typing.Literal:
        if value not in args:
            out.append(f"{path}: {value!r} is none of {list(args)}")
        return
    if origin is list:
        if not isinstance(value, list):
            out.append(f"{path}: a list expected, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _check(item, args[0], f"{path}[{i}]", out)
        return
    if origin is dict:
        if not isinstance(value, dict):
            out.append(f"{path}: an object expected, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check(item, args[1], f"{path}.{key}", out)
        return
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if not isinstance(value, hint) and value not in {m.value for m in hint}:
            out.append(f"{path}: {value!r} is not a {hint.__name__} ({sorted(str(m.value) for m in hint)})")
        return
    if hint is bool:
        if not isinstance(value, bool):
            out.append(f"{path}: a boolean expected, got {value!r}")
        return
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float) if hint is float else int):
            out.append(f"{path}: {'a number' if hint is float else 'an integer'} expected, got {value!r}")
        return
    if hint is str:
        if not isinstance(value, str):
            out.append(f"{path}: a string expected, got {value!r}")
        return
    if isinstance(hint, type) and issubclass(hint, variants.Dataquery) and isinstance(value, UnknownDataquery):
        out.append(f"{path}: a query of a datasource type the SDK has no model for")
        return
    if isinstance(hint, type) and isinstance(value, dict) and hasattr(hint, "from_json"):
        # a nested object the generated decoder copied raw (panel `links`): decode it with its model, as Grafana's
        # schema types it, and check it the same way
        decoded = hint.from_json(value)
        back = json.loads(json.dumps(decoded, cls=JSONEncoder))
        out += [f"{p}: not in the schema" for p, _ in dropped(value, back, path)]
        _check_model(decoded, path, out)
        return
    if isinstance(hint, type):
        if not isinstance(value, hint):
            out.append(f"{path}: a {hint.__name__} expected, got {type(value).__name__}")
            return
        _check_model(value, path, out)
        return
    out.append(f"{path}: no check for the annotation {hint!r}")


def _check_model(obj: Any, path: str, out: list[str]) -> None:
    if isinstance(obj, UnknownDataquery):
        return
    for name, hint in typing.get_type_hints(type(obj)).items():
        value = getattr(obj, name, None)
        if value is not None:
            _check(value, hint, f"{path}.{name}", out)


def problems(data: dict[str, Any]) -> list[str]:
    """Every key of ``data`` Grafana's schema does not have, every value of the wrong type (empty: valid)."""
    out = [f"{p}: null, which decodes as absent" if v is None else f"{p}: not in the schema ({json.dumps(v)[:60]})"
           for p, v in dropped(data, round_trip(data))]
    out += changed(data, round_trip(data))
    _check_model(Dashboard.from_json(data), "$", out)
    return out
