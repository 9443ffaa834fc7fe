"""A process that writes prometheus-client's multiprocess files on command, as a worker would.

Run with ``PROMETHEUS_MULTIPROC_DIR`` set; reads one JSON command per line from stdin and answers
``ok`` on stdout when the files hold it:

- ``{"count": queue, "by": n}``: ``jobs_total{queue}`` += n
- ``{"observe": queue, "value": v}``: ``job_seconds{queue}`` observes v
- ``{"size": v}``: ``job_bytes`` (a summary) observes v
- ``{"set": mode, "k": label, "value": v}``: the gauge of that ``multiprocess_mode``
- ``{"rule": v}``: ``job:done:rate`` (a name prometheus-client's own encoder must write) += v
- ``{"many": n, "prefix": p}``: n more label sets of ``jobs_total`` (files grow past their first mapping)
- ``{"exit": true, "mark_dead": bool}``: leave, calling ``mark_process_dead`` first or not
"""

from __future__ import annotations

import json
import os
import sys

from prometheus_client import Counter, Gauge, Histogram, Summary
from prometheus_client.multiprocess import mark_process_dead

from tests.support.workers import MODES

JOBS = Counter("jobs", "Jobs done, by queue.", ("queue",))
LATENCY = Histogram("job_seconds", "Job time.", ("queue",), buckets=(0.25, 1.0, 2.5))
SIZE = Summary("job_bytes", "Job sizes.")
RULE = Counter("job:done:rate", "A name with colons.")
GAUGES = {mode: Gauge(f"level_{mode}", f"Level ({mode}), \"quoted\".", ("k",), multiprocess_mode=mode)
          for mode in MODES}


def main() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if "count" in command:
            JOBS.labels(command["count"]).inc(command["by"])
        elif "observe" in command:
            LATENCY.labels(command["observe"]).observe(command["value"])
        elif "size" in command:
            SIZE.observe(command["size"])
        elif "set" in command:
            GAUGES[command["set"]].labels(command["k"]).set(command["value"])
        elif "rule" in command:
            RULE.inc(command["rule"])
        elif "many" in command:
            for i in range(command["many"]):
                JOBS.labels(f"{command['prefix']}-{i}").inc()
        elif "exit" in command:
            if command["mark_dead"]:
                mark_process_dead(os.getpid())
            print("ok", flush=True)
            return
        print("ok", flush=True)


if __name__ == "__main__":
    main()
