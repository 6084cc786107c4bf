"""Client-side rate limiting: request and token budgets plus adaptive concurrency (AIMD).

Hosted APIs limit requests and tokens per minute and answer HTTP 429 past them. A client
that keeps a fixed number of requests in flight spends most of its requests on 429s and,
when the retries run out, loses samples. `RateLimiter` sits in front of every HTTP attempt
of a target (`acquire` before, `release` after) and keeps the target under the limits:

* **Budgets** (`--rpm`, `--tpm`): two token buckets, one counting requests and one counting
  tokens. A request is charged its estimated tokens when it starts (prompt characters / 4
  plus ``max_tokens x n``: OpenAI charges a request its prompt and its `max_tokens` when it
  arrives, not what the answer used), so the tokens bucket needs no correction afterwards.
* **Headers**: OpenAI-style ``x-ratelimit-limit-requests`` / ``-tokens`` (per minute) set the
  bucket rates when no smaller budget was given; ``x-ratelimit-remaining-requests`` /
  ``-tokens`` lower a bucket's level to what the server says is left (the server counts what
  this process cannot see: other clients of the key, estimates it makes differently), and a
  429 pauses every new request for the server's ``Retry-After`` (or, without one, the
  ``x-ratelimit-reset-*`` of the exhausted budget, or one unit's refill time).
* **Adaptive concurrency**: additive increase, multiplicative decrease (Chiu and Jain 1989;
  TCP congestion avoidance, RFC 5681 §3.1): the window of requests in flight grows by
  about one per window of successes and halves on a 429, at most once per window (429s of
  requests that started before the last decrease say nothing about the new window). The
  window never exceeds `--concurrency`, so without 429s nothing changes.
* **No headers** (an endpoint that answers 429 but announces no limit): a window cannot
  express a rate, so after a 429 the limiter paces at the rate answers have been coming
  (`DiscoveredRate`: AIMD on that rate), until a budget or an announced limit says better.

Retries stay in `harness.targets.retry` (tenacity): a request answered 429 is retried there,
and each retry passes through `acquire` again. Nothing here drops or repeats a request.

The token bucket is a small hand-written one (reservation style: a request may reserve
into debt and waits until the debt is repaid, so a request larger than the bucket still
goes, alone, in order): `aiolimiter` has no way to change the rate when a limit header
arrives or to lower the level to a server's ``remaining``.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from harness.targets.retry import retry_after_from_headers

# A bucket holds this many seconds of its rate (at least one unit): requests leave evenly
# spaced, never in a burst that a server enforcing its per-minute limit over shorter periods
# (as OpenAI says it does; how short, it does not say) would refuse. A burst would gain
# nothing in steady state: the rate is the rate.
BURST_S = 0.05
# The longest pause a header may impose on every request (a bad or far-future value must
# not stall a run; the retry policy caps its own waits the same way).
MAX_PAUSE_S = 60.0
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


@dataclass(frozen=True)
class RateBudget:
    """Client-side limits: requests and tokens per minute (None: no budget of that kind)."""

    rpm: float | None = None
    tpm: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("rpm", self.rpm), ("tpm", self.tpm)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"--{name} must be a positive number, got {value}")


def parse_reset_s(value: str | None) -> float | None:
    """Seconds in an ``x-ratelimit-reset-*`` value: OpenAI sends durations like ``1s``,
    ``6m0s``, ``20ms`` or ``17.28s``; a bare number is seconds. None when unreadable."""
    if not value:
        return None
    text = value.strip().lower()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


class TokenBucket:
    """`rate` units a second, holding at most `capacity`; `reserve(amount)` takes units now
    (into debt if need be) and returns how long the caller must wait before using them."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._level = capacity
        self._at = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._at) * self.rate)
        self._at = now
        return now

    @property
    def level(self) -> float:
        """Units available now (negative: reserved ahead, in debt)."""
        self._refill()
        return self._level

    def reserve(self, amount: float) -> float:
        """Take `amount` units; seconds until the bucket has paid for them (0: go now)."""
        self._refill()
        self._level -= amount
        return 0.0 if self._level >= 0 else -self._level / self.rate

    def set_rate(self, rate: float, capacity: float) -> None:
        """Change the rate (a limit header arrived); the level keeps what was earned."""
        self._refill()
        self.rate, self.capacity = rate, capacity
        self._level = min(self._level, capacity)

    def lower_to(self, remaining: float) -> None:
        """The server says only `remaining` units are left: believe it when it is less."""
        self._refill()
        self._level = min(self._level, remaining)


