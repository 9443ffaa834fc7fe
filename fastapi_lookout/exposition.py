"""The ``/metrics`` endpoint as a bare ASGI callable (no routing, auth, rate limit or audit).

Content negotiation follows Prometheus: OpenMetrics (with exemplars) when the
scraper asks for it, text format 0.0.4 otherwise. In multiprocess mode every
scrape merges the workers' files, so counts from all workers add up.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from typing import Any

import orjson
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString
from starlette.types import Receive, Scope, Send

_PREFIX_CACHE_MAX = 50_000


class _Prefixes:
    """``name{a="x",b="y"}`` of a series, rendered once per encoder: label sets are bounded, and
    escaping and validating every label on every scrape was most of the scrape's time. The two
    formats escape as prometheus-client's encoders do: ``name`` and ``value`` are their escapers."""

    def __init__(self, name: Callable[[str], str], value: Callable[[str], str]) -> None:
        self._name, self._value = name, value
        self._cache: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def __call__(self, sample: Sample) -> str:
        key = (sample.name, tuple(sample.labels.items()))
        prefix = self._cache.get(key)
        if prefix is None:
            prefix = self._name(sample.name)
            if sample.labels:
                labels = ",".join(
                    f'{openmetrics.escape_label_name(k, openmetrics.UNDERSCORES)}="{self._value(v)}"'
                    for k, v in sorted(sample.labels.items())
                )
                prefix = f"{prefix}{{{labels}}}"
            if len(self._cache) >= _PREFIX_CACHE_MAX:
                self._cache.clear()
            self._cache[key] = prefix
        return prefix


_prefix = _Prefixes(  # text format 0.0.4
    lambda name: openmetrics.escape_metric_name(name, openmetrics.UNDERSCORES),
    lambda value: openmetrics._escape(value, openmetrics.ALLOWUTF8, False),
)
_om_prefix = _Prefixes(
    lambda name: openmetrics._escape(name, openmetrics.UNDERSCORES, openmetrics._is_legacy_labelname_rune),
    lambda value: openmetrics._escape(value, openmetrics.ALLOWUTF8, openmetrics._is_legacy_labelname_rune),
)


def _line(sample: Sample) -> str:
    timestamp = f" {int(float(sample.timestamp) * 1000):d}" if sample.timestamp is not None else ""
    return f"{_prefix(sample)} {floatToGoString(sample.value)}{timestamp}\n"


_TYPE_MUNGING = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}


def encode_text(registry: Collector) -> bytes:
    """Text format 0.0.4, byte for byte what ``prometheus_client.generate_latest`` writes
    (a test holds them equal), with series prefixes cached between scrapes."""
    output: list[str] = []
    for metric in registry.collect():
        name, kind = metric.name, metric.type
        if kind == "counter":
            name += "_total"
        elif kind == "info":
            name += "_info"
        kind = _TYPE_MUNGING.get(kind, kind)
        escaped = openmetrics.escape_metric_name(name, openmetrics.UNDERSCORES)
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        output.append(f"# HELP {escaped} {doc}\n# TYPE {escaped} {kind}\n")
        extra: dict[str, list[str]] = {}
        for sample in metric.samples:
            for suffix in ("_created", "_gsum", "_gcount"):
                if sample.name == metric.name + suffix:
                    extra.setdefault(suffix, []).append(_line(sample))
                    break
            else:
                output.append(_line(sample))
        for suffix, lines in extra.items():
            extra_name = openmetrics.escape_metric_name(metric.name + suffix, openmetrics.UNDERSCORES)
            output.append(f"# HELP {extra_name} {doc}\n# TYPE {extra_name} gauge\n")
            output.extend(lines)
    return "".join(output).encode("utf-8")


def encode_openmetrics(registry: Collector) -> bytes:
    """OpenMetrics 1.0 (what Prometheus asks for first, exemplars included), byte for byte what
    ``prometheus_client.openmetrics.exposition.generate_latest`` writes (a test holds them equal),
    with series prefixes cached between scrapes. Native histograms go to prometheus-client's encoder."""
    metrics = list(registry.collect())
    if any(sample.native_histogram for metric in metrics for sample in metric.samples):
        return openmetrics.generate_latest(_Collected(metrics))
    output: list[str] = []
    for metric in metrics:
        escaped = openmetrics.escape_metric_name(metric.name, openmetrics.UNDERSCORES)
        doc = openmetrics._escape(metric.documentation, openmetrics.ALLOWUTF8, openmetrics._is_legacy_labelname_rune)
        output.append(f"# HELP {escaped} {doc}\n# TYPE {escaped} {metric.type}\n")
        if metric.unit:
            output.append(f"# UNIT {escaped} {metric.unit}\n")
        for sample in metric.samples:
            value = "" if sample.value is None else floatToGoString(sample.value)
            timestamp = "" if sample.timestamp is None else f" {sample.timestamp}"
            exemplar = openmetrics._compose_exemplar_string(metric, sample, sample.exemplar) if sample.exemplar else ""
            output.append(f"{_om_prefix(sample)} {value}{timestamp}{exemplar}\n")
    output.append("# EOF\n")
    return "".join(output).encode("utf-8")


class _Collected:
    """Already collected metrics, in the shape prometheus-client's encoders read."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> list[Metric]:
        return self._metrics


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


def _is_openmetrics_underscores(encoder: Any) -> bool:
    """``choose_encoder``'s OpenMetrics answer with the escaping ``encode_openmetrics`` implements."""
    return (getattr(encoder, "func", None) is openmetrics.generate_latest
            and encoder.keywords.get("escaping", openmetrics.UNDERSCORES) == openmetrics.UNDERSCORES)


class MetricsEndpoint:
    def __init__(self, token: str | None = None) -> None:
        self._expected = f"Bearer {token}".encode() if token else None

    def authorised(self, scope: Scope) -> bool:
        if self._expected is None:
            return True
        return hmac.compare_digest(_header(scope, b"authorization"), self._expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Answers the scrape and returns the status code it sent."""
        if not self.authorised(scope):
            body = orjson.dumps({"error": "unauthorized", "reason": "metrics token required"})
            await _respond(send, 401, b"application/json", body, [(b"www-authenticate", b"Bearer")])
            return 401
        encoder, content_type = choose_encoder(_header(scope, b"accept").decode("latin-1"))
        registry = _registry()
        if encoder is generate_latest:
            body = encode_text(registry)
        elif _is_openmetrics_underscores(encoder):
            body = encode_openmetrics(registry)
        else:
            body = encoder(registry)
        await _respond(send, 200, content_type.encode(), body)
        return 200


async def _respond(
    send: Send, status: int, content_type: bytes, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
