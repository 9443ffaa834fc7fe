"""The ``/metrics`` endpoint as a bare ASGI callable (no routing, auth, rate limit or audit).

Content negotiation follows Prometheus: OpenMetrics (with exemplars) when the
scraper asks for it, text format 0.0.4 otherwise. In multiprocess mode every
scrape merges the workers' files, so counts from all workers add up.
"""

from __future__ import annotations

import hmac
import os

import orjson
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString
from starlette.types import Receive, Scope, Send

_PREFIX_CACHE_MAX = 50_000
_prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}


def _prefix(sample: Sample) -> str:
    """``name{a="x",b="y"}`` of a series, rendered once: label sets are bounded, and
    escaping and validating every label on every scrape was most of the scrape's time."""
    key = (sample.name, tuple(sample.labels.items()))
    prefix = _prefixes.get(key)
    if prefix is None:
        name = openmetrics.escape_metric_name(sample.name, openmetrics.UNDERSCORES)
        if sample.labels:
            labels = ",".join(
                f'{openmetrics.escape_label_name(k, openmetrics.UNDERSCORES)}='
                f'"{openmetrics._escape(v, openmetrics.ALLOWUTF8, False)}"'
                for k, v in sorted(sample.labels.items())
            )
            name = f"{name}{{{labels}}}"
        if len(_prefixes) >= _PREFIX_CACHE_MAX:
            _prefixes.clear()
        prefix = _prefixes[key] = name
    return prefix


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
        body = encode_text(registry) if encoder is generate_latest else encoder(registry)
        await _respond(send, 200, content_type.encode(), body)
        return 200


async def _respond(
    send: Send, status: int, content_type: bytes, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
