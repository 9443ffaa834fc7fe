"""The ``/metrics`` endpoint as a bare ASGI callable (no routing, auth, rate limit or audit), and its encoders.

Content negotiation is prometheus-client's (``choose_encoder``): OpenMetrics (with exemplars) when the
scraper asks for it, as Prometheus does, text format 0.0.4 otherwise. ``encode_text`` and
``encode_openmetrics`` write what prometheus-client's encoders write, byte for byte (tests hold them
equal at both ends of the supported prometheus-client range), using only its public types; a family
they do not cover (names outside the legacy character set, native histograms) is written by
prometheus-client's own encoder.

A scrape at tens of thousands of series must not stall requests. Two things see to that:

- ``RenderedFamily`` (``text_format``): a family that writes its own lines and keeps the text of every series that did
  not change since the last scrape (the request series, the multiprocess files);
- the body is built in steps, and the event loop gets control back every ``SLICE_SECONDS`` (1 ms).

In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) the workers' files are merged by
``multiprocess_files.SharedFiles``, which rereads only what changed, so counts from all workers add up;
one exporter process per directory does it for every worker (``multiprocess_exporter``), and a worker
does it itself only when no exporter answers.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from starlette.types import Receive, Scope, Send

from fastapi_lookout.multiprocess_exporter import ExporterClient
from fastapi_lookout.multiprocess_files import SharedFiles
from fastapi_lookout.text_format import (
    PLAIN_NAME,
    RenderedFamily,
    exemplar_text,
    go_float,
    label_value,
    series_prefix,
    text_help,
)

SLICE_SECONDS = 0.001
"""Longest stretch a scrape keeps the event loop before letting requests run. The loop runs the
scrape's next step before callbacks that became ready meanwhile, so a request may wait two."""

class _NotPlain(Exception):
    """A family this module does not write itself."""


class _Prefixes:
    """``name{a="x",b="y"}`` of a series, rendered once: label sets are bounded, and escaping every label
    on every scrape was most of a scrape's time. Both formats write a plain series' prefix alike."""

    MAX = 50_000

    def __init__(self) -> None:
        self._cache: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def __call__(self, name: str, labels: dict[str, str]) -> str:
        key = (name, tuple(labels.items()))
        prefix = self._cache.get(key)
        if prefix is None:
            if not PLAIN_NAME.match(name) or not all(PLAIN_NAME.match(k) for k in labels):
                raise _NotPlain(name)
            prefix = series_prefix(name, labels)
            if len(self._cache) >= self.MAX:
                self._cache.clear()
            self._cache[key] = prefix
        return prefix


_prefix = _Prefixes()


# -- the encoders ----------------------------------------------------------------------------------------
_TEXT_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}
_TEXT_APART = ("_created", "_gsum", "_gcount")  # written as gauges after the family in text format


def _text_header(metric: Metric) -> str:
    name = metric.name + ("_total" if metric.type == "counter" else "_info" if metric.type == "info" else "")
    kind = _TEXT_TYPES.get(metric.type, metric.type)
    return f"# HELP {name} {text_help(metric.documentation)}\n# TYPE {name} {kind}\n"


def _openmetrics_header(metric: Metric) -> str:
    header = f"# HELP {metric.name} {label_value(metric.documentation)}\n# TYPE {metric.name} {metric.type}\n"
    return header + (f"# UNIT {metric.name} {metric.unit}\n" if metric.unit else "")


def _text_family(metric: Metric) -> str:
    lines, apart = [_text_header(metric)], {}
    for s in metric.samples:
        if getattr(s, "native_histogram", None):
            raise _NotPlain(metric.name)
        timestamp = "" if s.timestamp is None else f" {int(float(s.timestamp) * 1000):d}"
        line = f"{_prefix(s.name, s.labels)} {go_float(s.value)}{timestamp}\n"
        for suffix in _TEXT_APART:
            if s.name == metric.name + suffix:
                apart.setdefault(suffix, []).append(line)
                break
        else:
            lines.append(line)
    for suffix, extra in sorted(apart.items()):
        help_ = text_help(metric.documentation)
        lines.append(f"# HELP {metric.name}{suffix} {help_}\n# TYPE {metric.name}{suffix} gauge\n")
        lines.extend(extra)
    return "".join(lines)


def _exemplar_allowed(metric: Metric, sample: Sample) -> bool:
    if metric.type == "counter":
        return sample.name.endswith("_total")
    return metric.type in ("histogram", "gaugehistogram") and sample.name.endswith("_bucket")


def _openmetrics_family(metric: Metric) -> str:
    lines = [_openmetrics_header(metric)]
    for s in metric.samples:
        if getattr(s, "native_histogram", None):
            raise _NotPlain(metric.name)
        value = "" if s.value is None else go_float(s.value)
        timestamp = "" if s.timestamp is None else f" {s.timestamp}"
        exemplar = ""
        if s.exemplar:
            if not _exemplar_allowed(metric, s):
                raise ValueError(f"Metric {metric.name} has exemplars, but is not a histogram bucket or counter")
            exemplar = exemplar_text(s.exemplar)
        lines.append(f"{_prefix(s.name, s.labels)} {value}{timestamp}{exemplar}\n")
    return "".join(lines)


