"""The incremental merge of the workers' files must say what ``MultiProcessCollector`` says.

Real processes (``tests/support/workers.py``) write the files, as uvicorn workers would.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from importlib.metadata import version

import pytest
from prometheus_client import generate_latest
from prometheus_client.multiprocess import mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

from fastapi_lookout.exposition import encode_openmetrics, encode_text
from fastapi_lookout.multiprocess_files import SharedFiles
from tests.support.workers import MODES, Worker, collector_text

GROUPED = tuple(int(part) for part in version("prometheus-client").split(".")[:2]) >= (0, 24)
"""MultiProcessCollector keeps a label set's samples together (as we do) since prometheus-client 0.24."""


@pytest.fixture
def workers(tmp_path) -> Iterator[list[Worker]]:
    started = [Worker(tmp_path) for _ in range(3)]
    yield started
    for worker in started:
        worker.kill()


def refreshed(shared: SharedFiles) -> SharedFiles:
    for _ in shared.refresh():
        pass
    return shared


def lines(text: bytes) -> list[bytes]:
    return sorted(text.splitlines())


def total(text: bytes, name: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(text.decode()) for s in f.samples if s.name == name)


def work(worker: Worker, rng: random.Random, n: int = 20) -> None:
    """Values whose sums are exact in binary, so float addition order cannot tell two merges apart."""
    for _ in range(n):
        worker.send(count=rng.choice(["a", "b", 'c"q\\x\ny']), by=rng.randrange(1, 5))
        worker.send(observe=rng.choice(["a", "b"]), value=rng.choice([0.125, 0.5, 1.0, 2.0, 8.0]))
    worker.send(size=rng.choice([1.5, 256.0]))
    worker.send(rule=2)
    for mode in MODES:
        worker.send(set=mode, k="x", value=rng.choice([-3.0, 0.25, 7.0, 1e7]))


def test_a_first_read_is_byte_identical_to_multiprocess_collector(tmp_path, workers):
    rng = random.Random(1)
    for worker in workers:
        work(worker, rng)
    shared = refreshed(SharedFiles(str(tmp_path)))
    if GROUPED:
        assert encode_text(shared) == collector_text(tmp_path)
        assert encode_openmetrics(shared) == collector_text(tmp_path, openmetrics=True)
    else:  # the same lines; older collectors do not keep a label set's samples together
        assert lines(encode_text(shared)) == lines(collector_text(tmp_path))
        assert lines(encode_openmetrics(shared)) == lines(collector_text(tmp_path, openmetrics=True))
    assert encode_text(shared) == generate_latest(shared)  # its samples say what its lines say


def test_later_reads_follow_every_change(tmp_path, workers):
    rng = random.Random(2)
    for worker in workers:
        work(worker, rng)
    shared = refreshed(SharedFiles(str(tmp_path)))
    for step in range(3):
        work(workers[step], rng, n=5)  # one worker moves, the others not
        workers[(step + 1) % 3].send(many=400, prefix=f"grow{step}")  # new label sets, past the first 64 KiB
        if step == 1:
            workers.append(Worker(tmp_path))  # a worker started late
            work(workers[-1], rng)
        refreshed(shared)
        assert lines(encode_text(shared)) == lines(collector_text(tmp_path)), step
        assert lines(encode_openmetrics(shared)) == lines(collector_text(tmp_path, openmetrics=True)), step


def test_totals_are_the_sum_of_what_each_worker_counted(tmp_path, workers):
    rng = random.Random(3)
    shared = SharedFiles(str(tmp_path))
    counted = 0
    for round_ in range(4):
        for worker in workers:
            by = rng.randrange(1, 1000)
            worker.send(count="a", by=by)
            counted += by
        assert total(encode_text(refreshed(shared)), "jobs_total") == counted, round_


def test_counters_never_go_backwards_when_a_worker_leaves(tmp_path, workers):
    rng = random.Random(4)
    for worker in workers:
        work(worker, rng)
    shared = refreshed(SharedFiles(str(tmp_path)))
    before = encode_text(shared)
    workers[0].exit(mark_dead=True)  # a worker that shut down cleanly (the service calls mark_process_dead)
    after = encode_text(refreshed(shared))
    assert lines(after) == lines(collector_text(tmp_path))  # the same lines (in first-read order)
    assert total(after, "jobs_total") == total(before, "jobs_total")
    assert f'pid="{workers[0].pid}"'.encode() not in b"".join(
        line for line in after.splitlines() if line.startswith(b"level_liveall"))  # its live gauges are gone
    assert f'pid="{workers[0].pid}"'.encode() in after  # its non-live gauges ("all") stay, as documented


def test_live_gauges_of_a_killed_worker_are_left_out_and_its_counts_stay(tmp_path, workers):
    rng = random.Random(5)
    for worker in workers:
        work(worker, rng)
    shared = refreshed(SharedFiles(str(tmp_path)))
    before = encode_text(shared)
    workers[1].kill()  # no chance to call mark_process_dead: its live gauge files stay behind
    assert list(tmp_path.glob(f"gauge_livesum_{workers[1].pid}.db"))
    after = encode_text(refreshed(shared))
    assert total(after, "jobs_total") == total(before, "jobs_total")
    mark_process_dead(workers[1].pid, str(tmp_path))  # what the collector reports once it is marked dead
    assert lines(after) == lines(collector_text(tmp_path))


def test_a_family_whose_files_are_all_gone_disappears(tmp_path, workers):
    for worker in workers:
        worker.send(set="livesum", k="only", value=1.0)
    shared = refreshed(SharedFiles(str(tmp_path)))
    assert b"level_livesum" in encode_text(shared)
    for worker in workers:
        worker.exit(mark_dead=True)
    assert b"level_livesum" not in encode_text(refreshed(shared))
    assert lines(encode_text(shared)) == lines(collector_text(tmp_path))


def test_refresh_works_in_steps_a_caller_can_pause_between(tmp_path, workers):
    workers[0].send(many=3000, prefix="q")
    steps = sum(1 for _ in SharedFiles(str(tmp_path)).refresh())
    assert steps > 3000 // 256  # at least a pause per few hundred new entries
