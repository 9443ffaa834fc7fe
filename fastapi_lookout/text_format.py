"""The small parts of both exposition formats (text 0.0.4 and OpenMetrics 1.0), as prometheus-client writes them.

Only prometheus-client's public types are used (``Metric``, ``Sample``, ``Exemplar``,
``floatToGoString``); escaping is written here, for the names every prometheus-client version in
the supported range writes unchanged (``PLAIN_NAME``). ``RenderedFamily`` is the one seam through
which the fast paths (the request series, the multiprocess files) hand over text they keep
between scrapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

PLAIN_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
"""Metric and label names written unchanged by every encoder and escaping scheme (no colons:
newer OpenMetrics encoders rewrite them); other families go to prometheus-client's encoder."""


def label_value(value: str) -> str:
    """A label value (or an OpenMetrics help text) escaped as both formats want it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def text_help(documentation: str) -> str:
    """A help text in the text format (quotes stay)."""
    return documentation.replace("\\", r"\\").replace("\n", r"\n")


def series_prefix(name: str, labels: dict[str, str]) -> str:
    """``name{a="x",b="y"}``: labels sorted by name, as both encoders write them."""
    if not labels:
        return name
    return name + "{" + ",".join([f'{k}="{label_value(v)}"' for k, v in sorted(labels.items())]) + "}"


def go_float(value: float) -> str:
    """``floatToGoString(value)``; whole numbers below a million (most counts) without its work."""
    if 0.0 <= value < 1e6:
        whole = int(value)
        if whole == value and (whole or str(value)[0] != "-"):
            return f"{whole}.0"
    return floatToGoString(value)


def count_text(count: int) -> str:
    """``floatToGoString(float(count))`` of a non-negative ``int``."""
    return f"{count}.0" if count < 1_000_000 else floatToGoString(count)


def exemplar_text(exemplar: Exemplar) -> str:
    """`` # {labels} value [timestamp]``, what follows an OpenMetrics sample that carries an exemplar."""
    labels = ",".join(f'{k}="{label_value(v)}"' for k, v in sorted(exemplar.labels.items()))
    if exemplar.timestamp is None:
        return f" # {{{labels}}} {floatToGoString(exemplar.value)}"
    return f" # {{{labels}}} {floatToGoString(exemplar.value)} {exemplar.timestamp}"


class RenderedFamily(Metric):
    """A family that writes its own sample lines: ``lines(openmetrics)`` yields them, encoded, reusing
    what did not change since the last scrape. ``samples`` are built only when someone else reads them
    (prometheus-client's encoders, a parser in a test), and say what the lines say."""

    def __init__(self, name: str, documentation: str, typ: str, lines: Callable[[bool], Iterable[bytes]],
                 samples: Callable[[], list[Sample]]) -> None:
        self._lines, self._make_samples = lines, samples
        self._built: list[Sample] | None = None
        super().__init__(name, documentation, typ)

    @property  # type: ignore[override]
    def samples(self) -> list[Sample]:
        if self._built is None:
            self._built = self._make_samples()
        return self._built

    @samples.setter
    def samples(self, value: list[Sample]) -> None:  # Metric.__init__ sets []: built on first read instead
        self._built = value or None

    def lines(self, openmetrics: bool) -> Iterable[bytes]:
        """The family's sample lines (no header), UTF-8, in pieces."""
        return self._lines(openmetrics)
