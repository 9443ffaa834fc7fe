"""The scale-out path on real servers: VictoriaMetrics (Debian's ``victoria-metrics``, 1.79) as the remote
store, Prometheus replicas remote-writing to it, ``vmalert`` evaluating the generated rules against it.

Verified behaviour of these versions that the helpers rely on (prototype notes: /work/notes/victoria.md):

- Deduplication of an HA pair needs identical series: the replicas' ``replica`` label is dropped (here by
  VictoriaMetrics' ``-relabelConfig``, or by the sender's ``write_relabel_configs``) and
  ``-dedup.minScrapeInterval`` then keeps one sample per interval. Without the drop both copies are stored
  and every ``sum`` doubles.
- ``-search.latencyOffset=0s``: the default 30 s offset hides the newest samples from queries.
- VictoriaMetrics 1.79 caches index lookups, empty ones included, and drops that cache at most every 10 s: a
  series polled for before it existed stays invisible for up to 10 s. ``/internal/force_flush`` after each
  unsuccessful poll makes it visible at once (``on_miss``); vmalert's own queries need the same kick.
- vmalert refuses to start without ``-remoteWrite.url`` when a file holds recording rules, and without
  ``-notifier.url`` when it holds alerts (1.79 has no blackhole notifier): ``FakeAlertmanager`` takes them.
- Prometheus scrapes for the first time ~5-6 s after start (its discovery throttle), whatever the interval.

Tests wait on data (polls with deadlines), never on sleeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import process
from tests.support import prometheus as prom
from tests.support.binaries import free_port, which

EXPAND_EXTERNAL_LABELS = "--enable-feature=expand-external-labels"
"""Prometheus 2.x reads ``${VAR}`` in external labels only with this flag; 3.x always does."""


def binary() -> str | None:
    return which("victoria-metrics")


def vmalert_binary() -> str | None:
    return which("vmalert")


def version() -> str:
    """The Debian package's version: the binaries print an empty ``-version`` (no build flags)."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "victoria-metrics"], capture_output=True,
                            text=True, check=False)
    return result.stdout.strip() or "unknown"


def _get_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def scrape(url: str) -> dict[str, float]:
    """A ``/metrics`` page as ``name{k="v",...}`` (labels sorted) -> value."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def total(metrics: Mapping[str, float], name: str) -> float:
    """The sum of every sample of ``name`` over its label sets."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


