"""``/metrics`` scrape time at the reference cardinality.

Starts the real service (one worker, then two workers in multiprocess mode),
drives the same traffic mix the contract and end-to-end tests use (every
route, status class, WebSocket package and rate limit: all the series the
dashboards read), then times scrapes in the text format Prometheus asks for.

    .venv/bin/python benchmarks/scrape.py [--scrapes 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.app_process import AppProcess  # noqa: E402
from tests.support.traffic import drive  # noqa: E402

ACCEPT = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"


def measure(workers: int, scrapes: int) -> dict[str, float | int]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-scrape-"))
    env = {"RATE_LIMIT_IP_PER_MINUTE": "100000", "RATE_LIMIT_IP_BURST": "100000", "LOG_ERROR_FILE": ""}
    if workers > 1:
        (workdir / "prom").mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "prom")
    app = AppProcess(env, workers=workers, http="h11", workdir=workdir)
    app.start()
    try:
        for _ in range(workers):  # enough traffic that every worker holds series
            drive(app)
        timings = []
        with httpx.Client(base_url=app.base_url, headers={"Accept": ACCEPT}) as client:
            body = client.get("/metrics").text
            for _ in range(scrapes):
                start = time.perf_counter()
                response = client.get("/metrics")
                timings.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
    finally:
        app.stop()
    series = [ln for ln in body.splitlines() if ln and not ln.startswith("#")]
    return {
        "workers": workers,
        "series": len(series),
        "app_series": len([ln for ln in series if not ln.startswith(("python_", "process_"))]),
        "bytes": len(body.encode()),
        "median_ms": round(statistics.median(timings), 2),
        "p90_ms": round(sorted(timings)[int(len(timings) * 0.9) - 1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = [measure(1, args.scrapes), measure(2, args.scrapes)]
    print("| workers | series (all) | series (app) | bytes | scrape ms median | p90 |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = (r["workers"], r["series"], r["app_series"], f"{r['bytes']:,}", r["median_ms"], r["p90_ms"])
        print("| " + " | ".join(str(c) for c in cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