class DiscoveredRate:
    """AIMD on a request rate, for endpoints that answer 429 but announce no limit.

    A window of requests in flight cannot express a rate limit (at 100 ms a request, one
    request in flight is already 10 a second), so an endpoint without ``x-ratelimit-*``
    headers would keep refusing a share of the requests. At the first 429 after
    `MIN_HISTORY_S` of answers, requests are paced at the rate the endpoint has been
    answering over the last `HISTORY_S`, its first second (a burst from a full bucket)
    left out: near its limit, since it just refused one. Each
    later 429 multiplies that rate by `DECREASE` (at most once per `MIN_GAP_S`: refusals of
    requests sent before a decrease say nothing about it) and each answer adds
    `INCREASE_SHARE` of the first estimate, so the rate probes upwards slowly (about 50
    answers to win back one decrease).
    """

    HISTORY_S = 5.0
    MIN_HISTORY_S = 1.5
    SKIP_S = 1.0
    DECREASE = 0.9
    INCREASE_SHARE = 0.001
    MIN_GAP_S = 1.0

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._answered: deque[float] = deque(maxlen=4096)
        self._first: float | None = None
        self._last_decrease = -math.inf
        self._step = 0.0
        self.bucket: TokenBucket | None = None

    def answered(self) -> None:
        """A request was answered: remember when; nudge a discovered rate up."""
        now = self._clock()
        self._first = now if self._first is None else self._first
        self._answered.append(now)
        if self.bucket is not None:
            rate = self.bucket.rate + self._step
            self.bucket.set_rate(rate, max(1.0, rate * BURST_S))

    def refused(self) -> TokenBucket | None:
        """A 429: the bucket to pace requests with from now on (None: too early to tell)."""
        now = self._clock()
        if self.bucket is None:
            if self._first is None or now - self._first < self.MIN_HISTORY_S:
                return None
            # Not the first second: a full bucket at the server lets a burst through then.
            since = max(now - self.HISTORY_S, self._first + self.SKIP_S)
            span = now - since
            n = sum(1 for t in self._answered if t > since)
            if n < 4:
                return None
            rate = n / span
            self._step = rate * self.INCREASE_SHARE
            self.bucket = TokenBucket(rate, max(1.0, rate * BURST_S), self._clock)
            self._last_decrease = now
        elif now - self._last_decrease >= self.MIN_GAP_S:
            rate = self.bucket.rate * self.DECREASE
            self.bucket.set_rate(rate, max(1.0, rate * BURST_S))
            self._last_decrease = now
        return self.bucket


@dataclass
class LimiterStats:
    """What the limiter did (for the manifest and the benchmark)."""

    attempts: int = 0  # attempts that passed the limiter (each retry is one)
    rate_limited: int = 0  # attempts answered 429
    decreases: int = 0  # multiplicative decreases of the window
    paused_s: float = 0.0  # seconds new requests waited for a Retry-After pause
    min_window: float = math.inf


