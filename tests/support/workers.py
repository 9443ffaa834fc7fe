"""Processes that write prometheus-client's multiprocess files, as uvicorn workers would
(``metric_worker.py`` is what each runs), and what ``MultiProcessCollector`` makes of their files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

MODES = ("all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent", "livemostrecent")
"""Every gauge ``multiprocess_mode``."""
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "metric_worker.py"


class Worker:
    """One ``metric_worker.py`` process writing into ``directory``; ``send(**command)`` waits until done."""

    def __init__(self, directory: Path) -> None:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, str(SCRIPT)], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, **command: object) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok", command

    def exit(self, mark_dead: bool = True) -> None:
        self.send(exit=True, mark_dead=mark_dead)
        self.proc.wait(30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)


def collector_text(directory: Path, openmetrics: bool = False) -> bytes:
    """What prometheus-client's own multiprocess collector and encoder make of ``directory``."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    return generate_openmetrics(registry) if openmetrics else generate_latest(registry)