def poll(check: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.1) -> Any:
    """``check()``'s first truthy answer; a TimeoutError naming ``what`` (and the last answer) otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout} s; last answer {result!r}")
        time.sleep(interval)


# --- a server binary's lifecycle ---------------------------------------------------------------------------
class _Binary:
    """Started from ``args``, ready when ``url + ready_path`` answers 200; stopped for good with its temp dir."""

    name: str
    args: list[str]
    url: str
    root: Path
    log_path: Path
    ready_path = "/health"
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Self:
        self.proc = process.start_ready(self.args, f"{self.url}{self.ready_path}", self.log_path, self.name, timeout)
        return self

    def stop(self) -> None:
        process.stop(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# --- VictoriaMetrics single node -------------------------------------------------------------------------------
class VictoriaMetricsServer(_Binary, prom.QueryAPI):
    """``victoria-metrics`` on 127.0.0.1:<free port> with its own data directory; newest samples queryable.

    ``drop_labels``: labels removed at ingestion (``-relabelConfig``), so that an HA pair's series coincide
    and ``-dedup.minScrapeInterval`` merges them; empty: the store keeps whatever the senders send.
    """

    name = "VictoriaMetrics"
    poll_seconds = 0.1

    def __init__(self, *, dedup_interval: str = "1s", drop_labels: Sequence[str] = ("replica",)) -> None:
        path = binary()
        if path is None:
            raise RuntimeError("victoria-metrics not found (apt-get install victoria-metrics)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.write_url = f"{self.url}/api/v1/write"
        self.root = Path(tempfile.mkdtemp(prefix="vm-test-"))
        self.log_path = self.root / "victoria-metrics.log"
        self.args = [
            path, f"-storageDataPath={self.root / 'data'}", f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=1d",
            "-search.latencyOffset=0s",  # the default 30 s hides the newest samples
            "-search.disableCache",  # no rollup-result cache between two polls of a test
            f"-dedup.minScrapeInterval={dedup_interval}",
            "-loggerLevel=WARN",
        ]
        if drop_labels:
            rules = [{"action": "labeldrop", "regex": "|".join(drop_labels)}]
            (self.root / "relabel.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
            self.args.append(f"-relabelConfig={self.root / 'relabel.yml'}")
        self.proc: subprocess.Popen[bytes] | None = None

    def metrics(self) -> dict[str, float]:
        return scrape(f"{self.url}/metrics")

    def force_flush(self) -> None:
        """Make everything ingested searchable and drop the index-lookup cache now (see the module doc)."""
        with contextlib.suppress(OSError, urllib.error.URLError):
            urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=5).read()

    def on_miss(self) -> None:
        self.force_flush()


# --- Prometheus replicas -------------------------------------------------------------------------------------
class PrometheusReplica(prom.PrometheusServer):
    """One member of an HA pair: runs the config ``render(own_address)`` returns (the generator's remote_write
    variant, addresses filled in), with ``PROMETHEUS_REPLICA`` set in its environment.

    ``files``: written beside the config before start (``{"rules/app-alerts.yml": text}`` for its
    ``rule_files``); without them its ``rules/*.yml`` glob matches nothing and it evaluates no rules.
    """

    def __init__(self, replica: str, render: Callable[[str], Mapping[str, Any]],
                 files: Mapping[str, str] | None = None) -> None:
        super().__init__({})
        self.replica = replica
        self.name = f"Prometheus replica {replica}"
        self.config = dict(render(f"127.0.0.1:{self.port}"))
        self.jobs = {job["job_name"]: [t for sc in job.get("static_configs", []) for t in sc["targets"]]
                     for job in self.config["scrape_configs"]}
        (self.root / "prometheus.yml").write_text(yaml.safe_dump(self.config, sort_keys=False))
        for relative, text in (files or {}).items():
            (self.root / relative).parent.mkdir(parents=True, exist_ok=True)
            (self.root / relative).write_text(text)

    def start(self, timeout: float = 30.0) -> PrometheusReplica:
        self.proc = process.start_ready(
            [self.binary, f"--config.file={self.root / 'prometheus.yml'}", f"--storage.tsdb.path={self.root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", EXPAND_EXTERNAL_LABELS],
            f"{self.url}/-/ready", self.log_path, self.name, timeout,
            env={**os.environ, "PROMETHEUS_REPLICA": self.replica},
        )
        return self

    def metrics(self) -> dict[str, float]:
        return scrape(f"{self.url}/metrics")

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts of the rules it evaluates itself."""
        return _get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]

    def sent_up_to(self) -> float:
        """Newest sample timestamp (unix s) the remote-write queue has delivered; 0 before the first."""
        found = [v for k, v in self.metrics().items()
                 if k.startswith("prometheus_remote_storage_queue_highest_sent_timestamp_seconds")]
        return max(found, default=0.0)

    def wait_delivered(self, until: float, timeout: float = 60.0) -> None:
        """Every sample up to ``until`` (unix s) has reached the store."""
        poll(lambda: self.sent_up_to() >= until, f"replica {self.replica} delivering samples up to {until:.1f}",
             timeout)


def start_all(servers: Sequence[Any]) -> None:
    """Start servers side by side (each waits for its own readiness); stop the started ones if one fails."""
    errors: list[BaseException] = []

    def run(server: Any) -> None:
        try:
            server.start()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for server in servers:
            server.stop()
        raise errors[0]


# --- vmalert -----------------------------------------------------------------------------------------------------
class VMAlert(_Binary):
    """``vmalert`` evaluating ``rules`` (paths or globs) against ``datasource_url`` each ``evaluation_interval``,
    writing recording results and ``ALERTS`` back to ``write_url`` and notifying ``notifier_url``.

    ``external_labels``: added to every alert and recording (``-external.label``), as Prometheus adds its
    external labels to the alerts it sends."""

    name = "vmalert"

    def __init__(self, rules: Sequence[str], *, datasource_url: str, notifier_url: str, write_url: str = "",
                 evaluation_interval: str = "1s", external_labels: Mapping[str, str] | None = None) -> None:
        path = vmalert_binary()
        if path is None:
            raise RuntimeError("vmalert not found (apt-get install victoria-metrics)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = Path(tempfile.mkdtemp(prefix="vmalert-test-"))
        self.log_path = self.root / "vmalert.log"
        self.args = [
            path, *[f"-rule={r}" for r in rules], f"-datasource.url={datasource_url}",
            f"-remoteWrite.url={write_url or datasource_url}",
            "-remoteWrite.flushInterval=500ms",  # default 5 s
            f"-notifier.url={notifier_url}", f"-evaluationInterval={evaluation_interval}",
            f"-httpListenAddr=127.0.0.1:{self.port}", "-loggerLevel=WARN",
            *[f"-external.label={k}={v}" for k, v in (external_labels or {}).items()],
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def dry_run(rules: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Parse and validate the rule files (MetricsQL syntax, templates) without running anything."""
        path = vmalert_binary()
        if path is None:
            raise RuntimeError("vmalert not found (apt-get install victoria-metrics)")
        return subprocess.run([path, *[f"-rule={r}" for r in rules], "-dryRun", "-loggerLevel=WARN"],
                              capture_output=True, text=True, timeout=60, check=False)

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts (1.79 answers ``null``, not ``[]``, when there are none)."""
        return _get_json(f"{self.url}/api/v1/alerts")["data"].get("alerts") or []

    def groups(self) -> list[dict[str, Any]]:
        return _get_json(f"{self.url}/api/v1/rules")["data"].get("groups") or []

    def metrics(self) -> dict[str, float]:
        return scrape(f"{self.url}/metrics")

    def wait_alerts(self, predicate: Callable[[list[dict[str, Any]]], bool], what: str, *, timeout: float = 60.0,
                    kick: Callable[[], None] = lambda: None) -> list[dict[str, Any]]:
        """``kick`` after each miss: ``VictoriaMetricsServer.force_flush`` lets vmalert see new series at once."""
        deadline = time.monotonic() + timeout
        alerts: list[dict[str, Any]] = []
        while True:
            alerts = self.alerts()
            if predicate(alerts):
                return alerts
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"vmalert exited:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                seen = [(a["name"], a["state"], a.get("labels")) for a in alerts]
                raise TimeoutError(f"{what} not within {timeout} s; vmalert has {seen}\n{self.log()[-2000:]}")
            kick()
            time.sleep(0.2)


# --- stand-ins -----------------------------------------------------------------------------------------------------
class _Server:
    """A ThreadingHTTPServer on 127.0.0.1:<free port>, run in a daemon thread while the context is open."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.address}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeAlertmanager(_Server):
    """Takes vmalert's ``POST /api/v2/alerts`` and keeps every alert it was sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        am = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"[]")
                with am.lock:
                    am.received.extend(payload)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def names(self) -> set[tuple[str, str]]:
        """(alertname, instance) of everything received."""
        with self.lock:
            return {(a["labels"].get("alertname", ""), a["labels"].get("instance", "")) for a in self.received}


class StandInExporter(_Server):
    """A ``/metrics`` page in text format 0.0.4 whose samples the test sets (``'name{labels}' -> value``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: dict[str, float] = {}
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with exporter.lock:
                    body = "".join(f"{k} {float(v)!r}\n" for k, v in exporter.samples.items()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a Prometheus stopped mid-scrape
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Handler)

    def set(self, **samples: float) -> None:
        """Set samples by plain name (``audit_write_failures_total=0``)."""
        self.put(samples)

    def put(self, samples: Mapping[str, float]) -> None:
        """Set samples by full series text (``'x_total{code="500"}': 3``)."""
        with self.lock:
            self.samples.update(samples)
