"""The registry of generated artifacts: name -> path -> bytes, plus checks that gate writing them.

Another generator (Prometheus rules, Alloy, Loki) registers its own artifacts
and validators in its module and is listed once in ``dashboards.build.GENERATORS``;
the CLI never changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .config import Config

Render = Callable[[Config], bytes]
Validator = Callable[[Config], list[str]]
"""Returns problems, each naming what is wrong and where; empty means fine."""


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    path: PurePosixPath
    """Relative to the output root (the repository by default)."""
    render: Render
    feature: str | tuple[str, ...] | None = None
    """Rendered only while this feature (a field of ``config.Features``), or any of these, is on."""
    when: Callable[[Config], bool] | None = None
    """Rendered only when this holds (e.g. only for the reference service)."""

    def wanted(self, cfg: Config) -> bool:
        return cfg.enabled(self.feature) and (self.when is None or self.when(cfg))


@dataclass
class Registry:
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    validators: dict[str, Validator] = field(default_factory=dict)

    def artifact(self, name: str, path: str, *, feature: str | tuple[str, ...] | None = None,
                 when: Callable[[Config], bool] | None = None) -> Callable[[Render], Render]:
        """Decorator: ``@REGISTRY.artifact("grafana-datasources", "grafana/provisioning/...")``."""

        def register(render: Render) -> Render:
            self.add(Artifact(name, PurePosixPath(path), render, feature, when))
            return render

        return register

    def add(self, artifact: Artifact) -> None:
        if artifact.name in self.artifacts:
            raise ValueError(f"artifact {artifact.name!r} registered twice")
        if any(a.path == artifact.path for a in self.artifacts.values()):
            raise ValueError(f"two artifacts write {artifact.path}")
        self.artifacts[artifact.name] = artifact

    def validator(self, name: str) -> Callable[[Validator], Validator]:
        def register(check: Validator) -> Validator:
            if name in self.validators:
                raise ValueError(f"validator {name!r} registered twice")
            self.validators[name] = check
            return check

        return register


REGISTRY = Registry()
