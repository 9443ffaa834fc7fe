"""A real Prometheus (Debian's ``prometheus``) scraping the targets a test gives it, at a 1 s interval.

Tests wait on data, never on sleeps: ``wait_for(expr, predicate)`` polls
``/api/v1/query`` until the answer satisfies the predicate (bounded deadline).
Prometheus needs a few seconds before it holds its first scraped sample, even
at a 1 s interval.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests.support import process
from tests.support.binaries import free_port, which

Vector = list[dict[str, Any]]


def binary() -> str | None:
    return which("prometheus")


def job_name(selector: str) -> str:
    """The job of a config selector such as ``Config().app_selector`` (``job="fastapi-app"``)."""
    match = re.search(r'\bjob="([^"]+)"', selector)
    if match is None:
        raise ValueError(f"selector {selector!r} names no job")
    return match.group(1)


def value(sample: Mapping[str, Any]) -> float:
    """The value of one instant-vector sample."""
    return float(sample["value"][1])


class QueryAPI:
    """``/api/v1/query`` as Prometheus answers it, and VictoriaMetrics too: instant queries, and polls on them."""

    url: str
    proc: subprocess.Popen[bytes] | None
    name = "Prometheus"
    poll_seconds = 0.2

    def log(self) -> str:
        path: Path | None = getattr(self, "log_path", None)
        return path.read_text(errors="replace") if path is not None and path.exists() else ""

    def on_miss(self) -> None:
        """Called after each poll whose answer did not do yet."""

    def timeout_context(self) -> str:
        """What a timeout message adds after the last answer."""
        return ""

    def query(self, expr: str, at: float | None = None) -> Vector:
        """The instant-vector (or scalar, as one sample) answer of ``expr`` at ``at`` (unix s; default now)."""
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise RuntimeError(f"{expr}: {body}")
        data = body["data"]
        return data["result"] if data["resultType"] == "vector" else [{"metric": {}, "value": data["result"]}]

    def wait_for(self, expr: str, predicate: Callable[[Vector], bool] = bool, *, timeout: float = 60.0,
                 what: str = "") -> Vector:
        """Poll ``expr`` until ``predicate(result)`` holds; fail naming ``what`` (and the last answer) at timeout."""
        deadline = time.monotonic() + timeout
        result: Vector = []
        while True:
            try:
                result = self.query(expr)
                if predicate(result):
                    return result
            except (OSError, urllib.error.URLError):
                pass
            self.on_miss()
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what or expr} not within {timeout} s on {self.name}; last answer {result}"
                                   f"{self.timeout_context()}")
            time.sleep(self.poll_seconds)


class PrometheusServer(QueryAPI):
    """``with PrometheusServer({"job": ["127.0.0.1:8000"]}) as prom:`` scrapes every target each second."""

    def __init__(self, jobs: Mapping[str, Sequence[str]], *, scrape_interval: str = "1s",
                 metrics_path: str = "/metrics") -> None:
        path = binary()
        if path is None:
            raise RuntimeError("prometheus not found (apt-get install prometheus)")
        self.binary = path
        self.jobs = {job: list(targets) for job, targets in jobs.items()}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = Path(tempfile.mkdtemp(prefix="prom-test-"))
        self.log_path = self.root / "prometheus.log"
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "scrape_configs": [
                {"job_name": job, "metrics_path": metrics_path, "static_configs": [{"targets": targets}]}
                for job, targets in self.jobs.items()
            ],
        }
        (self.root / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> PrometheusServer:
        self.proc = process.start_ready(
            [self.binary, f"--config.file={self.root / 'prometheus.yml'}", f"--storage.tsdb.path={self.root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            f"{self.url}/-/ready", self.log_path, "Prometheus", timeout,
        )
        return self

    def stop(self) -> None:
        process.stop(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- queries ----------------------------------------------------------------------------
    def timeout_context(self) -> str:
        return f"; targets {self._targets()}"

    def wait_scraped(self, samples: int = 1, timeout: float = 60.0) -> None:
        """Every job is up and holds at least ``samples`` scrapes (4 make a rate over a 10 s window safe)."""
        for job in self.jobs:
            self.wait_for(
                f'count_over_time(up{{job="{job}"}}[5m])',
                lambda r: len(r) > 0 and all(value(s) >= samples for s in r),
                timeout=timeout, what=f"{samples} scrapes of job {job}",
            )
            self.wait_for(f'min(up{{job="{job}"}}) == 1', timeout=timeout, what=f"job {job} up")

    def wait_more_scrapes(self, scrapes: int = 4, timeout: float = 60.0) -> None:
        """``scrapes`` more scrapes of every job from now on: every series that exists now, the newest included
        (a first 5xx), then holds that many more samples.

        A range query evaluates ``rate()`` at steps up to its end; with 4 more samples at a 1 s interval the
        second one lies at least 2 s in the past, so even the last step of a 2 s-step query has a value.
        """
        exprs = {job: f'count_over_time(up{{job="{job}"}}[1h])' for job in self.jobs}
        before = {job: sum(value(s) for s in self.query(expr)) for job, expr in exprs.items()}  # all jobs at once
        for job, expr in exprs.items():
            self.wait_for(expr, lambda r, n=before[job] + scrapes: len(r) == 1 and value(r[0]) >= n,
                          timeout=timeout, what=f"{scrapes} more scrapes of job {job}")

    def _targets(self) -> Any:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=5) as response:
                active = json.loads(response.read())["data"]["activeTargets"]
            return [(t["labels"].get("job"), t["health"], t.get("lastError")) for t in active]
        except (OSError, urllib.error.URLError, KeyError, ValueError) as exc:
            return f"unavailable: {exc}"