class RateLimiter:
    """Budgets, header-driven pacing and an AIMD window over one target's requests.

    `acquire(tokens)` waits until a request of that estimated cost may start and returns a
    ticket for `release(ticket, status, headers)`, called exactly once when the attempt
    ended (status None: no HTTP answer). `adaptive=False` keeps only the explicit budgets (a fixed
    concurrency, as before this module existed).
    """

    def __init__(self, ceiling: int, budget: RateBudget | None = None, *, adaptive: bool = True,
                 decrease: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = max(1, ceiling)
        self.budget = budget or RateBudget()
        self.adaptive = adaptive
        self.decrease = decrease
        self.window = float(self.ceiling)
        self.stats = LimiterStats(min_window=self.window)
        self._clock = clock
        self._in_flight = 0
        self._epoch = 0  # bumped at each decrease
        self._paused_until = 0.0
        self._waiters: list[asyncio.Future[None]] = []
        self.requests = self._bucket(self.budget.rpm)
        self.tokens = self._bucket(self.budget.tpm)
        # Where the request rate in force comes from: budget, header, discovered or None.
        self.rate_source: str | None = "budget" if self.requests is not None else None
        self._discovery = DiscoveredRate(clock)

    def _bucket(self, per_minute: float | None) -> TokenBucket | None:
        if per_minute is None:
            return None
        rate = per_minute / 60.0
        return TokenBucket(rate, max(1.0, rate * BURST_S), self._clock)

    def describe(self) -> dict[str, object]:
        """Settings and what happened, for the manifest."""
        return {
            "adaptive": self.adaptive,
            "rpm": self.budget.rpm,
            "tpm": self.budget.tpm,
            "rpm_in_force": round(self.requests.rate * 60, 3) if self.requests else None,
            "rpm_source": self.rate_source,
            "tpm_in_force": round(self.tokens.rate * 60, 3) if self.tokens else None,
            "attempts": self.stats.attempts,
            "rate_limited": self.stats.rate_limited,
            "window_decreases": self.stats.decreases,
            "window_min": (None if math.isinf(self.stats.min_window)
                           else round(self.stats.min_window, 2)),
            "paused_s": round(self.stats.paused_s, 3),
        }

    async def acquire(self, tokens: float) -> int:
        """Wait for a slot in the window, any pause, and the budgets; returns a ticket."""
        if self._in_flight < max(1, int(self.window)) and not self._waiters:
            self._in_flight += 1
        else:
            slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(slot)
            try:
                await slot
            except BaseException:
                if slot.done() and not slot.cancelled():
                    self._leave()  # the slot was handed over just as we were cancelled
                else:
                    self._waiters.remove(slot)
                raise
        ticket = self._epoch
        try:
            while True:
                pause = self._paused_until - self._clock()
                if pause <= 0:
                    break
                self.stats.paused_s += pause
                await asyncio.sleep(pause)
            delay = 0.0
            if self.requests is not None:
                delay = max(delay, self.requests.reserve(1.0))
            if self.tokens is not None:
                delay = max(delay, self.tokens.reserve(tokens))
            if delay > 0:
                await asyncio.sleep(delay)
        except BaseException:
            self._leave()
            raise
        return ticket

    def _leave(self) -> None:
        """One request left the window: hand free slots to waiters, first come first."""
        self._in_flight -= 1
        while self._waiters and self._in_flight < max(1, int(self.window)):
            slot = self._waiters.pop(0)
            if not slot.done():
                self._in_flight += 1
                slot.set_result(None)

    def release(self, ticket: int, status: int | None,
                headers: Mapping[str, str] | None = None) -> None:
        """The attempt with this ticket ended with HTTP `status` (None: no answer).
        Synchronous, so that it runs whole even in a task being cancelled."""
        self.stats.attempts += 1
        if headers:
            self._read_headers(headers, limited=status == 429)
        if status == 429:
            self.stats.rate_limited += 1
            if self.adaptive and self.rate_source in (None, "discovered"):
                found = self._discovery.refused()
                if found is not None:
                    self.requests, self.rate_source = found, "discovered"
            if self.adaptive and ticket == self._epoch:
                self._epoch += 1
                self.window = max(1.0, self.window * self.decrease)
                self.stats.decreases += 1
                self.stats.min_window = min(self.stats.min_window, self.window)
        elif status is not None and status < 400 and self.adaptive:
            if self.rate_source in (None, "discovered"):
                self._discovery.answered()
            # About +1 per window of successes: each success adds 1/window.
            self.window = min(float(self.ceiling), self.window + 1.0 / max(1.0, self.window))
        self._leave()

    def _learn_rate(self, bucket: TokenBucket | None, per_minute: float | None,
                    budget: float | None) -> TokenBucket | None:
        """The bucket at the rate a limit header announces, unless a smaller budget rules."""
        if per_minute is None or per_minute <= 0:
            return bucket
        in_force = min(per_minute, budget) if budget is not None else per_minute
        rate = in_force / 60.0
        if bucket is None:
            return TokenBucket(rate, max(1.0, rate * BURST_S), self._clock)
        if abs(bucket.rate - rate) > 1e-9:
            bucket.set_rate(rate, max(1.0, rate * BURST_S))
        return bucket

    def _read_headers(self, headers: Mapping[str, str], *, limited: bool) -> None:
        if self.adaptive:
            announced = _header_float(headers, "x-ratelimit-limit-requests")
            if announced is not None and self.rate_source == "discovered":
                self.requests = None  # an announced limit replaces a guess
            self.requests = self._learn_rate(self.requests, announced, self.budget.rpm)
            if announced is not None and announced > 0:
                self.rate_source = "header" if self.budget.rpm is None or \
                    announced < self.budget.rpm else "budget"
            self.tokens = self._learn_rate(
                self.tokens, _header_float(headers, "x-ratelimit-limit-tokens"),
                self.budget.tpm)
        remaining: dict[str, float | None] = {}
        for kind, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            left = _header_float(headers, f"x-ratelimit-remaining-{kind}")
            remaining[kind] = left
            if bucket is not None and left is not None:
                bucket.lower_to(left)
        if limited:
            self._pause(headers, remaining)

    def _pause(self, headers: Mapping[str, str], remaining: Mapping[str, float | None]) -> None:
        """After a 429: no new request before the server's Retry-After (or reset)."""
        wait = retry_after_from_headers(headers)
        if wait is None:
            for kind in ("requests", "tokens"):
                if remaining.get(kind) == 0:
                    reset = parse_reset_s(headers.get(f"x-ratelimit-reset-{kind}"))
                    if reset is not None:
                        wait = max(wait or 0.0, reset)
        if wait is None and self.requests is not None:
            wait = 1.0 / self.requests.rate
        if wait is not None and self.adaptive:
            until = self._clock() + min(wait, MAX_PAUSE_S)
            self._paused_until = max(self._paused_until, until)


def estimate_tokens(message_chars: int, max_tokens: int, n: int) -> int:
    """A request's token charge as rate limiters count it: the prompt (about 4 characters a
    token, the rule of thumb OpenAI documents for English) plus `max_tokens` per choice."""
    return message_chars // 4 + 1 + max(0, max_tokens) * max(1, n)
