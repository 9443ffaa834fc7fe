"""schemathesis against the real service process: every check, every phase (stateful included),
a fixed seed and a bounded time, on SQLite and on PostgreSQL, with a token and without one.

What it found before (4.x, 13,469 cases): 500s on int64 offsets and NUL bytes, error statuses
the OpenAPI did not name, an ``Allow`` missing methods, a schema-valid name refused and an
invalid one accepted. Now it must find nothing. Rate limits are raised for the run: they are
tested on their own, and here they would only turn the fuzzer's traffic into 429s.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.app_process import AppProcess

SEED = 20261206
MAX_SECONDS = 30
"""Per run, four runs: schemathesis repeats fuzzing and stateful scenarios until the time is spent
(about 1,500-2,500 cases a run on this 2-core machine)."""
NO_RATE_LIMITS = {
    "RATE_LIMIT_IP_PER_MINUTE": "100000000", "RATE_LIMIT_IP_BURST": "10000000",
    "RATE_LIMIT_PER_MINUTE": "100000000", "RATE_LIMIT_BURST": "10000000",
}
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


def fuzz(app: AppProcess, token: str | None, report: Path) -> subprocess.CompletedProcess[str]:
    argv = [
        SCHEMATHESIS, "run", f"{app.base_url}/openapi.json",
        "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--seed", str(SEED), "--max-time", str(MAX_SECONDS),
        "--workers", "1", "--request-timeout", "10", "--no-color",
        "--report", "junit", "--report-junit-path", str(report),
    ]
    if token is not None:
        argv += ["--header", f"Authorization: Bearer {token}"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=MAX_SECONDS * 4, cwd=report.parent,
                          env={**app.env, "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks"})


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_schemathesis_finds_nothing(database: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    env = dict(NO_RATE_LIMITS)
    if database == "postgresql":
        server = request.getfixturevalue("postgres_server")
        env["DATABASE_URL"] = server.url(request.getfixturevalue("postgres_db"))
    with AppProcess(env, workdir=tmp_path) as app:
        token = app.token("fuzzer", ("get-authors", "create-author", "delete-author"))
        for label, auth in (("with a token", token), ("without a token", None)):
            done = fuzz(app, auth, tmp_path / f"junit-{label.replace(' ', '-')}.xml")
            (tmp_path / f"schemathesis-{label.replace(' ', '-')}.txt").write_text(done.stdout + done.stderr)
            summary = [line for line in done.stdout.splitlines() if "passed" in line or "failed" in line]
            print(f"schemathesis on {database} {label}: {summary[-1] if summary else '?'}")
            assert done.returncode == 0, f"{database}, {label}:\n{done.stdout[-8000:]}\n{done.stderr[-2000:]}"
    assert '"unhandled exception"' not in app.output()  # nor a 500 that a check let pass