class _Collected:
    """Already collected metrics, in the shape prometheus-client's encoders read."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> list[Metric]:
        return self._metrics


def pieces(collector: Collector, openmetrics: bool, fallback: Callable[[Any], bytes]) -> Iterator[bytes]:
    """The exposition of everything ``collector`` collects, UTF-8, in pieces a caller can pause between.
    ``fallback`` is prometheus-client's encoder for the format, for the families not covered here."""
    for metric in collector.collect():
        if isinstance(metric, RenderedFamily):
            yield (_openmetrics_header(metric) if openmetrics else _text_header(metric)).encode("utf-8")
            yield from metric.lines(openmetrics)
            continue
        try:
            if not PLAIN_NAME.match(metric.name):
                raise _NotPlain(metric.name)
            yield (_openmetrics_family(metric) if openmetrics else _text_family(metric)).encode("utf-8")
        except _NotPlain:
            text = fallback(_Collected([metric]))
            yield text.removesuffix(b"# EOF\n") if openmetrics else text
    if openmetrics:
        yield b"# EOF\n"


def encode_text(collector: Collector) -> bytes:
    """Text format 0.0.4: byte for byte what ``prometheus_client.generate_latest`` writes."""
    return b"".join(pieces(collector, False, generate_latest))


def encode_openmetrics(collector: Collector) -> bytes:
    """OpenMetrics 1.0 with exemplars: byte for byte what prometheus-client's OpenMetrics
    ``generate_latest`` writes."""
    return b"".join(pieces(collector, True, openmetrics.generate_latest))


async def join_cooperatively(parts: Iterable[bytes], slice_seconds: float = SLICE_SECONDS) -> bytes:
    """``b"".join(parts)``, handing the event loop back whenever a stretch of work took ``slice_seconds``."""
    out: list[bytes] = []
    clock = time.perf_counter
    deadline = clock() + slice_seconds
    for part in parts:
        out.append(part)
        if clock() >= deadline:
            await asyncio.sleep(0)
            deadline = clock() + slice_seconds
    return b"".join(out)


def _format(encoder: Any) -> str | None:
    """Which of our encoders writes what ``choose_encoder`` picked: ``text``, ``openmetrics`` or neither."""
    func, keywords = getattr(encoder, "func", encoder), getattr(encoder, "keywords", {})
    if keywords.get("escaping", "underscores") not in ("underscores", "allow-utf-8"):
        return None
    if func is generate_latest:
        return "text"
    if func is openmetrics.generate_latest and keywords.get("version", "1.0.0") == "1.0.0":
        return "openmetrics"
    return None


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


class MetricsEndpoint:
    def __init__(self, token: str | None = None) -> None:
        self._expected = f"Bearer {token}".encode() if token else None
        self._shared: SharedFiles | None = None
        self._exporter: ExporterClient | None = None
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def authorised(self, scope: Scope) -> bool:
        if self._expected is None:
            return True
        return hmac.compare_digest(_header(scope, b"authorization"), self._expected)

    def _source(self) -> tuple[Collector, Iterable[bytes]]:
        """What a scrape exposes, and the steps that bring it up to date first."""
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not directory:
            return REGISTRY, ()
        if self._shared is None or self._shared.directory != directory:
            self._shared = SharedFiles(directory)
        return self._shared, self._shared.refresh()

    def _one_at_a_time(self) -> asyncio.Lock:
        """Scrapes of this process take turns: a refresh of the shared files is not reentrant."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        return self._lock[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Answers the scrape and returns the status code it sent."""
        if not self.authorised(scope):
            from fastapi_lookout.problems import send_problem  # the rare path: not imported by every scrape

            sent = bool(_header(scope, b"authorization"))
            await send_problem(send, scope, 401, "invalid_token" if sent else "missing",
                               "a wrong metrics token" if sent else "this endpoint needs the metrics token",
                               headers=[(b"www-authenticate", b'Bearer realm="metrics"')])
            return 401
        encoder, content_type = choose_encoder(_header(scope, b"accept").decode("latin-1"))
        kind = _format(encoder)
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory and kind is not None:  # the exporter merges the files; this worker only moves bytes
            if self._exporter is None or self._exporter.directory != directory:
                self._exporter = ExporterClient(directory)
            body = await self._exporter.fetch(kind == "openmetrics")
            if body is not None:
                await _respond(send, 200, content_type.encode(), body)
                return 200
        async with self._one_at_a_time():
            collector, refresh = self._source()
            if kind is None:
                await join_cooperatively(refresh)
                body = encoder(collector)
            else:
                openmetrics_ = kind == "openmetrics"
                body = await join_cooperatively(chain(refresh, pieces(collector, openmetrics_, encoder)))
        await _respond(send, 200, content_type.encode(), body)
        return 200


async def _respond(
    send: Send, status: int, content_type: bytes, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
