"""harness.targets.ratelimit: token buckets, header reading and the AIMD window (fake clock)."""

from __future__ import annotations

import asyncio

import pytest

from harness.targets.ratelimit import (
    RateBudget,
    RateLimiter,
    TokenBucket,
    estimate_tokens,
    parse_reset_s,
)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_refills_at_its_rate_and_reserves_into_debt() -> None:
    clock = Clock()
    b = TokenBucket(rate=10.0, capacity=2.0, clock=clock)
    assert b.reserve(1) == 0.0 and b.reserve(1) == 0.0
    assert b.reserve(1) == pytest.approx(0.1)  # one unit of debt at 10/s
    assert b.reserve(3) == pytest.approx(0.4)  # waits for all debt before it
    clock.t += 0.4
    assert b.level == pytest.approx(0.0)
    clock.t += 10
    assert b.level == 2.0  # never above capacity
    b.lower_to(0.5)
    assert b.level == 0.5
    b.lower_to(7)
    assert b.level == 0.5  # a larger "remaining" does not add units


@pytest.mark.parametrize(("text", "seconds"), [
    ("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("17.28s", 17.28), ("1h2m3s", 3723.0),
    ("0.5", 0.5), ("", None), ("soon", None), ("5x", None), (None, None)])
def test_parse_reset_reads_openai_durations(text: str | None, seconds: float | None) -> None:
    got = parse_reset_s(text)
    assert (got is None) if seconds is None else got == pytest.approx(seconds)


def test_estimate_counts_prompt_and_max_tokens_per_choice() -> None:
    assert estimate_tokens(400, 64, 1) == 101 + 64
    assert estimate_tokens(0, 10, 3) == 1 + 30


def test_budget_rejects_non_positive_values() -> None:
    with pytest.raises(ValueError, match="--rpm must be a positive number"):
        RateBudget(rpm=0)
    with pytest.raises(ValueError, match="--tpm"):
        RateBudget(tpm=float("nan"))


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_aimd_halves_once_per_window_and_grows_about_one_per_window() -> None:
    async def body() -> None:
        lim = RateLimiter(16)
        tickets = [await lim.acquire(10) for _ in range(8)]
        # Eight requests of one window all answered 429: one decrease, not eight.
        for t in tickets:
            lim.release(t, 429)
        assert lim.window == 8.0 and lim.stats.decreases == 1 and lim.stats.rate_limited == 8
        t = await lim.acquire(10)  # started after the decrease: its 429 counts
        lim.release(t, 429)
        assert lim.window == 4.0
        for _ in range(4):  # one window of successes: +1
            lim.release(await lim.acquire(10), 200)
        assert 4.9 < lim.window < 5.1
        for _ in range(200):
            lim.release(await lim.acquire(10), 200)
        assert lim.window == 16.0  # capped by the ceiling (--concurrency)
    run(body())


def test_window_bounds_requests_in_flight() -> None:
    async def body() -> None:
        lim = RateLimiter(2)
        a, b = await lim.acquire(1), await lim.acquire(1)
        third = asyncio.create_task(lim.acquire(1))
        await asyncio.sleep(0.01)
        assert not third.done()  # two in flight, window 2
        lim.release(a, 200)
        await asyncio.wait_for(third, 1.0)
        lim.release(b, 200)
        lim.release(third.result(), 200)
    run(body())


def test_fixed_mode_never_changes_the_window_or_pauses() -> None:
    async def body() -> None:
        lim = RateLimiter(4, adaptive=False)
        t = await lim.acquire(1)
        lim.release(t, 429, {"retry-after": "30", "x-ratelimit-limit-requests": "60"})
        assert lim.window == 4.0 and lim.requests is None and lim._paused_until == 0.0
    run(body())


def test_headers_set_rates_lower_levels_and_a_429_pauses_everyone() -> None:
    async def body() -> None:
        clock = Clock()
        lim = RateLimiter(8, RateBudget(tpm=30_000), clock=clock)
        t = await lim.acquire(1)
        lim.release(t, 200, {"x-ratelimit-limit-requests": "600",
                                   "x-ratelimit-limit-tokens": "60000",
                                   "x-ratelimit-remaining-requests": "0",
                                   "x-ratelimit-remaining-tokens": "10"})
        assert lim.requests is not None and lim.tokens is not None
        assert lim.requests.rate == pytest.approx(10.0)  # 600 a minute, from the header
        assert lim.tokens.rate == pytest.approx(500.0)  # the smaller budget rules
        assert lim.requests.level == 0.0 and lim.tokens.level == 10.0  # 24 left, server: 10
        t = await lim.acquire(10)
        lim.release(t, 429, {"retry-after-ms": "1500"})
        assert lim._paused_until == pytest.approx(clock.t + 1.5)
        assert lim.describe()["rpm_in_force"] == 600.0
    run(body())


def test_429_without_retry_after_pauses_for_the_exhausted_budgets_reset() -> None:
    async def body() -> None:
        clock = Clock()
        lim = RateLimiter(8, clock=clock)
        t = await lim.acquire(10)
        lim.release(t, 429, {"x-ratelimit-remaining-requests": "3",
                                   "x-ratelimit-remaining-tokens": "0",
                                   "x-ratelimit-reset-tokens": "2.5s",
                                   "x-ratelimit-reset-requests": "9s"})
        assert lim._paused_until == pytest.approx(clock.t + 2.5)
    run(body())


def test_budget_paces_request_starts() -> None:
    async def body() -> None:
        lim = RateLimiter(64, RateBudget(rpm=1200))  # 20 a second
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(10):
            lim.release(await lim.acquire(1), 200)
        elapsed = loop.time() - started
        # One unit of burst (capacity max(1, 20 x 0.05)), then 20/s: ~0.45 s for ten.
        assert 0.4 < elapsed < 0.8
    run(body())


def test_a_cancelled_waiter_does_not_leak_a_slot() -> None:
    async def body() -> None:
        lim = RateLimiter(1)
        first = await lim.acquire(1)
        waiter = asyncio.create_task(lim.acquire(1))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        lim.release(first, 200)
        assert lim._in_flight == 0 and not lim._waiters
        lim.release(await asyncio.wait_for(lim.acquire(1), 1.0), 200)
    run(body())


def test_without_headers_a_429_paces_at_the_rate_answers_came() -> None:
    async def body() -> None:
        clock = Clock()
        lim = RateLimiter(8, clock=clock)
        start = clock.t
        for _ in range(30):  # 10 answers a second for 3 s
            clock.t += 0.1
            lim.release(await lim.acquire(1), 200)
        assert lim.requests is None and lim.rate_source is None
        lim.release(await lim.acquire(1), 429)
        assert lim.rate_source == "discovered" and lim.requests is not None
        # The first second is left out (a burst from a full bucket); 10 a second since.
        assert lim.requests.rate == pytest.approx(10.0, rel=0.05)
        first = lim.requests.rate
        clock.t += 0.5
        lim.release(await lim.acquire(1), 429)  # within MIN_GAP_S: no second decrease
        assert lim.requests.rate == first
        clock.t += 1.0
        lim._paused_until = 0.0
        lim.release(await lim.acquire(1), 429)
        assert lim.requests.rate == pytest.approx(0.9 * first)
        lim._paused_until = 0.0
        lim.release(await lim.acquire(1), 200)
        assert lim.requests.rate == pytest.approx(0.9 * first + 0.001 * first)
        # An announced limit replaces the guess.
        t = await lim.acquire(1)
        lim.release(t, 200, {"x-ratelimit-limit-requests": "120"})
        assert lim.rate_source == "header" and lim.requests.rate == pytest.approx(2.0)
        assert clock.t - start < 10
    run(body())


def test_no_guess_before_enough_history() -> None:
    async def body() -> None:
        clock = Clock()
        lim = RateLimiter(8, clock=clock)
        lim.release(await lim.acquire(1), 200)
        clock.t += 0.5
        lim.release(await lim.acquire(1), 429)
        assert lim.requests is None and lim.rate_source is None
        assert lim.window == 4.0  # the window still halves
    run(body())
