"""Correlation ids: accepted when safe, otherwise unique ones minted without a system call."""

from __future__ import annotations

import os
import re

import pytest

from fastapi_lookout import correlation

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def test_minted_ids_are_32_hex_digits_and_unique():
    ids = [correlation.new_id() for _ in range(10_000)]
    assert all(HEX32.match(i) for i in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("raw", [b"abc-123", b"trace:1.2_3", b"A" * 64])
def test_a_well_formed_client_id_is_kept(raw):
    assert correlation.accept(raw) == raw.decode()


@pytest.mark.parametrize("raw", [None, b"", b"A" * 65, b"-leading-dash", b"has space", b'quote"', b"\xff\xfe",
                                 b"new\nline", b"{request_id}"])
def test_anything_else_gets_a_fresh_id(raw):
    assert HEX32.match(correlation.accept(raw))


def test_a_forked_child_never_repeats_the_parents_ids():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the next ids and leave without running pytest's teardown
        os.close(read)
        os.write(write, " ".join(correlation.new_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = set(pipe.read().decode().split())
    os.waitpid(pid, 0)
    parent = {correlation.new_id() for _ in range(100)}
    assert len(child) == 100 and not child & parent
    assert {i[:16] for i in child}.isdisjoint({i[:16] for i in parent})
