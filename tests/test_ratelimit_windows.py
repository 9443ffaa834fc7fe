"""The limiter's exact edges: which hit has left a window, what a decision reports, what a sweep forgets.

In-process and clock-driven (``now=``), no sleeps, no service: this is the file mutation testing runs
against ``app/ratelimit.py``.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from app.ratelimit import Decision, SlidingWindowLimiter


def refusals(limit_type: str) -> float:
    return REGISTRY.get_sample_value("rate_limit_hits_total", {"limit_type": limit_type}) or 0.0


# --- the minute window --------------------------------------------------------


def test_a_hit_exactly_sixty_seconds_old_has_left_the_minute_window():
    limiter = SlidingWindowLimiter("ip", per_minute=1, burst=5)
    assert limiter.check("k", now=100.0).allowed
    assert not limiter.check("k", now=159.5).allowed
    assert limiter.check("k", now=160.0).allowed


def test_a_full_minute_window_refuses_with_the_minute_numbers():
    limiter = SlidingWindowLimiter("ip", per_minute=3, burst=10)
    for t in (100.0, 110.0, 120.0):
        assert limiter.check("k", now=t).allowed
    assert limiter.check("k", now=130.5) == Decision(
        allowed=False, limit=3, remaining=0, retry_after=30, reset=30, window_seconds=60
    )


def test_a_minute_refusal_rounds_its_wait_up_to_whole_seconds():
    limiter = SlidingWindowLimiter("ip", per_minute=1, burst=10)
    limiter.check("k", now=100.0)
    refused = limiter.check("k", now=101.5)  # room again at 160.0: 58.5 s away
    assert (refused.retry_after, refused.reset) == (59, 59)


def test_a_refusal_a_moment_before_the_window_frees_still_says_retry_after_one_second():
    limiter = SlidingWindowLimiter("ip", per_minute=1, burst=10)
    limiter.check("k", now=100.0)
    refused = limiter.check("k", now=159.99)
    assert (refused.allowed, refused.retry_after, refused.reset) == (False, 1, 1)


# --- the burst window ---------------------------------------------------------


def test_a_hit_exactly_one_second_old_has_left_the_burst_window():
    limiter = SlidingWindowLimiter("user", per_minute=100, burst=1)
    assert limiter.check("u", now=10.0).allowed
    assert not limiter.check("u", now=10.5).allowed
    assert limiter.check("u", now=11.0).allowed


def test_a_burst_refusal_reports_the_burst_window_not_the_minute_budget():
    limiter = SlidingWindowLimiter("user", per_minute=100, burst=2)
    assert limiter.check("u", now=10.0).allowed and limiter.check("u", now=10.2).allowed
    assert limiter.check("u", now=10.4) == Decision(
        allowed=False, limit=2, remaining=0, retry_after=1, reset=1, window_seconds=1
    )


def test_burst_counts_only_hits_of_the_last_second():
    limiter = SlidingWindowLimiter("user", per_minute=100, burst=2)
    for t in (10.0, 10.5, 11.2):  # 10.0 left the burst window at 11.0
        assert limiter.check("u", now=t).allowed
    assert not limiter.check("u", now=11.3).allowed  # 10.5 and 11.2 are both within a second


# --- what an accepted hit reports ----------------------------------------------


def test_an_accepted_hit_counts_down_remaining_and_reports_when_the_oldest_hit_leaves():
    limiter = SlidingWindowLimiter("ip", per_minute=5, burst=5)
    assert limiter.check("k", now=100.0) == Decision(
        allowed=True, limit=5, remaining=4, retry_after=0, reset=60, window_seconds=60
    )
    assert limiter.check("k", now=110.5) == Decision(
        allowed=True, limit=5, remaining=3, retry_after=0, reset=50, window_seconds=60
    )


def test_the_last_hit_the_minute_allows_leaves_zero_remaining():
    limiter = SlidingWindowLimiter("ip", per_minute=2, burst=5)
    limiter.check("k", now=100.0)
    last = limiter.check("k", now=120.0)
    assert (last.allowed, last.remaining, last.reset) == (True, 0, 40)


# --- headers --------------------------------------------------------------------


def test_an_accepted_decision_sends_the_four_ratelimit_headers_and_no_retry_after():
    decision = Decision(allowed=True, limit=120, remaining=117, retry_after=0, reset=42, window_seconds=60)
    assert decision.headers() == {
        "X-RateLimit-Limit": "120",
        "X-RateLimit-Remaining": "117",
        "X-RateLimit-Reset": "42",
        "X-RateLimit-Window": "60",
    }


def test_a_refusal_adds_retry_after_and_reports_its_window():
    limiter = SlidingWindowLimiter("user", per_minute=100, burst=1)
    limiter.check("u", now=10.0)
    assert limiter.check("u", now=10.1).headers() == {
        "X-RateLimit-Limit": "1",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1",
        "X-RateLimit-Window": "1",
        "Retry-After": "1",
    }


def test_a_minute_refusal_headers_carry_the_minute_numbers():
    limiter = SlidingWindowLimiter("ip", per_minute=2, burst=10)
    limiter.check("k", now=100.0)
    limiter.check("k", now=105.0)
    assert limiter.check("k", now=117.0).headers() == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "43",
        "X-RateLimit-Window": "60",
        "Retry-After": "43",
    }


# --- counting and logging a refusal ------------------------------------------------


def test_only_refusals_are_counted_and_logged_with_their_limit_type():
    limiter = SlidingWindowLimiter("ws_message", per_minute=100, burst=1)
    before = refusals("ws_message")
    with capture_logs() as logs:
        assert limiter.check("c", now=1.0).allowed
        assert not limiter.check("c", now=1.5).allowed
    assert refusals("ws_message") == before + 1
    assert logs == [{"event": "rate limit exceeded", "limit_type": "ws_message", "log_level": "warning"}]


def test_an_unknown_limit_type_is_named_in_the_error():
    with pytest.raises(ValueError, match="unknown limit type 'made-up'"):
        SlidingWindowLimiter("made-up", per_minute=1, burst=1)


# --- the real clock ----------------------------------------------------------------


def test_without_an_explicit_time_the_monotonic_clock_is_used():
    limiter = SlidingWindowLimiter("ip", per_minute=1, burst=1)
    assert limiter.check("k").allowed
    assert not limiter.check("k").allowed
    assert asyncio.run(limiter.sweep()) == 0 and len(limiter) == 1
    assert asyncio.run(limiter.sweep(now=time.monotonic() + 61)) == 1 and len(limiter) == 0


# --- sweeping idle keys ---------------------------------------------------------------


def test_sweep_forgets_keys_idle_for_a_minute_and_keeps_recent_ones():
    limiter = SlidingWindowLimiter("user", per_minute=10, burst=10)
    limiter.check("idle", now=100.0)
    limiter.check("edge", now=140.0)
    limiter.check("recent", now=150.0)
    assert asyncio.run(limiter.sweep(now=200.0)) == 2  # idle: 100 s ago; edge: exactly 60 s ago
    assert len(limiter) == 1
    assert limiter.check("recent", now=200.5).remaining == 8, "the recent key kept its hit"


def test_sweep_keeps_a_key_whose_last_hit_is_just_under_a_minute_old():
    limiter = SlidingWindowLimiter("user", per_minute=1, burst=1)
    limiter.check("k", now=100.0)
    assert asyncio.run(limiter.sweep(now=159.5)) == 0
    assert len(limiter) == 1
    assert not limiter.check("k", now=159.6).allowed, "the window survived the sweep"


def test_sweep_forgets_a_key_whose_hits_all_expired():
    limiter = SlidingWindowLimiter("user", per_minute=1, burst=1)
    limiter.check("k", now=100.0)
    assert asyncio.run(limiter.sweep(now=160.0)) == 1
    assert len(limiter) == 0


# --- flood of distinct keys ---------------------------------------------------------------


def test_active_keys_up_to_max_keys_survive_a_sweep():
    limiter = SlidingWindowLimiter("ip", per_minute=1, burst=1, max_keys=3)
    for key in "abc":
        limiter.check(key, now=100.0)
    assert asyncio.run(limiter.sweep(now=101.0)) == 0
    assert len(limiter) == 3
    assert not limiter.check("a", now=101.0).allowed


def test_more_active_keys_than_max_keys_are_all_forgotten_to_bound_memory():
    limiter = SlidingWindowLimiter("ip", per_minute=1, burst=1, max_keys=3)
    for key in "abcd":
        limiter.check(key, now=100.0)
    assert asyncio.run(limiter.sweep(now=101.0)) == 0, "the count is of idle keys, not of the flood"
    assert len(limiter) == 0
    assert limiter.check("a", now=101.0).allowed, "a forgotten key starts a fresh window"


def test_idle_keys_do_not_count_toward_max_keys():
    limiter = SlidingWindowLimiter("ip", per_minute=1, burst=1, max_keys=2)
    for key in "abc":
        limiter.check(key, now=10.0)
    limiter.check("d", now=100.0)
    limiter.check("e", now=100.0)
    assert asyncio.run(limiter.sweep(now=101.0)) == 3
    assert len(limiter) == 2


def test_the_default_cap_is_one_hundred_thousand_keys():
    limiter = SlidingWindowLimiter("ip", per_minute=1, burst=1)
    for i in range(100_000):
        limiter.check(str(i), now=100.0)
    assert asyncio.run(limiter.sweep(now=101.0)) == 0 and len(limiter) == 100_000
    limiter.check("one-more", now=101.0)
    assert asyncio.run(limiter.sweep(now=101.0)) == 0 and len(limiter) == 0
